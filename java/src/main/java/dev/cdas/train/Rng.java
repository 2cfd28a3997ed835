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

    /**
     * A generator seeded with {@code seed}.
     *
     * @param seed the initial state
     */
    public Rng(long seed) {
        this.state = seed;
    }

    /**
     * Continues from a state saved with {@link #state()}.
     *
     * @param state a value returned by {@link #state()}
     * @return a generator in that state
     */
    public static Rng fromState(long state) {
        return new Rng(state);
    }

    /** {@return the whole state, to continue from with {@link #fromState}} */
    public long state() {
        return state;
    }

    /** {@return the next 64 random bits (SplitMix64)} */
    public long nextLong() {
        long z = (state += GOLDEN);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Uniform in [0, 1) with 53 random bits.
     *
     * @return the value
     */
    public double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /**
     * Uniform in [0, bound), without modulo bias.
     *
     * @param bound the exclusive upper bound, positive
     * @return the value
     * @throws InvalidArgumentException when {@code bound} is not positive
     */
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

    /**
     * Standard normal (Box–Muller, one value per two uniforms, nothing cached).
     *
     * @return the value
     */
    public double nextGaussian() {
        double u1;
        do {
            u1 = nextDouble();
        } while (u1 == 0.0);
        double u2 = nextDouble();
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }

    /**
     * Fisher–Yates shuffle in place.
     *
     * @param a the array to shuffle
     */
    public void shuffle(int[] a) {
        for (int i = a.length - 1; i > 0; i--) {
            int j = nextInt(i + 1);
            int t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
}
