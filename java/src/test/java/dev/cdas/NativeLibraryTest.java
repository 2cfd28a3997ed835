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
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

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

    /**
     * MKL's kernels when libcdas is loaded the way every Java user loads it (System.load, whose
     * libtorch then resolves MKL's vendor question in libcdas's scope; the native case
     * mkl_dispatch_on_this_cpu checks the same from an executable linked against libcdas). The CPU
     * is read from /proc/cpuinfo here, independently of libcdas's CPUID code.
     */
    @Test
    void mklTakesItsAvx512KernelsOnAnAmdCpuWithAvx512() throws IOException {
        NativeLibrary.load();
        String info = cdas_h.cdas_build_info().reinterpret(1 << 16).getString(0, StandardCharsets.UTF_8);
        List<String> mkl = info.lines().filter(l -> l.startsWith("MKL: ")).toList();
        assertEquals(1, mkl.size(), "one MKL line in cdas_build_info():\n" + info);
        String line = mkl.getFirst();
        assumeTrue(!line.startsWith("MKL: not in this process"), "no MKL in this libtorch: " + line);
        ProcCpuInfo cpu = ProcCpuInfo.read();
        assumeTrue(cpu.amd() && cpu.avx512(), "not an AMD CPU with AVX-512 (MKL's own dispatch applies): " + line);
        String env = System.getenv("CDAS_MKL_AMD_AVX512");
        boolean off = env != null && List.of("0", "off", "false", "no").contains(env.toLowerCase(Locale.ROOT));
        if (off) {
            assertTrue(line.contains("CDAS_MKL_AMD_AVX512 turns the AVX-512 kernels off") && line.contains("code path 0,"), line);
        } else {
            assertTrue(line.startsWith("MKL: AVX-512 kernels on this AMD CPU") && !line.contains("code path 0,"), line);
        }
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
