package dev.cdas;

import dev.cdas.bindings.cdas_h;

/** Element types of the "dtype" buffers of the C ABI. */
public enum DType {
    F32(cdas_h.CDAS_DTYPE_F32(), 4),
    BF16(cdas_h.CDAS_DTYPE_BF16(), 2),
    F16(cdas_h.CDAS_DTYPE_F16(), 2);

    private final int code;
    private final int byteSize;

    DType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    public int code() {
        return code;
    }

    public int byteSize() {
        return byteSize;
    }
}
