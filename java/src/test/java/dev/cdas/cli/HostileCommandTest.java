package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.io.SafetensorsWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16's hostile inputs through the commands: each ends within seconds in one line naming the
 * problem and the file, exit code 2, no stack trace, nothing written (and nothing but a regular file replaced).
 */
class HostileCommandTest {
    private static final Duration QUICK = Duration.ofSeconds(30);

    private static void assertInputError(Path outDir, String expected, String... args) throws Exception {
        TrainSteerObjectiveCommandTest.Run r = assertTimeoutPreemptively(QUICK, () -> TrainSteerObjectiveCommandTest.run(args));
        assertEquals(Main.INPUT_ERROR, r.exit(), String.join(" ", args) + ": " + r.out() + r.err());
        assertTrue(r.err().startsWith("error: ") && r.err().contains(expected), "expected \"" + expected + "\" in: " + r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertFalse(r.err().contains("\tat "), r.err());
        if (outDir != null) {
            try (Stream<Path> left = Files.list(outDir)) {
                assertEquals(List.of(), left.filter(p -> !Files.isSymbolicLink(p) && Files.isRegularFile(p)).toList(), "left behind");
            }
        }
    }

    private static String[] with(String[] args, String... more) {
        String[] all = Arrays.copyOf(args, args.length + more.length);
        System.arraycopy(more, 0, all, args.length, more.length);
        return all;
    }

    @Test
    void specialFilesThreadsAndVectorsFailCleanly(@TempDir Path tmp) throws Exception {
        Path root = CliSupport.demoRoot();
        String model = root.resolve(CliSupport.DEMO_MODEL).toString();
        String data = root.resolve(CliSupport.DEMO_HELDOUT).toString();
        Path out = Files.createDirectories(tmp.resolve("out"));

        // a model folder whose config.json is a FIFO: refused at once, naming it
        Path fifoModel = Files.createDirectories(tmp.resolve("fifo-model"));
        try (Stream<Path> files = Files.list(Path.of(model))) {
            for (Path f : files.toList()) {
                if (!f.getFileName().toString().equals("config.json")) {
                    Files.createSymbolicLink(fifoModel.resolve(f.getFileName()), f.toAbsolutePath());
                }
            }
        }
        dev.cdas.hostile.HostileFilesTest.mkfifo(fifoModel.resolve("config.json"));
        assertInputError(out, fifoModel.resolve("config.json") + ": is a FIFO",
                "logits", "--model", fifoModel.toString(), "--tokens", "1,2", "--out", out.resolve("l.safetensors").toString());

        // --out a FIFO or a device (through a link): refused, and left as it was
        Path fifoOut = dev.cdas.hostile.HostileFilesTest.mkfifo(out.resolve("fifo.safetensors"));
        assertInputError(out, fifoOut + ": is a FIFO", "logits", "--model", model, "--tokens", "1,2", "--out", fifoOut.toString());
        Path devOut = Files.createSymbolicLink(out.resolve("dev.json"), Path.of("/dev/null"));
        assertInputError(out, devOut + ": is a character device",
                "eval", "--model", model, "--vector", "none.safetensors", "--data", data, "--out", devOut.toString());
        assertTrue(Files.isSymbolicLink(devOut));
        Files.delete(fifoOut);
        Files.delete(devOut);

        // steer --prompts and --vector FIFOs: no hang
        Path fifoPrompts = dev.cdas.hostile.HostileFilesTest.mkfifo(tmp.resolve("prompts.txt"));
        assertInputError(out, fifoPrompts + ": is a FIFO",
                "steer", "--model", model, "--vector", "v.safetensors", "--inject", "--prompts", fifoPrompts.toString());
        Path fifoVector = dev.cdas.hostile.HostileFilesTest.mkfifo(tmp.resolve("fifo.safetensors"));
        assertInputError(out, fifoVector + ": is a FIFO",
                "steer", "--model", model, "--vector", fifoVector.toString(), "--inject", "--prompt", "hi");
        Path badPrompts = Files.write(tmp.resolve("bad.txt"), new byte[] {'h', (byte) 0xc3, '\n'});
        assertInputError(out, badPrompts + ": is not valid UTF-8 text",
                "steer", "--model", model, "--vector", "v.safetensors", "--inject", "--prompts", badPrompts.toString());

        // --threads far beyond the cores: a clear error instead of SIGSEGV
        assertInputError(out, "--threads must be between 0 (the default) and ",
                "logits", "--model", model, "--tokens", "1,2", "--out", out.resolve("l.safetensors").toString(), "--threads", "30000");

        // a prompt far longer than the model's context: refused before attention over it is allocated
        assertInputError(out, "the sequence is ", "logits", "--model", model, "--text", "Kirk to Enterprise. ".repeat(2000),
                "--out", out.resolve("l.safetensors").toString(), "--threads", "1");
        assertInputError(out, "tokens long, more than the model's context of 256 learned positions", "logits", "--model", model,
                "--text", "Kirk to Enterprise. ".repeat(2000), "--out", out.resolve("l.safetensors").toString(), "--threads", "1");

        // unusable directions: the same error from every command
        float[] huge = new float[192];
        Arrays.fill(huge, 3e38f);
        Path hv = tmp.resolve("huge.safetensors");
        new SafetensorsWriter().metadata(Map.of("layer", "1", "factor_positive", "1.0", "factor_negative", "-1.0",
                "model", "x", "concept", "Star Trek", "method", "cdas")).add("w", new long[] {192}, huge).write(hv);
        Path zv = tmp.resolve("zero.safetensors");
        new SafetensorsWriter().metadata(Map.of("layer", "1", "factor_positive", "1.0", "factor_negative", "-1.0",
                "model", "x", "concept", "Star Trek", "method", "cdas")).add("w", new long[] {192}, new float[192]).write(zv);
        for (Path v : List.of(hv, zv)) {
            String expected = v + ": direction 0 " + (v == hv ? "has norm" : "is zero");
            String vec = v.toString();
            assertInputError(out, expected, "logits", "--model", model, "--tokens", "1,2", "--out", out.resolve("l.safetensors").toString(),
                    "--vector", vec, "--factor", "1");
            assertInputError(out, expected, "steer", "--model", model, "--vector", vec, "--inject", "--prompt", "hi");
            assertInputError(out, expected, "objective", "--model", model, "--vector", vec, "--data", data);
            assertInputError(out, expected, "eval", "--model", model, "--vector", vec, "--data", data);
        }
    }

    /**
     * Item 7 for a rotary model and the objective: a prompt past max_position_embeddings is refused
     * naming config.json; a pair past it is refused naming the data file and line; the objective of
     * a file is the same whatever the number of pairs per native call.
     */
    @Test
    void rotaryContextAndChunkedObjective(@TempDir Path tmp) throws Exception {
        Path fixture = dev.cdas.model.Fixtures.dir("qwen2");
        String model = fixture.toString();
        Path out = Files.createDirectories(tmp.resolve("out"));
        assertInputError(out, "more than the model's context of 64 positions (max_position_embeddings in " + fixture.resolve("config.json") + ")",
                "logits", "--model", model, "--text", "Kirk to Enterprise. ".repeat(50), "--out", out.resolve("l.safetensors").toString());

        float[] w = new float[48];
        w[3] = 1;
        Path vector = tmp.resolve("w.safetensors");
        new SafetensorsWriter().metadata("layer", "1").add("w", new long[] {48}, w).write(vector);
        Path pairs = tmp.resolve("pairs.jsonl");
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < 5; i++) {
            lines.append("{\"negative_input\": \"Say hi " + i + "\", \"negative_output\": \"Hi.\", "
                    + "\"positive_input\": \"Talk about cats " + i + "\", \"positive_output\": \"Cats purr " + i + "\"}\n");
        }
        Files.writeString(pairs, lines);
        String[] objective = {"objective", "--model", model, "--vector", vector.toString(), "--data", pairs.toString(),
            "--max-response-tokens", "4"};
        double[] losses = new double[3];
        int k = 0;
        for (String perCall : new String[] {"1", "2", "100"}) {
            TrainSteerObjectiveCommandTest.Run r = TrainSteerObjectiveCommandTest.run(with(objective, "--pairs-per-call", perCall));
            assertEquals(0, r.exit(), r.err());
            losses[k++] = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.out()).get("loss").asDouble();
        }
        assertTrue(losses[0] > 0, "loss " + losses[0]);
        assertEquals(losses[2], losses[0], 1e-5 * losses[2]);
        assertEquals(losses[2], losses[1], 1e-5 * losses[2]);
        assertInputError(null, "--pairs-per-call must be at least 1, got 0", with(objective, "--pairs-per-call", "0"));

        Files.writeString(pairs, lines + "{\"negative_input\": \"" + "Say hi. ".repeat(40) + "\", \"negative_output\": \"Hi.\", "
                + "\"positive_input\": \"Cats?\", \"positive_output\": \"Purr.\"}\n");
        assertInputError(null, "pairs.jsonl line 6: a sequence of this pair is ", objective);
    }
}
