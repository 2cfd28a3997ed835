package dev.cdas.cli;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MainTest {
    private record Run(int exit, String out) {
    }

    private static Run run(String... args) {
        PrintStream saved = System.out;
        ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        try (PrintStream capture = new PrintStream(buffer, true, StandardCharsets.UTF_8)) {
            System.setOut(capture);
            int exit = Main.run(args);
            return new Run(exit, buffer.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(saved);
        }
    }

    @Test
    void versionPrintsTheLibraryVersionAndFeatures() {
        Run r = run("version");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("cdas-native " + dev.cdas.Cdas.version()), r.out());
        assertTrue(r.out().contains("features:"), r.out());
        // cdas_build_info(): the torch and CUDA it was built against and what it finds at run time.
        assertTrue(r.out().contains("built against torch: "), r.out());
        assertTrue(r.out().contains("torch at run time: ") && r.out().contains("CUDA driver: "), r.out());
        assertTrue(r.out().contains("libcdas_cuda.so: "), r.out());
        assertTrue(r.out().contains("MKL: "), r.out());
        boolean f16 = dev.cdas.model.Model.cpuFastMatmul(dev.cdas.DType.F16);
        boolean bf16 = dev.cdas.model.Model.cpuFastMatmul(dev.cdas.DType.BF16);
        assertTrue(r.out().contains("CPU half precision: bf16 " + (bf16 ? "vector kernels" : "scalar loops") + ", f16 "
                + (f16 ? "vector kernels" : "scalar loops")), r.out());
    }

    /** The command line tells JNA not to unpack its stub (DJL's GPU probe then ends at once), unless the user chose. */
    @Test
    void theCommandLineKeepsJnaFromUnpackingUnlessTheUserChose() {
        String before = System.getProperty(Main.JNA_NO_UNPACK);
        Run r = run("version");
        assertEquals(0, r.exit(), r.out());
        assertEquals(before == null ? "true" : before, System.getProperty(Main.JNA_NO_UNPACK));
    }

    @Test
    void everyCommandHasHelp() {
        for (String[] args : new String[][] {{"--help"}, {"demo", "--help"}, {"version", "--help"}, {"logits", "--help"}, {"help", "demo"}, {"train", "--help"}, {"steer", "--help"}, {"objective", "--help"}, {"eval", "--help"}, {"mc", "--help"}, {"merge", "--help"}, {"evaluate", "--help"}}) {
            Run r = run(args);
            assertEquals(0, r.exit(), String.join(" ", args) + ":\n" + r.out());
            assertTrue(r.out().contains("Usage:"), r.out());
        }
    }

    @Test
    void topLevelHelpListsEveryCommandInOneCompleteSentence() {
        Run r = run("--help");
        assertEquals(0, r.exit(), r.out());
        String commands = r.out().substring(r.out().indexOf("Commands:"));
        int listed = 0;
        for (String line : commands.lines().skip(1).toList()) {
            if (line.isBlank()) {
                break; // the footer (progress and its environment variables) follows the list
            }
            // "  name  One sentence." : no continuation lines, no description cut mid-sentence.
            assertTrue(line.matches("  \\S+\\s{2,}\\S.*\\.$"), "cut or wrapped: [" + line + "]\n" + r.out());
            listed++;
        }
        assertEquals(11, listed, r.out());
    }

    @Test
    void helpRefersOnlyInsideTheRepository() {
        for (String[] args : new String[][] {{"--help"}, {"demo", "--help"}, {"version", "--help"}, {"logits", "--help"}, {"train", "--help"}, {"steer", "--help"}, {"objective", "--help"}, {"eval", "--help"}, {"mc", "--help"}, {"merge", "--help"}, {"evaluate", "--help"}}) {
            Run r = run(args);
            assertTrue(!r.out().contains("DESIGN.md") && !r.out().contains("shared/docs") && !r.out().contains("../"),
                    String.join(" ", args) + ":\n" + r.out());
        }
    }

    @Test
    void demoPassesItsReferenceCheckAndReportsTimings() {
        Run r = run("demo", "--rows", "8", "--dim", "32", "--vocab", "300", "--dii-rows", "64", "--dii-dim", "48",
                "--repeat", "1");
        assertEquals(0, r.exit(), r.out());
        assertTrue(r.out().contains("kernels match the references"), r.out());
        assertTrue(r.out().contains("fused:") && r.out().contains("peak workspace"), r.out());
    }

    @Test
    void missingLibraryFailsWithEveryPlaceTried() throws Exception {
        // A fresh JVM: this one has libcdas loaded already.
        String java = ProcessHandle.current().info().command().orElse("java");
        Process p = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED",
                "-Dcdas.library=/nonexistent/libcdas.so", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "version").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(2, p.waitFor(), out);
        assertTrue(out.contains("libcdas not found") && out.contains("/nonexistent/libcdas.so"), out);
        assertTrue(!out.contains("Exception in thread"), "a clean message, not a stack trace:\n" + out);
    }

    @Test
    void unknownOptionFailsWithUsage() {
        assertTrue(run("demo", "--no-such-option").exit() != 0);
    }
}
