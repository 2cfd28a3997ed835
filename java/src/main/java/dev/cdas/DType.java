package dev.cdas;

import dev.cdas.bindings.cdas_h;
import dev.cdas.io.StorageType;
import java.util.Optional;

/**
 * The types a model computes in and the element types of the "dtype" buffers of the C ABI; the
 * types tensors are stored in are {@link StorageType}.
 */
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

    /** The compute type a stored type is read as without conversion, if there is one. */
    public static Optional<DType> of(StorageType stored) {
        return switch (stored) {
            case F32 -> Optional.of(F32);
            case BF16 -> Optional.of(BF16);
            case F16 -> Optional.of(F16);
            default -> Optional.empty();
        };
    }
}
