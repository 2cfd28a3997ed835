package dev.cdas;

/**
 * An argument or input the caller can fix: a null pointer, a size out of range, mismatched
 * shapes, a bad enum value, data a file does not allow. Native checks and the library's own Java
 * checks throw it alike.
 */
public class InvalidArgumentException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#INVALID_ARGUMENT}.
     *
     * @param message what is wrong, naming the argument or file
     */
    public InvalidArgumentException(String message) {
        super(Status.INVALID_ARGUMENT, message);
    }

    /**
     * A failure with status {@link Status#INVALID_ARGUMENT}.
     *
     * @param message what is wrong, naming the argument or file
     * @param cause   the exception that revealed it (a parse error, say)
     */
    public InvalidArgumentException(String message, Throwable cause) {
        super(Status.INVALID_ARGUMENT, message);
        initCause(cause);
    }
}
