package dev.cdas;

/** A file missing, truncated or malformed. */
public class NativeIOException extends CdasException {
    private static final long serialVersionUID = 1L;

    public NativeIOException(String message) {
        super(Status.IO_ERROR, message);
    }
}
