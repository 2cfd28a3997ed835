package dev.cdas;

import dev.cdas.bindings.cdas_h;

/** Where a {@link Context} runs its kernels. */
public enum Device {
    /** The host's cores (always available). */
    CPU(cdas_h.CDAS_DEVICE_CPU()),
    /** One CUDA GPU (needs a libcdas built with {@link Feature#CUDA} and a device at run time). */
    CUDA(cdas_h.CDAS_DEVICE_CUDA());

    private final int code;

    Device(int code) {
        this.code = code;
    }

    /**
     * The device's value in the C ABI ({@code cdas_device_type}).
     *
     * @return the {@code CDAS_DEVICE_*} constant
     */
    public int code() {
        return code;
    }
}
