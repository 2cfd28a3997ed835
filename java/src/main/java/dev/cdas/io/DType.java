package dev.cdas.io;

import java.util.Optional;

/** Element types of the safetensors format, with the names its header uses. */
public enum DType {
    BOOL(1), U8(1), I8(1), F8_E4M3(1), F8_E5M2(1),
    I16(2), U16(2), F16(2), BF16(2),
    I32(4), U32(4), F32(4),
    I64(8), U64(8), F64(8);

    private final int byteSize;

    DType(int byteSize) {
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

    public static Optional<DType> fromHeaderName(String name) {
        for (DType t : values()) {
            if (t.name().equals(name)) {
                return Optional.of(t);
            }
        }
        return Optional.empty();
    }
}
