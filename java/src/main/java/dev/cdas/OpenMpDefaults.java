package dev.cdas;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;

/**
 * How long libtorch's OpenMP threads spin between parallel regions, set before libcdas (and with it
 * libtorch's libgomp, which reads its settings once, when it is loaded) comes into the process.
 *
 * <p>libgomp's default is to spin 300 000 times (about a millisecond) after each region before
 * sleeping. libtorch runs one region per operation, and between them come libcdas's own kernels
 * (which run on their own worker threads) and the JVM's work, so on a machine whose cores are all
 * in use the spinning threads take the cores those need: on 2 cores, training the demo model took
 * about 20% longer with the default than with 10 000 spins (benchmarks/RESULTS.md). A short spin
 * still bridges the gap between two operations of one pass.
 *
 * <p>Only when the user has set neither {@code GOMP_SPINCOUNT} nor {@code OMP_WAIT_POLICY}: their
 * settings win. Without a C library {@code setenv} (not Linux or macOS) nothing is set.
 */
final class OpenMpDefaults {
    /** The spin count set when the user chose none. */
    static final String SPIN_COUNT = "10000";

    private OpenMpDefaults() {
    }

    /**
     * The variable and value to set for this environment, if any.
     *
     * @param environment the process environment
     * @return {@code GOMP_SPINCOUNT=10000} unless the user chose how OpenMP threads wait
     */
    static Optional<Map.Entry<String, String>> choose(Map<String, String> environment) {
        if (environment.containsKey("GOMP_SPINCOUNT") || environment.containsKey("OMP_WAIT_POLICY")) {
            return Optional.empty();
        }
        return Optional.of(Map.entry("GOMP_SPINCOUNT", SPIN_COUNT));
    }

    /** Sets {@link #choose}'s variable in the C environment of this process; never throws. */
    static void apply() {
        Optional<Map.Entry<String, String>> setting = choose(System.getenv());
        if (setting.isEmpty()) {
            return;
        }
        try {
            Linker linker = Linker.nativeLinker();
            Optional<MemorySegment> setenv = linker.defaultLookup().find("setenv");
            if (setenv.isEmpty()) {
                return;
            }
            MethodHandle call = linker.downcallHandle(setenv.get(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                            ValueLayout.JAVA_INT));
            try (Arena arena = Arena.ofConfined()) {
                int ignored = (int) call.invokeExact(arena.allocateFrom(setting.get().getKey()),
                        arena.allocateFrom(setting.get().getValue()), 0);
            }
        } catch (Throwable e) {
            // Only a speed setting: loading goes on with libgomp's defaults.
            System.getLogger(OpenMpDefaults.class.getName()).log(System.Logger.Level.DEBUG,
                    "could not set " + setting.get().getKey() + ": " + e);
        }
    }
}
