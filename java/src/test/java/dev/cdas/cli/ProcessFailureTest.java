package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.cdas.fanout.ConceptFanOut;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Failures at the process level, through the command line in a separate JVM (issue 14, item 2):
 * {@code kill -9} during checkpointed training, then {@code --resume}, gives the uninterrupted
 * run's vector bit for bit; a write that cannot complete (a file size limit, a full file system)
 * ends in one line naming the file, leaves the previous file as it was and nothing half-written.
 */
class ProcessFailureTest {
    @TempDir
    static Path shared;
    static Path data;
    static Path model;

    @BeforeAll
    static void pairs() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        List<String> lines = Files.readAllLines(root.resolve(CliSupport.DEMO_HELDOUT));
        data = shared.resolve("four.jsonl");
        Files.write(data, lines.subList(0, 4));
    }

    /** The command line of {@code cdas-native train} on 4 pairs in a fresh JVM, one thread. */
    static List<String> train(Path out, String... extra) {
        List<String> cmd = new ArrayList<>(List.of(
                ProcessHandle.current().info().command().orElse("java"), "-XX:-UsePerfData",
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path")));
        for (String p : List.of("cdas.native.dir", "cdas.library")) {
            if (System.getProperty(p) != null) {
                cmd.add("-D" + p + "=" + System.getProperty(p));
            }
        }
        cmd.addAll(List.of(Main.class.getName(), "train", "--model", model.toString(), "--data", data.toString(),
                "--layer", "1", "--out", out.toString(), "--max-response-tokens", "16",
                "--threads", "1"));
        cmd.addAll(List.of(extra));
        return cmd;
    }

    record Exit(int code, String output) {}

    static Exit run(List<String> cmd, Path log) throws Exception {
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        assertTrue(p.waitFor(300, TimeUnit.SECONDS), "train did not finish in 300 s: " + cmd);
        return new Exit(p.exitValue(), Files.readString(log, StandardCharsets.UTF_8));
    }

    @Test
    void killNineDuringCheckpointedTrainingThenResumeGivesTheUninterruptedVector() throws Exception {
        Path whole = shared.resolve("whole").resolve("v.safetensors");
        Path killed = shared.resolve("killed").resolve("v.safetensors");
        Files.createDirectories(whole.getParent());
        Files.createDirectories(killed.getParent());

        Exit a = run(train(whole, "--epochs", "2", "--batch", "1", "--checkpoint-every", "1", "--dtype", "bf16"), shared.resolve("whole.log"));
        assertEquals(0, a.code(), a.output());

        // The same run, killed with SIGKILL as soon as its first checkpoint is on disk.
        Path checkpoint = killed.resolveSibling("v.checkpoint.safetensors");
        Process p = new ProcessBuilder(train(killed, "--epochs", "2", "--batch", "1", "--checkpoint-every", "1", "--dtype", "bf16"))
                .redirectErrorStream(true)
                .redirectOutput(shared.resolve("killed.log").toFile()).start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(240);
        while (!Files.exists(checkpoint) && p.isAlive() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(Files.exists(checkpoint), "no checkpoint appeared: " + Files.readString(shared.resolve("killed.log")));
        p.destroyForcibly(); // SIGKILL: no shutdown hook, no finally block runs
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(137, p.exitValue(), "the process was killed by SIGKILL");
        assertFalse(Files.exists(killed), "the killed run must not have finished (8 steps; it was killed after the first)");

        Exit resumed = run(train(killed, "--epochs", "2", "--batch", "1", "--checkpoint-every", "1", "--resume"),
                shared.resolve("resumed.log"));
        assertEquals(0, resumed.code(), resumed.output());
        assertTrue(resumed.output().contains("(resumed from the checkpoint beside --out)"), "the run says it resumed: " + resumed.output());
        // no --dtype on resuming: the checkpoint's (bf16 is never this CPU's default, which would be refused)
        assertTrue(resumed.output().contains("resuming in bf16, the dtype v.checkpoint.safetensors was trained in"), resumed.output());
        assertFalse(a.output().contains("resumed from"), "a fresh run does not claim to resume: " + a.output());

        SteeringVectorFile want = SteeringVectorFile.read(whole);
        SteeringVectorFile got = SteeringVectorFile.read(killed);
        assertArrayEquals(want.w(), got.w(), "the resumed vector differs from the uninterrupted run's");
        assertArrayEquals(want.factorPositive(), got.factorPositive());
        assertArrayEquals(want.factorNegative(), got.factorNegative());
        assertArrayEquals(Files.readAllBytes(whole.resolveSibling("v.loss.csv")),
                Files.readAllBytes(killed.resolveSibling("v.loss.csv")), "the loss curves differ");
    }

    @Test
    void sigtermDuringTrainingCheckpointsTheLastStepAndResumeGivesTheUninterruptedVector() throws Exception {
        // 4 pairs x 12 epochs at batch 1: 48 steps, and no --checkpoint-every: the only checkpoint is
        // the one written on the way out, which every train run writes when it is stopped.
        String[] settings = {"--epochs", "12", "--batch", "1", "--dtype", "bf16"};
        Path whole = shared.resolve("whole-term").resolve("v.safetensors");
        Path term = shared.resolve("term").resolve("v.safetensors");
        Files.createDirectories(whole.getParent());
        Files.createDirectories(term.getParent());
        Exit a = run(train(whole, settings), shared.resolve("whole-term.log"));
        assertEquals(0, a.code(), a.output());

        Path log = shared.resolve("term.log");
        ProcessBuilder pb = new ProcessBuilder(train(term, settings)).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("CDAS_PROGRESS", "lines");
        pb.environment().put("CDAS_PROGRESS_SECONDS", "0"); // a line per step: the test sees the steps go by
        Process p = pb.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        while (p.isAlive() && System.nanoTime() < deadline && !Files.readString(log).contains("train 3/48 ")) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "the run ended before it could be interrupted: " + Files.readString(log));
        p.destroy(); // SIGTERM: the shutdown hooks run
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(143, p.exitValue(), Files.readString(log));
        Path checkpoint = term.resolveSibling("v.checkpoint.safetensors");
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("interrupted: train at step (\\d+) of 48; checkpoint of this step "
                + "written to " + java.util.regex.Pattern.quote(checkpoint.toString()) + "; the same command with --resume continues "
                + "from it").matcher(Files.readString(log));
        assertTrue(m.find(), "one line saying what was kept: " + Files.readString(log));
        long stopped = Long.parseLong(m.group(1));
        assertTrue(stopped >= 3 && stopped < 48, "stopped at step " + stopped);
        assertEquals(stopped, dev.cdas.train.TrainingCheckpoint.read(checkpoint).step(), "the checkpoint is of the step the line names");
        assertFalse(Files.exists(term), "the interrupted run must not have written its vector");

        List<String> again = new ArrayList<>(train(term, settings));
        again.add("--resume");
        Exit resumed = run(again, shared.resolve("term-resumed.log"));
        assertEquals(0, resumed.code(), resumed.output());
        assertFalse(resumed.output().contains("interrupted:"), "a run that finishes says nothing of the kind: " + resumed.output());
        assertArrayEquals(SteeringVectorFile.read(whole).w(), SteeringVectorFile.read(term).w(),
                "resumed from the exit checkpoint, the vector is the uninterrupted run's");
        assertArrayEquals(Files.readAllBytes(whole.resolveSibling("v.loss.csv")), Files.readAllBytes(term.resolveSibling("v.loss.csv")));
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 2})
    void sigtermDuringFanOutKeepsTheFinishedConceptsAndTheStepsOfThoseInTraining(int pack) throws Exception {
        // 12 concepts of 2 pairs each, 12 epochs at batch 1 (24 steps each), one by one or packed two
        // at a time; SIGTERM (Slurm's time limit, a Kubernetes eviction) once the first concepts'
        // manifest lines are on disk and the next concepts have taken 2 steps.
        com.fasterxml.jackson.databind.ObjectMapper json = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> rows = new ArrayList<>();
        List<String> demo = Files.readAllLines(CliSupport.demoRoot().resolve(CliSupport.DEMO_HELDOUT));
        for (int i = 0; i < 24; i++) {
            com.fasterxml.jackson.databind.node.ObjectNode r = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(demo.get(i));
            r.put("concept", "concept " + i / 2).put("concept_id", 100 + i / 2);
            rows.add(json.writeValueAsString(r));
        }
        Path concepts = Files.write(shared.resolve("twelve.jsonl"), rows);
        Path dir = shared.resolve("fanout-term-" + pack);
        Path whole = shared.resolve("fanout-whole-" + pack);
        List<String> cmd = fanOut(concepts, dir, pack);
        Exit reference = run(fanOut(concepts, whole, pack), shared.resolve("fanout-whole-" + pack + ".log"));
        assertEquals(0, reference.code(), reference.output());

        Path log = shared.resolve("fanout-term-" + pack + ".log");
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("CDAS_PROGRESS", "lines");
        pb.environment().put("CDAS_PROGRESS_SECONDS", "0"); // a line per step: the test sees the steps go by
        Process p = pb.start();
        Path manifest = dir.resolve("manifest.jsonl");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
        // one by one, each concept's steps: "train 2/24 "; packed, the pack's: "train 52/288 " once the
        // first two concepts' 48 steps are done and the next two have taken 2 each
        String second = pack == 1 ? "train 2/24 " : "train " + (24 * pack + 2 * pack) + "/288 ";
        int seen = pack == 1 ? 2 : 1;
        while (p.isAlive() && System.nanoTime() < deadline
                && !(Files.exists(manifest) && Files.readAllLines(manifest).size() >= pack
                     && Files.readString(log).split(java.util.regex.Pattern.quote(second), -1).length > seen)) {
            Thread.sleep(5);
        }
        assertTrue(p.isAlive(), "the run ended before the next concepts could be interrupted: " + Files.readString(log));
        p.destroy(); // SIGTERM: the shutdown hooks run
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(143, p.exitValue(), Files.readString(log));
        String out = Files.readString(log);
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("interrupted: (\\d+) of the 12 concepts this run was to train "
                + "finished and are recorded in " + java.util.regex.Pattern.quote(manifest.toString()) + "; the same command trains "
                + "the other (\\d+) \\(finished concepts are skipped; one stopped in training continues from the last step it "
                + "finished\\)").matcher(out);
        assertTrue(m.find(), "one line saying what is kept: " + out);
        assertFalse(out.contains("--resume"), "a fan-out is continued by the same command, not by --resume: " + out);
        int said = Integer.parseInt(m.group(1));
        int kept = Files.readAllLines(manifest).size();
        assertTrue(said >= 1 && said <= kept && kept < 12 && said + Integer.parseInt(m.group(2)) == 12, said + " said, " + kept
                + " in the manifest: " + out);
        List<Path> checkpoints = checkpoints(dir);
        assertEquals(pack, checkpoints.size(), "each concept in training left its checkpoint: " + checkpoints + "\n" + out);
        List<Long> steps = new ArrayList<>();
        for (Path ck : checkpoints) {
            long step = dev.cdas.train.TrainingCheckpoint.read(ck).step();
            assertTrue(step >= 2 && step < 24, ck + ": checkpoint of step " + step);
            steps.add(step);
        }

        Exit again = run(cmd, shared.resolve("fanout-term-again.log"));
        assertEquals(0, again.code(), again.output());
        assertEquals(kept, again.output().lines().filter(l -> l.startsWith("skipped ")).count(), again.output());
        assertEquals(12, Files.readAllLines(manifest).size());
        assertFalse(again.output().contains("interrupted:"), "a run that finishes says nothing of the kind");
        assertEquals(List.of(), checkpoints(dir), "a recorded concept's checkpoint is removed");
        List<String> continued = again.output().lines().filter(l -> l.contains(", continued from the checkpoint of step ")).toList();
        assertEquals(pack, continued.size(), again.output());
        for (int i = 0; i < pack; i++) {
            String interrupted = checkpoints.get(i).getFileName().toString().replace(ConceptFanOut.CHECKPOINT, "");
            long step = steps.get(i);
            assertTrue(continued.stream().anyMatch(l -> l.startsWith("ok ") && l.contains(interrupted + ".safetensors")
                    && l.endsWith("step " + step)), interrupted + " at step " + step + ": " + continued);
        }
        assertEquals(pack, Files.readString(manifest).split("\"resumed_from_step\":", -1).length - 1, Files.readString(manifest));
        // the concept resumed from its checkpoint (and every other) ends as the uninterrupted run's
        for (int c = 0; c < 12; c++) {
            String stem = ConceptFanOut.VECTORS + "/" + (100 + c) + "-concept-" + c;
            assertArrayEquals(SteeringVectorFile.read(whole.resolve(stem + ".safetensors")).w(),
                    SteeringVectorFile.read(dir.resolve(stem + ".safetensors")).w(), stem);
            assertArrayEquals(Files.readAllBytes(whole.resolve(stem + ".loss.csv")), Files.readAllBytes(dir.resolve(stem + ".loss.csv")),
                    stem + ".loss.csv");
        }
    }

    /** {@code train --concepts all --pack K} of {@code concepts} into {@code dir}, 24 steps per concept. */
    private static List<String> fanOut(Path concepts, Path dir, int pack) {
        List<String> cmd = new ArrayList<>(train(shared.resolve("unused.safetensors")));
        int at = cmd.indexOf("--out");
        cmd.subList(at, at + 2).clear();
        cmd.set(cmd.indexOf(data.toString()), concepts.toString());
        cmd.addAll(List.of("--concepts", "all", "--out-dir", dir.toString(), "--epochs", "12", "--batch", "1",
                "--pack", Integer.toString(pack)));
        return cmd;
    }

    private static List<Path> checkpoints(Path dir) throws IOException {
        try (var files = Files.list(dir.resolve(ConceptFanOut.VECTORS))) {
            return files.filter(f -> f.getFileName().toString().endsWith(ConceptFanOut.CHECKPOINT)).sorted().toList();
        }
    }

    @Test
    void aFileSizeLimitEndsInOneLineNamingTheFileAndKeepsThePreviousFile() throws Exception {
        Path dir = Files.createDirectories(shared.resolve("limited"));
        Path out = dir.resolve("v.safetensors");
        byte[] previous = "a previous result that must survive".getBytes(StandardCharsets.UTF_8);
        Files.write(out, previous);
        // ulimit -f 1: no file may grow past 1 KiB; the JVM ignores SIGXFSZ, so writes fail with EFBIG.
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "ulimit -f 1 && exec \"$@\"", "bash"));
        cmd.addAll(train(out, "--epochs", "1", "--batch", "2"));
        Exit r = run(cmd, shared.resolve("limited.log"));
        assertFailsWithOneLine(r, "File too large");
        assertArrayEquals(previous, Files.readAllBytes(out), "the previous file was changed");
        assertOnlyCompleteFiles(dir, out);
    }

    @Test
    void aFullFileSystemEndsInOneLineNamingTheFileAndKeepsThePreviousFile() throws Exception {
        Path mount = Files.createDirectories(shared.resolve("full"));
        assumeTrue(mountSmallTmpfs(mount), "a 64 KiB tmpfs cannot be mounted here (needs root and CAP_SYS_ADMIN)");
        try {
            Path out = mount.resolve("v.safetensors");
            byte[] previous = "a previous result that must survive".getBytes(StandardCharsets.UTF_8);
            Files.write(out, previous);
            fill(mount.resolve("filler"));
            Exit r = run(train(out, "--epochs", "1", "--batch", "2"), shared.resolve("full.log"));
            assertFailsWithOneLine(r, "No space left on device");
            assertArrayEquals(previous, Files.readAllBytes(out), "the previous file was changed");
            assertOnlyCompleteFiles(mount, out, mount.resolve("filler"));
        } finally {
            new ProcessBuilder("umount", mount.toString()).inheritIO().start().waitFor(30, TimeUnit.SECONDS);
        }
    }

    static void assertFailsWithOneLine(Exit r, String reason) {
        assertNotEquals(0, r.code(), r.output());
        assertFalse(r.output().contains("\tat ") || r.output().contains("Exception"), "a stack trace:\n" + r.output());
        List<String> errors = r.output().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(1, errors.size(), r.output());
        String line = errors.get(0);
        assertTrue(line.contains("cannot write " + Path.of("").toAbsolutePath().getRoot()) && line.contains(".safetensors"),
                "the error names the file: " + line);
        assertTrue(line.contains(reason), "the error says why (" + reason + "): " + line);
    }

    /** Nothing but the given files: no temporary file left behind, no partial output. */
    static void assertOnlyCompleteFiles(Path dir, Path... allowed) throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            List<Path> left = files.filter(f -> !List.of(allowed).contains(f)).toList();
            assertEquals(List.of(), left, "files left behind by the failed run");
        }
    }

    static boolean mountSmallTmpfs(Path mount) throws Exception {
        if (!"root".equals(System.getProperty("user.name"))) {
            return false;
        }
        Process p = new ProcessBuilder("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount.toString())
                .redirectErrorStream(true).start();
        return p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    }

    static void fill(Path filler) throws IOException {
        byte[] block = new byte[4096];
        try (var out = Files.newOutputStream(filler)) {
            while (true) {
                out.write(block);
                out.flush();
            }
        } catch (IOException full) {
            // the file system is full now
        }
    }
}
