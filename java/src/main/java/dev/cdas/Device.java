package dev.cdas;

import dev.cdas.bindings.cdas_h;

/** Where a {@link Context} runs its kernels. */
public enum Device {
    CPU(cdas_h.CDAS_DEVICE_CPU()),
    CUDA(cdas_h.CDAS_DEVICE_CUDA());

    private final int code;

    Device(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
