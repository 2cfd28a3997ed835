package dev.cdas;

/** A feature not built into this libcdas (CUDA, libtorch) or a dtype it does not handle. */
public class UnsupportedFeatureException extends CdasException {
    private static final long serialVersionUID = 1L;

    public UnsupportedFeatureException(String message) {
        super(Status.UNSUPPORTED, message);
    }
}
