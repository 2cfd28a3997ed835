package dev.cdas;

/** Native (host or device) memory ran out. */
public class OutOfMemoryException extends CdasException {
    private static final long serialVersionUID = 1L;

    public OutOfMemoryException(String message) {
        super(Status.OUT_OF_MEMORY, message);
    }
}
