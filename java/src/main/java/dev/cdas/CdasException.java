package dev.cdas;

/**
 * A failed cdas call. Native failures carry the message of {@code cdas_last_error()}; argument
 * errors found in Java before calling native carry the same status a native check would give.
 */
public class CdasException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final Status status;

    public CdasException(Status status, String message) {
        super(message);
        this.status = status;
    }

    public Status status() {
        return status;
    }
}
