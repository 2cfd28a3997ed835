package dev.cdas;

/** A bug in cdas: anything else caught at the native boundary. */
public class InternalException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#INTERNAL}.
     *
     * @param message what went wrong inside the library
     */
    public InternalException(String message) {
        super(Status.INTERNAL, message);
    }
}
