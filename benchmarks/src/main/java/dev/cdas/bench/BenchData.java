package dev.cdas.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** The minibatch layout of the benchmarks' inputs (the data itself comes from RandomData). */
final class BenchData {
    private BenchData() {
    }

    /** Rows split into `examples` contiguous runs, as sequences of a minibatch are. */
    static MemorySegment exampleIndex(Arena arena, long rows, long examples) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_INT, rows);
        for (long t = 0; t < rows; t++) {
            s.setAtIndex(ValueLayout.JAVA_INT, t, (int) (t * examples / rows));
        }
        return s;
    }

    /** Every row intervened except one in every skipEvery, like the prefix skip of each sequence. */
    static MemorySegment mask(Arena arena, long rows, long skipEvery) {
        MemorySegment s = arena.allocate(rows);
        for (long t = 0; t < rows; t++) {
            s.set(ValueLayout.JAVA_BYTE, t, (byte) (t % skipEvery == 0 ? 0 : 1));
        }
        return s;
    }
}
