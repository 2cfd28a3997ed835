package dev.cdas;

import dev.cdas.bindings.cdas_h;
import dev.cdas.io.StorageType;
import java.util.Optional;

/**
 * The types a model computes in and the element types of the "dtype" buffers of the C ABI; the
 * types tensors are stored in are {@link StorageType}.
 */
public enum DType {
    /** 32-bit IEEE float. */
    F32(cdas_h.CDAS_DTYPE_F32(), 4),
    /** bfloat16: 8 exponent bits, 7 mantissa bits. */
    BF16(cdas_h.CDAS_DTYPE_BF16(), 2),
    /** IEEE half precision: 5 exponent bits, 10 mantissa bits. */
    F16(cdas_h.CDAS_DTYPE_F16(), 2);

    private final int code;
    private final int byteSize;

    DType(int code, int byteSize) {
        this.code = code;
        this.byteSize = byteSize;
    }

    /**
     * The type's value in the C ABI ({@code cdas_dtype}).
     *
     * @return the {@code CDAS_DTYPE_*} constant
     */
    public int code() {
        return code;
    }

    /**
     * The size of one element.
     *
     * @return 4 for F32, 2 for BF16 and F16
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The compute type a stored type is read as without conversion, if there is one.
     *
     * @param stored the type a tensor is stored in
     * @return the same type as a compute type, or empty for a stored type with no compute counterpart
     */
    public static Optional<DType> of(StorageType stored) {
        return switch (stored) {
            case F32 -> Optional.of(F32);
            case BF16 -> Optional.of(BF16);
            case F16 -> Optional.of(F16);
            default -> Optional.empty();
        };
    }
}
