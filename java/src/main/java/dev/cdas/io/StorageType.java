package dev.cdas.io;

import java.util.Optional;

/**
 * Element types of stored tensors (the safetensors format, with the names its header uses); the
 * types a model computes in are {@link dev.cdas.DType}.
 */
public enum StorageType {
    /** Boolean, one byte (0 or 1). */
    BOOL(1),
    /** Unsigned 8-bit integer. */
    U8(1),
    /** Signed 8-bit integer. */
    I8(1),
    /** 8-bit float, 4 exponent and 3 mantissa bits. */
    F8_E4M3(1),
    /** 8-bit float, 5 exponent and 2 mantissa bits. */
    F8_E5M2(1),
    /** Signed 16-bit integer. */
    I16(2),
    /** Unsigned 16-bit integer. */
    U16(2),
    /** IEEE half precision. */
    F16(2),
    /** bfloat16: the upper 16 bits of an fp32. */
    BF16(2),
    /** Signed 32-bit integer. */
    I32(4),
    /** Unsigned 32-bit integer. */
    U32(4),
    /** IEEE single precision. */
    F32(4),
    /** Signed 64-bit integer. */
    I64(8),
    /** Unsigned 64-bit integer. */
    U64(8),
    /** IEEE double precision. */
    F64(8);

    private final int byteSize;

    StorageType(int byteSize) {
        this.byteSize = byteSize;
    }

    /**
     * The size of one element.
     *
     * @return the number of bytes, 1 to 8
     */
    public int byteSize() {
        return byteSize;
    }

    /**
     * The header name ("F32", "BF16", ...).
     *
     * @return the name this type has in a safetensors header
     */
    public String headerName() {
        return name();
    }

    /**
     * Whether the type holds floating-point numbers (the F8, F16, BF16, F32 and F64 types).
     *
     * @return true for a floating-point type
     */
    public boolean isFloatingPoint() {
        return switch (this) {
            case F8_E4M3, F8_E5M2, F16, BF16, F32, F64 -> true;
            default -> false;
        };
    }

    /**
     * The type a safetensors header names.
     *
     * @param name the header's dtype string ("F32", "BF16", ...), case-sensitive
     * @return the type, or empty when the name is not a known type
     */
    public static Optional<StorageType> fromHeaderName(String name) {
        for (StorageType t : values()) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
