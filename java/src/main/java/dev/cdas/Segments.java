package dev.cdas;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Copies between Java arrays and native segments; null arrays become NULL pointers. */
public final class Segments {
    private Segments() {
    }

    /**
     * A native copy of {@code values} owned by {@code arena}.
     *
     * @param arena  the arena the copy lives in
     * @param values the floats to copy, or null
     * @return a segment of {@code values.length} fp32 elements, or {@link MemorySegment#NULL} for null
     */
    public static MemorySegment of(Arena arena, float[] values) {
        return values == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, values);
    }

    /**
     * A native copy of {@code values} owned by {@code arena}.
     *
     * @param arena  the arena the copy lives in
     * @param values the ints to copy, or null
     * @return a segment of {@code values.length} int32 elements, or {@link MemorySegment#NULL} for null
     */
    public static MemorySegment of(Arena arena, int[] values) {
        return values == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_INT, values);
    }

    /**
     * A uint8 mask: 1 for true, 0 for false.
     *
     * @param arena the arena the mask lives in
     * @param mask  one flag per row, or null
     * @return a segment of {@code mask.length} bytes, or {@link MemorySegment#NULL} for null
     */
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

    /**
     * The fp32 elements of a native segment, copied into a Java array.
     *
     * @param segment a segment whose size is a multiple of 4 bytes
     * @return its elements, in order
     */
    public static float[] floats(MemorySegment segment) {
        return segment.toArray(ValueLayout.JAVA_FLOAT);
    }
}
