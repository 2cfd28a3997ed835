package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * A seeded generator whose whole state is one {@code long} (SplitMix64), so that a checkpoint can
 * store it and a resumed run draws exactly what the uninterrupted run would have drawn.
 * {@link java.util.Random} and {@link java.util.SplittableRandom} do not expose their state.
 */
public final class Rng {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private long state;

    public Rng(long seed) {
        this.state = seed;
    }

    /** Continues from a state saved with {@link #state()}. */
    public static Rng fromState(long state) {
        return new Rng(state);
    }

    public long state() {
        return state;
    }

    public long nextLong() {
        long z = (state += GOLDEN);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Uniform in [0, 1) with 53 random bits. */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Uniform in [0, bound), without modulo bias. */
    public int nextInt(int bound) {
        if (bound <= 0) {
            throw new InvalidArgumentException("bound must be positive: " + bound);
        }
        long bits;
        long value;
        do { // the same rejection as java.util.Random#nextInt, on 63 bits
            bits = nextLong() >>> 1;
            value = bits % bound;
        } while (bits - value + (bound - 1) < 0);
        return (int) value;
    }

    /** Standard normal (Box–Muller, one value per two uniforms, nothing cached). */
    public double nextGaussian() {
        double u1;
        do {
            u1 = nextDouble();
        } while (u1 == 0.0);
        double u2 = nextDouble();
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }

    /** Fisher–Yates shuffle in place. */
    public void shuffle(int[] a) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
