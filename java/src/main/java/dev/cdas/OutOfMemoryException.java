package dev.cdas;

/** Native (host or device) memory ran out. */
public class OutOfMemoryException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#OUT_OF_MEMORY}.
     *
     * @param message which allocation failed and how large it was, as reported
     */
    public OutOfMemoryException(String message) {
        super(Status.OUT_OF_MEMORY, message);
    }
}
