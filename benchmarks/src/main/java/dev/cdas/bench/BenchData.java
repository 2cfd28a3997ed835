package dev.cdas.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/** Seeded fp32 inputs in native memory, shared by the benchmarks and the memory probe. */
final class BenchData {
    private final SplittableRandom random;

    BenchData(long seed) {
        this.random = new SplittableRandom(seed);
    }

    MemorySegment gaussian(Arena arena, long count, double scale) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (random.nextGaussian() * scale));
        }
        return s;
    }

    /** base + noise * N(0, 1): a teacher near its student, as in training. */
    MemorySegment perturbed(Arena arena, MemorySegment base, double noise) {
        long n = base.byteSize() / Float.BYTES;
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, n);
        for (long i = 0; i < n; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i,
                    base.getAtIndex(ValueLayout.JAVA_FLOAT, i) + (float) (random.nextGaussian() * noise));
        }
        return s;
    }

    MemorySegment unitRows(Arena arena, int rows, int dim) {
        MemorySegment w = gaussian(arena, (long) rows * dim, 1);
        for (int k = 0; k < rows; k++) {
            double n = 0;
            for (int j = 0; j < dim; j++) {
                double v = w.getAtIndex(ValueLayout.JAVA_FLOAT, (long) k * dim + j);
                n += v * v;
            }
            float inv = (float) (1 / Math.sqrt(n));
            for (int j = 0; j < dim; j++) {
                long i = (long) k * dim + j;
                w.setAtIndex(ValueLayout.JAVA_FLOAT, i, w.getAtIndex(ValueLayout.JAVA_FLOAT, i) * inv);
            }
        }
        return w;
    }

    /** Rows split into `examples` contiguous runs, as sequences of a minibatch are. */
    static MemorySegment exampleIndex(Arena arena, long rows, long examples) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_INT, rows);
        for (long t = 0; t < rows; t++) {
            s.setAtIndex(ValueLayout.JAVA_INT, t, (int) (t * examples / rows));
        }
        return s;
    }

    /** Every row but the first `prefix` of each run intervened, like the prefix skip. */
    static MemorySegment mask(Arena arena, long rows, long skipEvery) {
        MemorySegment s = arena.allocate(rows);
        for (long t = 0; t < rows; t++) {
            s.set(ValueLayout.JAVA_BYTE, t, (byte) (t % skipEvery == 0 ? 0 : 1));
        }
        return s;
    }
}
