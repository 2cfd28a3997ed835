package dev.cdas;

/** A NaN or infinity: in an input, or produced by a computation (a diverged loss, a degenerate direction). */
public class NonFiniteException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#NON_FINITE}.
     *
     * @param message what was not finite and where
     */
    public NonFiniteException(String message) {
        super(Status.NON_FINITE, message);
    }
}
