package dev.cdas.cli;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

/**
 * Seeded Gaussian test data, as Java arrays or straight into native memory: the kernel demo's
 * inputs, and the benchmarks'.
 */
public final class RandomData {
    private final SplittableRandom random;

    public RandomData(long seed) {
        this.random = new SplittableRandom(seed);
    }

    public float[] gaussian(long count, double scale) {
        float[] a = new float[Math.toIntExact(count)];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) (random.nextGaussian() * scale);
        }
        return a;
    }

    public MemorySegment gaussian(Arena arena, long count, double scale) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, count);
        for (long i = 0; i < count; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (random.nextGaussian() * scale));
        }
        return s;
    }

    /** base + noise * N(0, 1), elementwise: a teacher close to its student. */
    public MemorySegment perturbed(Arena arena, MemorySegment base, double noise) {
        long n = base.byteSize() / Float.BYTES;
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, n);
        for (long i = 0; i < n; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i,
                    base.getAtIndex(ValueLayout.JAVA_FLOAT, i) + (float) (random.nextGaussian() * noise));
        }
        return s;
    }

    /** Rows of unit norm. */
    public float[] unitRows(int rows, int dim) {
        float[] w = gaussian((long) rows * dim, 1);
        for (int k = 0; k < rows; k++) {
            double n = 0;
            for (int j = 0; j < dim; j++) {
                n += w[k * dim + j] * w[k * dim + j];
            }
            double inv = 1 / Math.sqrt(n);
            for (int j = 0; j < dim; j++) {
                w[k * dim + j] *= (float) inv;
            }
        }
        return w;
    }

    int[] exampleIndex(int rows, int examples) {
        int[] index = new int[rows];
        for (int t = 0; t < rows; t++) {
            index[t] = (int) ((long) t * examples / rows);
        }
        return index;
    }

    boolean[] mask(int rows, double keep) {
        boolean[] m = new boolean[rows];
        for (int t = 0; t < rows; t++) {
            m[t] = random.nextDouble() < keep;
        }
        return m;
    }
}
