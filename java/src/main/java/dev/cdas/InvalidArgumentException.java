package dev.cdas;

/** A null pointer, a size <= 0, mismatched shapes or a bad enum value. */
public class InvalidArgumentException extends CdasException {
    private static final long serialVersionUID = 1L;

    public InvalidArgumentException(String message) {
        super(Status.INVALID_ARGUMENT, message);
    }
}
