package dev.cdas;

import dev.cdas.bindings.cdas_h;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
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

    /**
     * The build records the digest of the header it compiled (CMake), the generator the digest of the
     * header it read: both must be the SHA-256 of the repository's native/include/cdas.h, computed here
     * independently. A library or bindings left from an older header fail this.
     */
    @Test
    void libraryAndBindingsCarryTheDigestOfTheRepositoryHeader() throws IOException, NoSuchAlgorithmException {
        Path root = Path.of(System.getProperty("cdas.project.dir", "..")).toAbsolutePath().normalize();
        Path header = root.resolve("native/include/cdas.h");
        assertTrue(Files.isRegularFile(header), "header not found at " + header + " (set -Dcdas.project.dir)");
        String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(header)));
        assertEquals(digest, cdas_h.HEADER_SHA256, "bindings generated from another cdas.h");
        NativeLibrary.load();
        String library = cdas_h.cdas_header_sha256().reinterpret(65).getString(0, StandardCharsets.US_ASCII);
        assertEquals(digest, library, "libcdas compiled from another cdas.h");
    }

    @Test
    void aLibraryBuiltFromAnotherHeaderIsRefusedBeforeAnyCall() {
        Path library = Path.of("/opt/x/libcdas.so");
        String ours = "a".repeat(64);
        assertDoesNotThrow(() -> NativeLibrary.checkHeaderDigest(library, ours, ours));
        UnsatisfiedLinkError other = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.checkHeaderDigest(library, ours, "b".repeat(64)));
        assertTrue(other.getMessage().contains("/opt/x/libcdas.so was built from another native/include/cdas.h"),
                other.getMessage());
        assertTrue(other.getMessage().contains("b".repeat(64)) && other.getMessage().contains(ours), other.getMessage());
        assertTrue(other.getMessage().contains("use the jar and the library of one build"), other.getMessage());
        assertEquals(1, other.getMessage().lines().count(), "one line");
        UnsatisfiedLinkError older = assertThrows(UnsatisfiedLinkError.class,
                () -> NativeLibrary.checkHeaderDigest(library, ours, null));
        assertTrue(older.getMessage().contains("not recorded: an older library"), older.getMessage());
    }
}
