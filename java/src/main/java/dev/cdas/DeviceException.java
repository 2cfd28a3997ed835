package dev.cdas;

/** A CUDA runtime or cuBLAS failure. */
public class DeviceException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A failure with status {@link Status#DEVICE_ERROR}.
     *
     * @param message the CUDA or cuBLAS error, as libcdas reported it
     */
    public DeviceException(String message) {
        super(Status.DEVICE_ERROR, message);
    }
}
