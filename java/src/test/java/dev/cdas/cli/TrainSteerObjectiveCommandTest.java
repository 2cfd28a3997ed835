package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.io.SafetensorsWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** train, objective and steer on the bundled demo model: results, and clear errors that leave nothing behind. */
class TrainSteerObjectiveCommandTest {
    record Run(int exit, String out, String err) {}

    static Path root;
    static Path model;

    @TempDir
    static Path shared;
    static Path data;
    static Path vector;

    @BeforeAll
    static void setUp() throws IOException {
        root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        List<String> lines = Files.readAllLines(root.resolve(CliSupport.DEMO_HELDOUT));
        data = shared.resolve("few.jsonl");
        Files.write(data, lines.subList(0, 6));
        vector = shared.resolve("v.safetensors");
        Run r = run("train", "--model", model.toString(), "--data", data.toString(), "--layer", "1", "--out", vector.toString(),
                "--epochs", "1", "--batch", "3", "--max-response-tokens", "16");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(Files.exists(vector));
        assertTrue(r.out().contains("factors: a+ = "), r.out());
    }

    static Run run(String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try (PrintStream po = new PrintStream(o, true, StandardCharsets.UTF_8);
             PrintStream pe = new PrintStream(e, true, StandardCharsets.UTF_8)) {
            System.setOut(po);
            System.setErr(pe);
            int exit = Main.run(args);
            return new Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    static void assertFailsCleanly(Path dir, String expected, String... args) throws IOException {
        Run r = run(args);
        assertEquals(Main.INPUT_ERROR, r.exit(), r.out() + r.err());
        List<String> errors = r.err().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(1, errors.size(), "one error line: " + r.err());
        assertTrue(errors.get(0).contains(expected), "expected \"" + expected + "\" in: " + errors.get(0));
        assertFalse(r.err().contains("\tat ") || r.err().contains("Exception"), "no stack trace: " + r.err());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of(), left.toList(), "left behind");
        }
    }

    @Test
    void trainWritesTheVectorWithItsMetadata() throws IOException {
        var v = dev.cdas.train.SteeringVectorFile.read(vector);
        assertEquals(1, v.layer());
        assertEquals("Star Trek", v.concept());
        assertEquals("cdas", v.method());
        assertEquals(192, v.dimension());
        assertTrue(Files.exists(shared.resolve("v.loss.csv")));
    }

    @Test
    void objectivePrintsOneJsonObjectWithLossAndGradient() throws IOException {
        Run r = run("objective", "--model", model.toString(), "--data", data.toString(), "--vector", vector.toString(),
                "--max-response-tokens", "16");
        assertEquals(0, r.exit(), r.err());
        JsonNode json = new ObjectMapper().readTree(r.out());
        double loss = json.get("loss").asDouble();
        assertTrue(loss > 0 && loss <= Math.log(2), r.out());
        assertEquals(192, json.get("grad").size());
        assertTrue(json.get("grad").get(0).isNumber());
    }

    @Test
    void steerPrintsUnsteeredAndSteeredSideBySide() {
        Run r = run("steer", "--model", model.toString(), "--vector", vector.toString(), "--inject", "--grid", "1,4",
                "--prompt", "Give me a quote.", "--max-new-tokens", "6");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("unsteered:") && r.out().contains("inject x1.0:") && r.out().contains("inject x4.0:"), r.out());
        Run s = run("steer", "--model", model.toString(), "--vector", vector.toString(), "--suppress",
                "--prompt", "What is a good quote about food?", "--max-new-tokens", "6", "--temperature", "0");
        assertEquals(0, s.exit(), s.err());
        assertTrue(s.out().contains("suppress x1.0:"), s.out());
    }

    /**
     * steer's greedy first steered token is the argmax of logits --vector at the clamp value
     * 4 a+ (the same clamp from the same prefix_len, through another command), the unsteered one the
     * plain argmax, and steering changes the next-token logits.
     */
    @Test
    void steeredGreedyTokenMatchesTheClampThroughLogits() throws IOException {
        String prompt = "Give me a quote.";
        Run greedy = run("steer", "--model", model.toString(), "--vector", vector.toString(), "--inject", "--grid", "4",
                "--prompt", prompt, "--max-new-tokens", "1", "--temperature", "0");
        assertEquals(0, greedy.exit(), greedy.err());
        String unsteered = column(greedy.out(), "unsteered:");
        String steered = column(greedy.out(), "inject x4.0:");

        var v = dev.cdas.train.SteeringVectorFile.read(vector);
        Path logits = shared.resolve("steer-logits.safetensors");
        int prefixLen;
        int[] chosen = new int[2];
        float[][] lastRow = new float[2][];
        try (var folder = dev.cdas.model.ModelFolder.open(model)) {
            prefixLen = folder.prompts().prefixLen();
            for (int k = 0; k < 2; k++) {
                List<String> args = new java.util.ArrayList<>(List.of("logits", "--model", model.toString(), "--text", prompt,
                        "--chat", "--out", logits.toString()));
                if (k == 1) {
                    args.addAll(List.of("--vector", vector.toString(), "--factor", Double.toString(4 * v.factorPositive()[0]),
                            "--prefix-len", Integer.toString(prefixLen)));
                }
                Run l = run(args.toArray(String[]::new));
                assertEquals(0, l.exit(), l.err());
                try (var st = dev.cdas.io.Safetensors.open(logits)) {
                    float[] z = st.tensor("logits").toFloatArray();
                    int vocab = (int) st.tensor("logits").dim(1);
                    int last = z.length / vocab - 1;
                    lastRow[k] = java.util.Arrays.copyOfRange(z, last * vocab, (last + 1) * vocab);
                    int best = 0;
                    for (int j = 1; j < vocab; j++) {
                        if (z[last * vocab + j] > z[last * vocab + best]) {
                            best = j;
                        }
                    }
                    chosen[k] = best;
                }
            }
            var tok = folder.prompts().tokenizer();
            assertEquals(CliSupport.oneLine(tok.decode(new int[] {chosen[0]}, true)), unsteered, "unsteered token");
            assertEquals(CliSupport.oneLine(tok.decode(new int[] {chosen[1]}, true)), steered, "steered token (a = 4 a+)");
        }
        // steering moves the next-token distribution (the test's vector, 2 steps on 6 pairs, need not change the argmax)
        double moved = 0;
        for (int j = 0; j < lastRow[0].length; j++) {
            moved = Math.max(moved, Math.abs(lastRow[0][j] - lastRow[1][j]));
        }
        assertTrue(moved > 1e-2, "steering at 4 a+ leaves the logits where they were (max change " + moved + ")");
    }

    /** The text after {@code label} on its line of steer's output. */
    static String column(String out, String label) {
        return out.lines().filter(l -> l.strip().startsWith(label)).findFirst()
                .map(l -> l.strip().substring(label.length()).strip()).orElseThrow(() -> new AssertionError(label + " not in:\n" + out));
    }

    @Test
    void badInputsGiveOneLineErrorsAndLeaveNothingBehind(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("out").resolve("v.safetensors");
        Path bad = Files.createDirectories(shared.resolve("bad"));
        Path malformed = bad.resolve("malformed.jsonl");
        Files.writeString(malformed, Files.readAllLines(data).get(0) + "\n{\"negative_input\": 3}\n");
        String m = model.toString();
        Files.createDirectories(out.getParent());
        Path outDir = out.getParent();
        assertFailsCleanly(outDir, "malformed.jsonl line 2, field \"negative_input\"",
                "train", "--model", m, "--data", malformed.toString(), "--layer", "1", "--out", out.toString());
        assertFailsCleanly(outDir, "--concept is empty",
                "train", "--model", m, "--data", data.toString(), "--layer", "1", "--out", out.toString(), "--concept", "");
        assertFailsCleanly(outDir, "no pairs with concept \"love\"",
                "train", "--model", m, "--data", data.toString(), "--layer", "1", "--out", out.toString(), "--concept", "love");
        assertFailsCleanly(outDir, "--layer 4 is out of range",
                "train", "--model", m, "--data", data.toString(), "--layer", "4", "--out", out.toString());
        assertFailsCleanly(outDir, "missing: --layer, --out", "train", "--model", m, "--data", data.toString());
        assertFailsCleanly(outDir, "--method must be one of cdas, das, diffmean, prompt, reps, bipo, loreft, got \"pca\"",
                "train", "--model", m, "--data", data.toString(), "--layer", "1", "--out", out.toString(), "--method", "pca");
        Path wrong = bad.resolve("wrong.safetensors");
        new SafetensorsWriter().metadata("layer", "1").add("w", new long[] {7}, new float[] {1, 0, 0, 0, 0, 0, 0}).write(wrong);
        assertFailsCleanly(outDir, "holds 7 floats, but the model's hidden size is 192",
                "objective", "--model", m, "--data", data.toString(), "--vector", wrong.toString());
        assertFailsCleanly(outDir, "--layer 9 is out of range",
                "objective", "--model", m, "--data", data.toString(), "--vector", vector.toString(), "--layer", "9");
        assertFailsCleanly(outDir, "metadata \"factor_positive\" is missing",
                "steer", "--model", m, "--vector", wrong.toString(), "--inject", "--prompt", "hi");
        Path deep = bad.resolve("deep.safetensors");
        float[] w = new float[192];
        w[0] = 1;
        new dev.cdas.train.SteeringVectorFile(w, 1, 192, 9, new double[] {1}, new double[] {-1}, "demo", "food", "cdas",
                java.util.Map.of()).write(deep);
        assertFailsCleanly(outDir, "deep.safetensors: metadata \"layer\" = 9 is out of range",
                "steer", "--model", m, "--vector", deep.toString(), "--inject", "--prompt", "hi");
        assertFailsCleanly(outDir, "deep.safetensors: metadata \"layer\" = 9 is out of range",
                "eval", "--model", m, "--vector", deep.toString(), "--data", data.toString());
    }
}
