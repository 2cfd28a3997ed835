package dev.cdas;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Copies between Java arrays and native segments; null arrays become NULL pointers. */
public final class Segments {
    private Segments() {
    }

    public static MemorySegment of(Arena arena, float[] values) {
        return values == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, values);
    }

    public static MemorySegment of(Arena arena, int[] values) {
        return values == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_INT, values);
    }

    /** A uint8 mask: 1 for true, 0 for false. */
    public static MemorySegment of(Arena arena, boolean[] mask) {
        if (mask == null) {
            return MemorySegment.NULL;
        }
        MemorySegment bytes = arena.allocate(mask.length);
        for (int i = 0; i < mask.length; i++) {
            bytes.set(ValueLayout.JAVA_BYTE, i, (byte) (mask[i] ? 1 : 0));
        }
        return bytes;
    }

    public static float[] floats(MemorySegment segment) {
        return segment.toArray(ValueLayout.JAVA_FLOAT);
    }
}
