package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.eval.MultipleChoiceData;
import dev.cdas.eval.MultipleChoiceFormat;
import dev.cdas.eval.MultipleChoiceItem;
import dev.cdas.eval.MultipleChoiceScorer;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * mc on the bundled demo and its evaluation set: the report's layout and numbers (those of the
 * library's scorer, which MultipleChoiceScorerTest checks against Model.forward), steering, and
 * bad input (exit 2, one line naming the file, nothing written).
 */
class McCommandTest {
    @TempDir
    static Path shared;
    static Path model;
    static Path mmlu;
    static Path truthfulqa;
    static Path vector;

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        mmlu = root.resolve("demo/data/mmlu.jsonl");
        truthfulqa = root.resolve("demo/data/truthfulqa_mc.jsonl");
        vector = shared.resolve("v.safetensors");
        float[] w = new float[192];
        java.util.Random rng = new java.util.Random(3);
        double n = 0;
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rng.nextGaussian();
            n += w[i] * w[i];
        }
        for (int i = 0; i < w.length; i++) {
            w[i] /= (float) Math.sqrt(n);
        }
        new SteeringVectorFile(w, 1, 192, 1, new double[] {4}, new double[] {-3}, "demo",
                "Star Trek", "cdas", java.util.Map.of()).write(vector);
    }

    static JsonNode report(Path file) throws IOException {
        return new ObjectMapper().readTree(Files.readString(file));
    }

    /** What the library gives for the same data, model options and steering. */
    static double[][] library(Path data, MultipleChoiceFormat format, SteeringVectorFile v, double[] values) throws IOException {
        List<MultipleChoiceItem> items = MultipleChoiceData.read(data, format, "").subList(0, 3);
        try (ModelFolder folder = ModelFolder.open(model);
             Model m = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults().withDtype(dev.cdas.DType.F32))) {
            MultipleChoiceScorer s = new MultipleChoiceScorer(m, folder.tokenizer(), v, values);
            double[][] out = new double[items.size()][];
            for (int i = 0; i < out.length; i++) {
                out[i] = s.loglikelihoods(items.get(i));
            }
            return out;
        }
    }

    static void assertLogLikelihoods(double[][] expected, JsonNode items) {
        assertEquals(expected.length, items.size());
        for (int i = 0; i < expected.length; i++) {
            JsonNode ll = items.get(i).get("loglikelihoods");
            assertEquals(expected[i].length, ll.size());
            for (int c = 0; c < expected[i].length; c++) {
                assertEquals(expected[i][c], ll.get(c).asDouble(), 0, "item " + i + " choice " + c);
            }
        }
    }

    @Test
    void mmluUnsteeredAndSteered(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("sub").resolve("r.json");
        TrainSteerObjectiveCommandTest.Run r = run("mc", "--model", model.toString(), "--data", mmlu.toString(), "--format", "mmlu",
                "--limit", "3", "--dtype", "f32", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("mmlu: accuracy ") && r.out().contains("over 3 questions, unsteered"), r.out());
        JsonNode j = report(out);
        JsonNode items = j.get("items");
        assertLogLikelihoods(library(mmlu, MultipleChoiceFormat.MMLU, null, null), items);
        double correct = 0;
        for (JsonNode it : items) {
            JsonNode ll = it.get("loglikelihoods");
            int best = 0;
            for (int c = 1; c < ll.size(); c++) {
                best = ll.get(c).asDouble() > ll.get(best).asDouble() ? c : best;
            }
            assertEquals(best, it.get("prediction").asInt());
            correct += best == it.get("answer").asInt() ? 1 : 0;
        }
        assertEquals(1, items.get(0).get("answer").asInt());
        assertEquals(correct / 3, j.get("accuracy").asDouble(), 1e-12);
        assertEquals("mmlu", j.get("format").asText());
        assertTrue(j.get("by_subject").has("elementary_mathematics"), j.toString());

        Path steeredOut = dir.resolve("steered.json");
        r = run("mc", "--model", model.toString(), "--data", mmlu.toString(), "--format", "mmlu", "--vector", vector.toString(),
                "--inject", "--multiplier", "2", "--limit", "3", "--dtype", "f32", "--out", steeredOut.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("injecting \"Star Trek\" x2.0"), r.out());
        JsonNode s = report(steeredOut);
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        assertLogLikelihoods(library(mmlu, MultipleChoiceFormat.MMLU, v, v.values(true, 2)), s.get("items"));
        assertFalse(s.get("items").get(0).get("loglikelihoods").equals(items.get(0).get("loglikelihoods")), "steering changes the numbers");
        assertEquals("inject", s.get("run").get("steering").asText());
        assertEquals("1", s.get("run").get("prefix_len").asText(), "the demo tokenizer adds a BOS");
    }

    @Test
    void truthfulQaMc2ScoresAreTheTrueMass(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("r.json");
        TrainSteerObjectiveCommandTest.Run r = run("mc", "--model", model.toString(), "--data", truthfulqa.toString(),
                "--format", "truthfulqa-mc2", "--vector", vector.toString(), "--suppress", "--limit", "2", "--dtype", "f32", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = report(out);
        assertEquals(2, j.get("items").size());
        double sum = 0;
        for (JsonNode it : j.get("items")) {
            double all = 0;
            double right = 0;
            for (int c = 0; c < it.get("loglikelihoods").size(); c++) {
                double p = Math.exp(it.get("loglikelihoods").get(c).asDouble());
                all += p;
                right += it.get("labels").get(c).asInt() == 1 ? p : 0;
            }
            assertEquals(right / all, it.get("score").asDouble(), 1e-9);
            sum += it.get("score").asDouble();
        }
        assertEquals(sum / 2, j.get("accuracy").asDouble(), 1e-12);
        assertEquals("suppress", j.get("run").get("steering").asText());
    }

    @Test
    void badInputExitsWithTwoAndOneLineNamingTheProblem(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("out").resolve("r.json");
        Path broken = dir.resolve("broken.jsonl");
        Files.writeString(broken, "{\"question\": \"q\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n{\"question\": 3}\n");
        String m = model.toString();
        fails(dir, broken + " line 2, field \"question\": expected a string",
                "mc", "--model", m, "--data", broken.toString(), "--format", "mmlu", "--out", out.toString());
        fails(dir, broken + " line 1, field \"mc1_targets\": missing",
                "mc", "--model", m, "--data", broken.toString(), "--format", "truthfulqa-mc1", "--out", out.toString());
        fails(dir, "missing.parquet",
                "mc", "--model", m, "--data", dir.resolve("missing.parquet").toString(), "--format", "mmlu", "--out", out.toString());
        TrainSteerObjectiveCommandTest.Run usage = run("mc", "--model", m, "--data", mmlu.toString(), "--format", "hellaswag",
                "--out", out.toString());
        assertEquals(2, usage.exit());
        assertTrue(usage.err().contains("unknown multiple-choice format \"hellaswag\"; expected one of [mmlu, truthfulqa-mc1, truthfulqa-mc2]"),
                usage.err());
        fails(dir, "--vector needs --inject or --suppress",
                "mc", "--model", m, "--data", mmlu.toString(), "--format", "mmlu", "--vector", vector.toString(), "--out", out.toString());
        fails(dir, "give --vector",
                "mc", "--model", m, "--data", mmlu.toString(), "--format", "mmlu", "--inject", "--out", out.toString());
        Path longer = dir.resolve("long.jsonl");
        Files.writeString(longer, "{\"question\": \"" + "why ".repeat(400) + "\", \"choices\": [\"a\", \"b\"], \"answer\": 0}\n");
        try {
            fails(dir, "long.jsonl line 1: the sequence is ",
                    "mc", "--model", m, "--data", longer.toString(), "--format", "mmlu", "--out", out.toString());
        } finally {
            Files.delete(longer);
        }
        fails(dir, "--limit must be at least 1",
                "mc", "--model", m, "--data", mmlu.toString(), "--format", "mmlu", "--limit", "0", "--out", out.toString());
    }

    private static void fails(Path dir, String expected, String... args) throws IOException {
        TrainSteerObjectiveCommandTest.Run r = run(args);
        assertEquals(2, r.exit(), r.out() + r.err());
        assertEquals(1, r.err().lines().filter(s -> !s.isBlank()).count(), "one line: " + r.err());
        assertTrue(r.err().contains(expected), "expected \"" + expected + "\" in: " + r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace: " + r.err());
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(List.of("broken.jsonl"), left.map(p -> p.getFileName().toString()).filter(n -> !n.equals("long.jsonl")).toList(),
                    "nothing written");
        }
    }
}
