package dev.cdas;

import dev.cdas.bindings.cdas_h;

import java.io.File;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Finds and loads libcdas once per JVM. Places, in order:
 * <ol>
 *   <li>system property {@code cdas.library}, else environment variable {@code CDAS_LIBRARY}: a
 *       file; when either is set it is the only place looked at, so a typo is not hidden by a
 *       stale library found elsewhere;</li>
 *   <li>{@code lib/libcdas.so} beside the running jar (the layout of {@code dist/});</li>
 *   <li>the directory in system property {@code cdas.native.dir} (the CMake build folder; the
 *       Maven build sets it for tests);</li>
 *   <li>{@code build/} and {@code dist/lib/} under the working directory.</li>
 * </ol>
 */
public final class NativeLibrary {
    /** System property naming the libcdas file to load (the only place looked at when set). */
    public static final String LIBRARY_PROPERTY = "cdas.library";
    /** Environment variable naming the libcdas file to load, when the system property is not set. */
    public static final String LIBRARY_ENV = "CDAS_LIBRARY";
    /** System property naming a folder (the CMake build folder) to look for libcdas in. */
    public static final String NATIVE_DIR_PROPERTY = "cdas.native.dir";

    private static final System.Logger LOG = System.getLogger(NativeLibrary.class.getName());
    private static final String FILE_NAME = System.mapLibraryName("cdas");

    private static volatile Info loaded;

    /**
     * What was loaded: where from, its version and its build features.
     *
     * @param path        the file that was loaded
     * @param version     the library's version as major * 10000 + minor * 100 + patch
     * @param features    the optional parts it was built with
     * @param cudaDevices the CUDA devices usable now (0 without CUDA support or without a GPU)
     */
    public record Info(Path path, int version, Set<Feature> features, int cudaDevices) {
        /**
         * The version as text.
         *
         * @return "major.minor.patch"
         */
        public String versionString() {
            return (version / 10000) + "." + (version / 100 % 100) + "." + (version % 100);
        }
    }

    private NativeLibrary() {
    }

    /**
     * Loads libcdas if it is not loaded yet; safe to call from any thread, any number of times.
     *
     * @return what was loaded
     * @throws UnsatisfiedLinkError when no libcdas is found in the places listed above, it cannot be
     *         loaded (a missing libtorch, say), or its version is not the one these bindings were
     *         generated for
     */
    public static Info load() {
        Info info = loaded;
        if (info != null) {
            return info;
        }
        synchronized (NativeLibrary.class) {
            if (loaded == null) {
                loaded = loadOnce();
            }
            return loaded;
        }
    }

    private static Info loadOnce() {
        List<Path> tried = new ArrayList<>();
        Path library = null;
        for (Path candidate : candidates()) {
            tried.add(candidate);
            if (Files.isRegularFile(candidate)) {
                library = candidate.toAbsolutePath().normalize();
                break;
            }
        }
        if (library == null) {
            StringBuilder message = new StringBuilder("libcdas not found; looked at:");
            for (Path p : tried) {
                message.append("\n  ").append(p.toAbsolutePath().normalize());
            }
            message.append("\nBuild it with scripts/build.sh, or point -D" + LIBRARY_PROPERTY
                    + " (or " + LIBRARY_ENV + ") at the file.");
            throw new UnsatisfiedLinkError(message.toString());
        }
        OpenMpDefaults.apply();
        System.load(library.toString());
        checkHeaderDigest(library, cdas_h.HEADER_SHA256, headerDigestOf(library));
        Info info = describe(library);
        checkAbiVersion(info);
        LOG.log(System.Logger.Level.INFO, "libcdas {0} loaded from {1}; features {2}; CUDA devices: {3}",
                info.versionString(), info.path(), info.features(), info.cudaDevices());
        return info;
    }

    private static List<Path> candidates() {
        String explicit = System.getProperty(LIBRARY_PROPERTY);
        if (explicit == null || explicit.isBlank()) {
            explicit = System.getenv(LIBRARY_ENV);
        }
        if (explicit != null && !explicit.isBlank()) {
            return List.of(Path.of(explicit));
        }
        List<Path> places = new ArrayList<>();
        Path jarDir = runningJarDirectory();
        if (jarDir != null) {
            places.add(jarDir.resolve("lib").resolve(FILE_NAME));
        }
        String nativeDir = System.getProperty(NATIVE_DIR_PROPERTY);
        if (nativeDir != null && !nativeDir.isBlank()) {
            places.add(Path.of(nativeDir).resolve(FILE_NAME));
        }
        Path cwd = Path.of("").toAbsolutePath();
        places.add(cwd.resolve("build").resolve(FILE_NAME));
        places.add(cwd.resolve("dist").resolve("lib").resolve(FILE_NAME));
        return places;
    }

    private static Path runningJarDirectory() {
        try {
            CodeSource source = NativeLibrary.class.getProtectionDomain().getCodeSource();
            if (source == null || source.getLocation() == null) {
                return null;
            }
            File file = new File(source.getLocation().toURI());
            return file.isFile() ? file.getAbsoluteFile().getParentFile().toPath() : null;
        } catch (URISyntaxException | SecurityException | IllegalArgumentException e) {
            // Deliberate: File(URI) throws the JDK's IllegalArgumentException for a non-file code source.
            return null;
        }
    }

    private static Info describe(Path library) {
        int version = cdas_h.cdas_version();
        Set<Feature> features = Feature.fromBits(cdas_h.cdas_build_features());
        int devices;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(cdas_h.cdas_cuda_device_count(count));
            devices = count.get(ValueLayout.JAVA_INT, 0);
        }
        return new Info(library, version, features, devices);
    }

    /**
     * The digest of the cdas.h the loaded library was compiled from, or null when it has no
     * {@code cdas_header_sha256} (a library older than the check).
     */
    private static String headerDigestOf(Path library) {
        if (SymbolLookup.loaderLookup().find("cdas_header_sha256").isEmpty()) {
            return null;
        }
        return cdas_h.cdas_header_sha256().reinterpret(65).getString(0, StandardCharsets.US_ASCII);
    }

    /**
     * Refuses a library compiled from another cdas.h than the bindings: its structs may be laid out
     * differently (a field added at the end grows a struct), and calls through these bindings would
     * then corrupt memory rather than fail. Checked before any other call into the library.
     *
     * @param library the library's path, for the message
     * @param expected the digest these bindings were generated from
     * @param actual the library's digest, or null when it predates the check
     */
    static void checkHeaderDigest(Path library, String expected, String actual) {
        if (!expected.equals(actual)) {
            throw new UnsatisfiedLinkError("libcdas at " + library + " was built from another native/include/cdas.h than"
                    + " these bindings (header SHA-256 " + (actual == null ? "not recorded: an older library" : actual)
                    + ", bindings " + expected + "); use the jar and the library of one build (scripts/build.sh)");
        }
    }

    /** The bindings were generated from one cdas.h; a library of another major/minor is another ABI. */
    private static void checkAbiVersion(Info info) {
        int expected = cdas_h.CDAS_VERSION_MAJOR() * 10000 + cdas_h.CDAS_VERSION_MINOR() * 100;
        if (info.version() / 100 != expected / 100) {
            throw new UnsatisfiedLinkError("libcdas at " + info.path() + " is version " + info.versionString()
                    + " but these bindings were generated for " + cdas_h.CDAS_VERSION_MAJOR() + "."
                    + cdas_h.CDAS_VERSION_MINOR() + ".x; rebuild one of them");
        }
    }
}
