package dev.cdas;

import static dev.cdas.bindings.cdas_h.*;

/** The status codes of the C ABI ({@code cdas_status}). */
public enum Status {
    /** Success: the call did what it was asked. */
    OK(CDAS_STATUS_OK()),
    /** An argument or input the caller can fix ({@link InvalidArgumentException}). */
    INVALID_ARGUMENT(CDAS_STATUS_INVALID_ARGUMENT()),
    /** A NaN or infinity in an input or a result ({@link NonFiniteException}). */
    NON_FINITE(CDAS_STATUS_NON_FINITE()),
    /** An allocation failed, on the host or the device ({@link OutOfMemoryException}). */
    OUT_OF_MEMORY(CDAS_STATUS_OUT_OF_MEMORY()),
    /** Not in this build or on this device ({@link UnsupportedFeatureException}). */
    UNSUPPORTED(CDAS_STATUS_UNSUPPORTED()),
    /** A CUDA runtime or cuBLAS failure ({@link DeviceException}). */
    DEVICE_ERROR(CDAS_STATUS_DEVICE_ERROR()),
    /** A file could not be read or written ({@link NativeIOException}). */
    IO_ERROR(CDAS_STATUS_IO_ERROR()),
    /** A bug or an unexpected state inside the library ({@link InternalException}). */
    INTERNAL(CDAS_STATUS_INTERNAL());

    private final int code;

    Status(int code) {
        this.code = code;
    }

    /**
     * The status's value in the C ABI.
     *
     * @return the {@code CDAS_STATUS_*} constant
     */
    public int code() {
        return code;
    }

    /**
     * The status of {@code code}; a code this build does not know is reported as INTERNAL.
     *
     * @param code a value returned by a {@code cdas_*} call
     * @return its status
     */
    public static Status of(int code) {
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return INTERNAL;
    }
}
