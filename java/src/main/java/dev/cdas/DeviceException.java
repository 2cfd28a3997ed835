package dev.cdas;

/** A CUDA runtime or cuBLAS failure. */
public class DeviceException extends CdasException {
    private static final long serialVersionUID = 1L;

    public DeviceException(String message) {
        super(Status.DEVICE_ERROR, message);
    }
}
