package dev.cdas;

import java.lang.foreign.MemorySegment;

/** Argument checks done in Java, so mistakes read as Java messages before any native call. */
public final class Args {
    private Args() {
    }

    static <T> T notNull(String name, T value) {
        if (value == null) {
            throw new InvalidArgumentException(name + " must not be null");
        }
        return value;
    }

    /**
     * The most CPU threads a context or model may ask for: 4 per available core, at least 16;
     * system property {@code cdas.maxThreads} overrides it (docs/limits.md). Far more threads than
     * cores only slows libtorch down, and tens of thousands crash its thread pool.
     *
     * @return the bound, at least 16
     */
    public static int maxThreads() {
        Integer set = Integer.getInteger("cdas.maxThreads");
        return set != null && set > 0 ? set : Math.max(16, 4 * Runtime.getRuntime().availableProcessors());
    }

    /**
     * {@code threads} checked against 0..{@link #maxThreads()}.
     *
     * @param name  the setting's name, for the message
     * @param value the number of threads asked for (0: the default)
     * @return {@code value}
     * @throws InvalidArgumentException when {@code value} is negative or above {@link #maxThreads()}
     */
    public static int threads(String name, int value) {
        int max = maxThreads();
        if (value < 0 || value > max) {
            throw new InvalidArgumentException(name + " must be between 0 (the default) and " + max + ", got " + value
                    + " (at most 4 per core of the " + Runtime.getRuntime().availableProcessors()
                    + " available, at least 16; system property cdas.maxThreads changes the bound)");
        }
        return value;
    }

    static int nonNegative(String name, int value) {
        if (value < 0) {
            throw new InvalidArgumentException(name + " must be >= 0, got " + value);
        }
        return value;
    }

    static long positive(String name, long value) {
        if (value <= 0) {
            throw new InvalidArgumentException(name + " must be > 0, got " + value);
        }
        return value;
    }

    static long product(String what, long... factors) {
        long p = 1;
        try {
            for (long f : factors) {
                p = Math.multiplyExact(p, f);
            }
        } catch (ArithmeticException e) {
            throw new InvalidArgumentException(what + " overflows a 64-bit size");
        }
        return p;
    }

    static boolean absent(MemorySegment segment) {
        return segment == null || segment.equals(MemorySegment.NULL);
    }

    /** A buffer the call reads or writes: present, native, and large enough when on the host. */
    static MemorySegment required(Context context, String name, MemorySegment segment, long bytes) {
        if (absent(segment)) {
            throw new InvalidArgumentException(name + " is required but was null");
        }
        return sized(context, name, segment, bytes);
    }

    /** An optional buffer: null (or MemorySegment.NULL) means "not given". */
    static MemorySegment optional(Context context, String name, MemorySegment segment, long bytes) {
        return absent(segment) ? MemorySegment.NULL : sized(context, name, segment, bytes);
    }

    private static MemorySegment sized(Context context, String name, MemorySegment segment, long bytes) {
        if (!segment.isNative()) {
            throw new InvalidArgumentException(name + " must be a native segment (Arena.allocate), not a heap segment;"
                    + " use the float[] overloads for Java arrays");
        }
        // Device pointers arrive as zero-length segments: only host buffers have a checkable size.
        boolean host = context == null || context.device() == Device.CPU;
        if (host && segment.byteSize() < bytes) {
            throw new InvalidArgumentException(name + " holds " + segment.byteSize() + " bytes but the shape needs "
                    + bytes);
        }
        return segment;
    }

    static void length(String name, int actual, long expected, String shape) {
        if (actual != expected) {
            throw new InvalidArgumentException(name + " has " + actual + " elements but " + shape + " needs " + expected);
        }
    }

    static void hostContext(Context context, String api) {
        notNull("context", context);
        if (context.device() != Device.CPU) {
            throw new InvalidArgumentException(api + " copies Java arrays into host memory and needs a CPU context;"
                    + " use the MemorySegment overload with device buffers on " + context.device());
        }
    }
}
