package dev.cdas;

/** A feature not built into this libcdas (CUDA, libtorch) or a dtype it does not handle. */
public class UnsupportedFeatureException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#UNSUPPORTED}.
     *
     * @param message what is missing from this build or device
     */
    public UnsupportedFeatureException(String message) {
        super(Status.UNSUPPORTED, message);
    }
}
