package dev.cdas;

/** A file missing, truncated or malformed. */
public class NativeIOException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#IO_ERROR}.
     *
     * @param message the file and what failed on it, as libcdas reported it
     */
    public NativeIOException(String message) {
        super(Status.IO_ERROR, message);
    }
}
