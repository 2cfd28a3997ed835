package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * evaluate end to end on the bundled demo with the demo model as its own local judge (its answers
 * are mostly unparseable: the report's structure and counts are what is checked), the rerun that
 * reuses replies and judgements, the refusal mode, and bad input.
 */
class EvaluateCommandTest {
    @TempDir
    static Path shared;
    static Path model;
    static Path instructions;
    static Path harmful;
    static Path vector;
    static Path[] templates;

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        instructions = root.resolve("demo/data/eval.instructions.jsonl");
        harmful = root.resolve("demo/data/harmful.instructions.jsonl");
        vector = shared.resolve("v.safetensors");
        float[] w = new float[192];
        Random rng = new Random(3);
        double n = 0;
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rng.nextGaussian();
            n += w[i] * w[i];
        }
        for (int i = 0; i < w.length; i++) {
            w[i] /= (float) Math.sqrt(n);
        }
        new SteeringVectorFile(w, 1, 192, 1, new double[] {4}, new double[] {-3}, "demo", "Star Trek", "cdas", Map.of()).write(vector);
        // the demo's short templates: the demo model's context is 256 tokens
        templates = new Path[] {root.resolve("demo/data/judge-short-concept.txt"), root.resolve("demo/data/judge-short-instruction.txt"),
            root.resolve("demo/data/judge-short-fluency.txt")};
    }

    private static List<String> args(Path out, String... more) {
        List<String> a = new ArrayList<>(List.of("evaluate", "--model", model.toString(), "--vector", vector.toString(),
                "--instructions", instructions.toString(), "--limit", "4", "--factors", "2", "--max-new-tokens", "4",
                "--judge-model-dir", model.toString(), "--judge-max-tokens", "3", "--dtype", "f32", "--out-dir", out.toString(),
                "--judge-template-concept", templates[0].toString(), "--judge-template-instruction", templates[1].toString(),
                "--judge-template-fluency", templates[2].toString()));
        a.addAll(Arrays.asList(more));
        return a;
    }

    @Test
    void steeringEndToEndWithTheDemoAsItsOwnJudge(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("ev");
        TrainSteerObjectiveCommandTest.Run r = run(args(out).toArray(String[]::new));
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("| Factor | Concept | Instruction | Fluency | Harmonic mean |"), r.out());
        assertTrue(r.out().contains("| m = 1 |"), r.out());
        assertTrue(r.out().contains("(0 replies reused"), r.out());
        JsonNode j = new ObjectMapper().readTree(Files.readString(out.resolve("report.json")));
        assertEquals("steering", j.get("evaluation").asText());
        assertEquals("Star Trek", j.get("concept").asText());
        assertEquals("inject", j.get("mode").asText());
        assertEquals(2, j.get("factors").size());
        assertEquals(1.0, j.get("factors").get(0).asDouble(), 0);
        assertEquals(2, j.get("split").get("validation").size());
        assertEquals(2, j.get("split").get("test").size());
        JsonNode counts = j.get("counts");
        assertEquals(8, counts.get("items").asInt());
        assertEquals(24, counts.get("ratings").asInt());
        assertEquals(24, counts.get("parsed").asInt() + counts.get("unparseable").asInt() + counts.get("failed").asInt());
        assertEquals(0, counts.get("cached").asInt());
        assertEquals(8, j.get("items").size());
        int unparseable = 0;
        for (JsonNode it : j.get("items")) {
            assertTrue(it.get("prompt").isTextual() && it.get("reply").isTextual(), it.toString());
            for (String axis : List.of("concept", "instruction", "fluency")) {
                JsonNode a = it.get("ratings").get(axis);
                String status = a.get("status").asText();
                assertTrue(List.of("ok", "unparseable", "failed").contains(status), status);
                assertEquals(status.equals("ok"), !a.get("rating").isNull());
                if (!status.equals("failed")) {
                    assertTrue(a.get("raw").isTextual(), a.toString()); // the judge's raw answer is kept
                }
                unparseable += status.equals("unparseable") ? 1 : 0;
            }
        }
        assertEquals(counts.get("unparseable").asInt(), unparseable);
        assertEquals(2, j.get("per_factor").size());
        assertEquals(2, j.get("result").get("unit").get("test").get("replies").asInt());
        assertTrue(j.get("about").get("judge").asText().startsWith("local "));
        assertTrue(Files.readString(out.resolve("report.md")).contains("| m = 1 |"));
        assertTrue(Files.isRegularFile(out.resolve("replies.json")));

        // the rerun generates and judges nothing, and reports the same
        TrainSteerObjectiveCommandTest.Run again = run(args(out).toArray(String[]::new));
        assertEquals(0, again.exit(), again.out() + again.err());
        assertTrue(again.out().contains("(8 replies reused"), again.out());
        JsonNode j2 = new ObjectMapper().readTree(Files.readString(out.resolve("report.json")));
        int judgedBefore = counts.get("ratings").asInt() - counts.get("failed").asInt();
        assertEquals(judgedBefore, j2.get("counts").get("cached").asInt());
        assertEquals(j.get("items"), j2.get("items"));
    }

    /**
     * --judge-scoring loglik on the demo: every reply gets all three ratings (none unparseable or
     * failed), each raw answer carries the normalised probabilities of the three answers and ends in
     * the rating, and so a factor is tuned on validation and --write-vector writes it.
     */
    @Test
    void loglikJudgeRatesEveryReplyAndTunesAFactor(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("ev");
        Path tuned = dir.resolve("tuned.safetensors");
        TrainSteerObjectiveCommandTest.Run r = run(args(out, "--judge-scoring", "loglik", "--write-vector", tuned.toString())
                .toArray(String[]::new));
        assertEquals(0, r.exit(), r.out() + r.err());
        assertFalse(r.err().contains("unparseable or failed"), r.err());
        JsonNode j = new ObjectMapper().readTree(Files.readString(out.resolve("report.json")));
        assertEquals("loglik", j.get("about").get("judge_scoring").asText());
        JsonNode counts = j.get("counts");
        assertEquals(24, counts.get("ratings").asInt());
        assertEquals(24, counts.get("parsed").asInt());
        for (JsonNode it : j.get("items")) {
            for (String axis : List.of("concept", "instruction", "fluency")) {
                JsonNode a = it.get("ratings").get(axis);
                assertEquals("ok", a.get("status").asText(), a.toString());
                String raw = a.get("raw").asText();
                java.util.regex.Matcher m = java.util.regex.Pattern
                        .compile("^loglik p\\(0\\)=([0-9.]+) p\\(1\\)=([0-9.]+) p\\(2\\)=([0-9.]+) ll=\\[[^\\]]+\\]\nRating: ([012])$").matcher(raw);
                assertTrue(m.matches(), raw);
                double[] p = {Double.parseDouble(m.group(1)), Double.parseDouble(m.group(2)), Double.parseDouble(m.group(3))};
                assertEquals(1, p[0] + p[1] + p[2], 2e-4, raw);
                int rating = a.get("rating").asInt();
                assertEquals(Integer.parseInt(m.group(4)), rating);
                for (double q : p) {
                    assertTrue(p[rating] >= q, "the rating is the most likely answer: " + raw);
                }
            }
        }
        double m = j.get("result").get("tuned").get("factor").asDouble();
        SteeringVectorFile t = SteeringVectorFile.read(tuned);
        assertEquals(4 * m, t.factorPositive()[0], 1e-9);
        assertTrue(r.out().contains("tuned m = "), r.out());
    }

    @Test
    void refusalModeWithTargetPattern(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("ref");
        TrainSteerObjectiveCommandTest.Run r = run("evaluate", "--model", model.toString(), "--vector", vector.toString(),
                "--instructions", harmful.toString(), "--mode", "refusal", "--factors", "1,3", "--max-new-tokens", "4",
                "--target-pattern", "[Tt]he", "--dtype", "f32", "--out-dir", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("| m | Refusal (inject) | Unsteered refusal | Suppression | Harmonic mean |"), r.out());
        JsonNode j = new ObjectMapper().readTree(Files.readString(out.resolve("report.json")));
        assertEquals("refusal", j.get("evaluation").asText());
        assertEquals(4 * (1 + 2 * 2), j.get("items").size());
        assertFalse(j.get("judged").asBoolean());
        for (JsonNode f : j.get("per_factor")) {
            double a = f.get("refusal_score").asDouble();
            double b = f.get("suppression_score").asDouble();
            assertEquals(a + b == 0 ? 0 : 2 * a * b / (a + b), f.get("harmonic").asDouble(), 1e-12);
            assertEquals(f.get("inject").get("refused").asDouble(), a, 0);
            assertEquals(1 - f.get("suppress").get("refused").asDouble(), b, 1e-12);
        }
        long hits = 0;
        long unsteered = 0;
        for (JsonNode it : j.get("items")) {
            if (it.get("condition").asText().equals("unsteered")) {
                unsteered++;
                hits += it.get("reply").asText().matches("(?s).*[Tt]he.*") ? 1 : 0;
                assertEquals(it.get("reply").asText().matches("(?s).*[Tt]he.*"), it.get("target_hit").asBoolean());
            }
        }
        assertEquals(4, unsteered);
        assertEquals(hits / 4.0, j.get("unsteered").get("target_share").asDouble(), 0);
        assertTrue(Files.isRegularFile(out.resolve("scores.png")));
    }

    @Test
    void badInputIsOneLineAndExitTwo(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("bad");
        TrainSteerObjectiveCommandTest.Run r = run("evaluate", "--model", model.toString(), "--vector", vector.toString(),
                "--instructions", instructions.toString(), "--out-dir", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("needs a judge"), r.err());
        r = run("evaluate", "--model", model.toString(), "--vector", vector.toString(), "--instructions", instructions.toString(),
                "--mode", "steer", "--judge-model-dir", model.toString(), "--out-dir", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--mode must be inject, suppress or refusal"), r.err());
        r = run("evaluate", "--model", model.toString(), "--vector", vector.toString(), "--instructions", instructions.toString(),
                "--judge-scoring", "vote", "--judge-model-dir", model.toString(), "--out-dir", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--judge-scoring must be generate or loglik, got vote"), r.err());
        r = run("evaluate", "--model", model.toString(), "--vector", vector.toString(), "--instructions", instructions.toString(),
                "--judge-scoring", "loglik", "--judge-url", "http://127.0.0.1:9/v1/chat/completions", "--judge-model", "x",
                "--out-dir", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--judge-scoring loglik needs a local judge (--judge-model-dir)"), r.err());
        Path tpl = dir.resolve("t.txt");
        Files.writeString(tpl, "Rate {answer}");
        List<String> a = args(out);
        a.set(a.indexOf(templates[2].toString()), tpl.toString());
        r = run(a.toArray(String[]::new));
        assertEquals(2, r.exit());
        assertTrue(r.err().contains(tpl.toString()) && r.err().contains("{answer}"), r.err());
        assertEquals(1, r.err().strip().lines().filter(l -> l.startsWith("error:")).count(), r.err());
        Path noText = dir.resolve("n.jsonl");
        Files.writeString(noText, "{\"x\": 1}\n");
        a = args(out);
        a.set(a.indexOf(instructions.toString()), noText.toString());
        r = run(a.toArray(String[]::new));
        assertEquals(2, r.exit());
        assertTrue(r.err().contains(noText.toString()) && r.err().contains("no instruction column"), r.err());
        assertFalse(Files.exists(out.resolve("report.json")));
    }
}
