package dev.cdas;

/** A NaN or infinity in an input. */
public class NonFiniteException extends CdasException {
    private static final long serialVersionUID = 1L;

    public NonFiniteException(String message) {
        super(Status.NON_FINITE, message);
    }
}
