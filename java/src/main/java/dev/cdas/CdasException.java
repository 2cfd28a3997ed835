package dev.cdas;

/**
 * A failed cdas call. Native failures carry the message of {@code cdas_last_error()}; argument
 * errors found in Java before calling native carry the same status a native check would give.
 */
public class CdasException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    /** The status of the failed call; serialized with the exception. */
    private final Status status;

    /**
     * A failure with the given status.
     *
     * @param status  the C ABI status the failure maps to
     * @param message what failed, naming the argument, file or call
     */
    public CdasException(Status status, String message) {
        super(message);
        this.status = status;
    }

    /**
     * The status of the failed call.
     *
     * @return the {@code cdas_status} this failure corresponds to (never {@link Status#OK})
     */
    public Status status() {
        return status;
    }
}
