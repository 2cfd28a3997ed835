package dev.cdas;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class OpenMpDefaultsTest {
    @Test
    void aShortSpinIsChosenOnlyWhenTheUserChoseNothing() {
        assertEquals(Optional.of(Map.entry("GOMP_SPINCOUNT", "10000")), OpenMpDefaults.choose(Map.of("PATH", "/bin")));
        assertTrue(OpenMpDefaults.choose(Map.of("GOMP_SPINCOUNT", "300000")).isEmpty());
        assertTrue(OpenMpDefaults.choose(Map.of("OMP_WAIT_POLICY", "ACTIVE")).isEmpty());
        assertTrue(OpenMpDefaults.choose(Map.of("GOMP_SPINCOUNT", "", "OMP_WAIT_POLICY", "PASSIVE")).isEmpty());
    }

    @Test
    void loadingTheLibrarySetsTheSpinCountInTheProcessEnvironment() throws Throwable {
        Assumptions.assumeTrue(OpenMpDefaults.choose(System.getenv()).isPresent(),
                "this JVM was started with GOMP_SPINCOUNT or OMP_WAIT_POLICY set: nothing to set");
        NativeLibrary.load();
        Linker linker = Linker.nativeLinker();
        MethodHandle getenv = linker.downcallHandle(linker.defaultLookup().find("getenv").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = (MemorySegment) getenv.invokeExact(arena.allocateFrom("GOMP_SPINCOUNT"));
            assertTrue(!value.equals(MemorySegment.NULL), "GOMP_SPINCOUNT is not set after loading libcdas");
            assertEquals(OpenMpDefaults.SPIN_COUNT, value.reinterpret(64).getString(0));
        }
    }
}
