package dev.cdas;

import dev.cdas.bindings.cdas_h;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NativeLibraryTest {

    @Test
    void loadsOnceAndMatchesTheHeaderTheBindingsCameFrom() {
        NativeLibrary.Info info = NativeLibrary.load();
        assertSame(info, NativeLibrary.load());
        assertTrue(Files.isRegularFile(info.path()), info.path().toString());
        int expected = cdas_h.CDAS_VERSION_MAJOR() * 10000 + cdas_h.CDAS_VERSION_MINOR() * 100
                + cdas_h.CDAS_VERSION_PATCH();
        assertEquals(expected, info.version());
        assertEquals(cdas_h.CDAS_VERSION_MAJOR() + "." + cdas_h.CDAS_VERSION_MINOR() + "."
                + cdas_h.CDAS_VERSION_PATCH(), Cdas.version());
        assertTrue(info.cudaDevices() >= 0);
        if (!info.features().contains(Feature.CUDA)) {
            assertEquals(0, info.cudaDevices(), "no CUDA devices without CUDA support");
        }
    }
}
