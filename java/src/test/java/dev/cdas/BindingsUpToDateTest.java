package dev.cdas;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * The committed bindings must be exactly what the generator makes of native/include/cdas.h.
 * Fails (never skips) when the generator cannot run, so a machine without libclang cannot pass
 * with stale bindings.
 */
class BindingsUpToDateTest {

    @Test
    void committedBindingsMatchTheHeader() throws IOException, InterruptedException {
        Path root = Path.of(System.getProperty("cdas.project.dir", "..")).toAbsolutePath().normalize();
        Path generator = root.resolve("bindings/generator/generate_bindings.py");
        assertTrue(Files.isRegularFile(generator), "generator not found at " + generator
                + " (set -Dcdas.project.dir to the repository root)");
        Path libclang = Path.of(System.getProperty("cdas.libclang.path", root.resolve(".deps/pyclang").toString()));
        String howToFix = "Run `bash scripts/fetch-libclang.sh " + root.resolve(".deps")
                + "` (puts libclang's Python package into .deps/pyclang), or point -Dcdas.libclang.path at one.";
        assertTrue(Files.isDirectory(libclang.resolve("clang")),
                "libclang's Python package is missing at " + libclang + ". " + howToFix);

        ProcessBuilder pb = new ProcessBuilder("python3", generator.toString(), "--check")
                .directory(root.toFile())
                .redirectErrorStream(true);
        String inherited = System.getenv("PYTHONPATH");
        pb.environment().put("PYTHONPATH",
                libclang + (inherited == null || inherited.isEmpty() ? "" : java.io.File.pathSeparator + inherited));
        Process process;
        try {
            process = pb.start();
        } catch (IOException e) {
            fail("cannot run python3 for the bindings check (" + e.getMessage() + "). " + howToFix, e);
            return;
        }
        String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!process.waitFor(120, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            fail("generate_bindings.py --check did not finish in 120 s:\n" + output);
        }
        int exit = process.exitValue();
        if (exit == 1) {
            fail("bindings/src/main/java differs from what native/include/cdas.h generates. Regenerate with\n"
                    + "  PYTHONPATH=.deps/pyclang python3 bindings/generator/generate_bindings.py\n"
                    + "and commit the result. Diff:\n" + output);
        }
        assertEquals(0, exit, "generate_bindings.py --check failed to run (exit " + exit + "). " + howToFix
                + "\n" + output);
    }
}
