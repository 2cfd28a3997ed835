package dev.cdas;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/** Fresh random inputs, poisoned output buffers and closeness checks for the kernel tests. */
public final class TestData {
    private final SplittableRandom random;

    /** Fresh data every run: the seed is printed in failure messages so a failure can be replayed. */
    public TestData() {
        this(Long.getLong("cdas.test.seed", System.nanoTime()));
    }

    public TestData(long seed) {
        this.seed = seed;
        this.random = new SplittableRandom(seed);
    }

    public final long seed;

    public float[] gaussian(int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (random.nextGaussian() * scale);
        }
        return a;
    }

    /** r rows of width d, orthonormal (Gram-Schmidt), so Phi is a projection. */
    public float[] orthonormalRows(int rank, int dim) {
        double[] w = new double[rank * dim];
        for (int k = 0; k < rank; k++) {
            for (int j = 0; j < dim; j++) {
                w[k * dim + j] = random.nextGaussian();
            }
            for (int p = 0; p < k; p++) {
                double dot = 0;
                for (int j = 0; j < dim; j++) {
                    dot += w[k * dim + j] * w[p * dim + j];
                }
                for (int j = 0; j < dim; j++) {
                    w[k * dim + j] -= dot * w[p * dim + j];
                }
            }
            double n = 0;
            for (int j = 0; j < dim; j++) {
                n += w[k * dim + j] * w[k * dim + j];
            }
            for (int j = 0; j < dim; j++) {
                w[k * dim + j] /= Math.sqrt(n);
            }
        }
        float[] f = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            f[i] = (float) w[i];
        }
        return f;
    }

    /** Random example of each row, every example used when rows allow. */
    public int[] exampleIndex(int rows, int examples) {
        int[] index = new int[rows];
        for (int t = 0; t < rows; t++) {
            index[t] = t < examples ? t : random.nextInt(examples);
        }
        return index;
    }

    /** Roughly {@code keep} of the rows on, at least one on and (with two rows or more) one off. */
    public boolean[] mask(int rows, double keep) {
        boolean[] m = new boolean[rows];
        for (int t = 0; t < rows; t++) {
            m[t] = random.nextDouble() < keep;
        }
        m[random.nextInt(rows)] = true;
        if (rows > 1) {
            int off = random.nextInt(rows);
            while (off == firstOn(m)) {
                off = (off + 1) % rows;
            }
            m[off] = false;
        }
        return m;
    }

    private static int firstOn(boolean[] m) {
        for (int i = 0; i < m.length; i++) {
            if (m[i]) {
                return i;
            }
        }
        return -1;
    }

    public static double[] toDouble(float[] a) {
        if (a == null) {
            return null;
        }
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }

    public static MemorySegment segment(Arena arena, float[] values) {
        return values == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, values);
    }

    /** An output buffer full of NaN, so anything the kernel forgets to write shows. */
    public static MemorySegment poisoned(Arena arena, long floats) {
        MemorySegment s = arena.allocate(ValueLayout.JAVA_FLOAT, floats);
        for (long i = 0; i < floats; i++) {
            s.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
        }
        return s;
    }

    /**
     * Every element within {@code atol + rtol * max|expected|} of the reference (fp32 kernels
     * accumulate rounding relative to the magnitude of the whole output, not of each element).
     */
    public static void assertClose(String what, float[] actual, double[] expected, double rtol, double atol, long seed) {
        if (actual.length != expected.length) {
            fail(what + ": length " + actual.length + " != " + expected.length);
        }
        double scale = 0;
        for (double e : expected) {
            scale = Math.max(scale, Math.abs(e));
        }
        double bound = atol + rtol * scale;
        for (int i = 0; i < actual.length; i++) {
            double diff = Math.abs(actual[i] - expected[i]);
            if (!(diff <= bound)) {
                fail(String.format("%s[%d]: got %.9g, reference %.9g (|diff| %.3g > %.3g; max |ref| %.3g; seed %d)",
                        what, i, actual[i], expected[i], diff, bound, scale, seed));
            }
        }
    }
}
