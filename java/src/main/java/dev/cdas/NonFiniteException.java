package dev.cdas;

/** A NaN or infinity: in an input, or produced by a computation (a diverged loss, a degenerate direction). */
public class NonFiniteException extends CdasException {
    private static final long serialVersionUID = 1L;

    public NonFiniteException(String message) {
        super(Status.NON_FINITE, message);
    }
}
