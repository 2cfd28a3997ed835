package dev.cdas;

import static dev.cdas.bindings.cdas_h.*;

/** The status codes of the C ABI ({@code cdas_status}). */
public enum Status {
    OK(CDAS_STATUS_OK()),
    INVALID_ARGUMENT(CDAS_STATUS_INVALID_ARGUMENT()),
    NON_FINITE(CDAS_STATUS_NON_FINITE()),
    OUT_OF_MEMORY(CDAS_STATUS_OUT_OF_MEMORY()),
    UNSUPPORTED(CDAS_STATUS_UNSUPPORTED()),
    DEVICE_ERROR(CDAS_STATUS_DEVICE_ERROR()),
    IO_ERROR(CDAS_STATUS_IO_ERROR()),
    INTERNAL(CDAS_STATUS_INTERNAL());

    private final int code;

    Status(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }

    /** The status of {@code code}; a code this build does not know is reported as INTERNAL. */
    public static Status of(int code) {
        for (Status s : values()) {
            if (s.code == code) {
                return s;
            }
        }
        return INTERNAL;
    }
}
