package dev.cdas.io;

import java.util.Optional;

/**
 * Element types of stored tensors (the safetensors format, with the names its header uses); the
 * types a model computes in are {@link dev.cdas.DType}.
 */
public enum StorageType {
    BOOL(1), U8(1), I8(1), F8_E4M3(1), F8_E5M2(1),
    I16(2), U16(2), F16(2), BF16(2),
    I32(4), U32(4), F32(4),
    I64(8), U64(8), F64(8);

    private final int byteSize;

    StorageType(int byteSize) {
        this.byteSize = byteSize;
    }

    public int byteSize() {
        return byteSize;
    }

    /** The header name ("F32", "BF16", ...). */
    public String headerName() {
        return name();
    }

    public boolean isFloatingPoint() {
        return switch (this) {
            case F8_E4M3, F8_E5M2, F16, BF16, F32, F64 -> true;
            default -> false;
        };
    }

    public static Optional<StorageType> fromHeaderName(String name) {
        for (StorageType t : values()) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
