package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.assertFailsCleanly;
import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * eval on the bundled demo model and a few held-out pairs: its JSON, its numbers against a
 * computation straight from Model.forward logits, and clear errors that leave nothing behind.
 */
class EvalCommandTest {
    static final int LAYER = 1;
    static final double A_PLUS = 2.5;
    static final double A_MINUS = -1.5;

    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static Path one;
    static Path vector;

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        List<String> lines = Files.readAllLines(root.resolve(CliSupport.DEMO_HELDOUT));
        data = shared.resolve("few.jsonl");
        Files.write(data, lines.subList(0, 3));
        one = shared.resolve("one.jsonl");
        Files.write(one, lines.subList(3, 4));
        // A fixed random unit direction with chosen factors: eval only reads the file.
        float[] w = new float[192];
        Random rng = new Random(5);
        double n = 0;
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rng.nextGaussian();
            n += w[i] * w[i];
        }
        for (int i = 0; i < w.length; i++) {
            w[i] /= (float) Math.sqrt(n);
        }
        vector = shared.resolve("v.safetensors");
        new SteeringVectorFile(w, 1, 192, LAYER, new double[] {A_PLUS}, new double[] {A_MINUS}, "model", "Star Trek", "cdas",
                Map.of()).write(vector);
    }

    static JsonNode lastJson(String out) throws IOException {
        List<String> lines = out.lines().filter(s -> !s.isBlank()).toList();
        return new ObjectMapper().readTree(lines.getLast());
    }

    @Test
    void printsASummaryAndOneJsonObjectWithTheFields(@TempDir Path dir) throws IOException {
        Path out = dir.resolve("sub").resolve("eval.json");
        TrainSteerObjectiveCommandTest.Run r = run("eval", "--model", model.toString(), "--vector", vector.toString(),
                "--data", data.toString(), "--max-new-tokens", "8", "--max-response-tokens", "16", "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("neutral prompts") && r.out().contains("concept responses"), r.out());
        JsonNode j = lastJson(r.out());
        assertEquals(j, new ObjectMapper().readTree(Files.readString(out)), "--out holds the printed object");
        assertEquals("Star Trek", j.get("concept").asText());
        assertEquals(LAYER, j.get("layer").asInt());
        assertEquals(A_PLUS, j.get("clamp_inject").get(0).asDouble(), 1e-12);
        assertEquals(A_MINUS, j.get("clamp_suppress").get(0).asDouble(), 1e-12);
        JsonNode neutral = j.get("neutral_prompts");
        assertTrue(neutral.get("prompts").asInt() >= 1 && neutral.get("tokens").asLong() >= 1, neutral.toString());
        for (String dir2 : List.of("inject", "suppress")) {
            JsonNode d = neutral.get(dir2);
            for (String f : List.of("kl", "jsd", "kl_max", "jsd_max")) {
                double x = d.get(f).asDouble();
                assertTrue(x >= 0 && Double.isFinite(x), dir2 + "." + f + " = " + x);
            }
            assertTrue(d.get("jsd_max").asDouble() <= Math.log(2), d.toString());
            assertTrue(d.get("jsd").asDouble() <= d.get("jsd_max").asDouble() + 1e-12, d.toString());
            assertTrue(d.get("kl").asDouble() > 0, "a clamp to a constant changes the distributions: " + d);
        }
        for (String[] f : new String[][] {{"concept_responses", "loglik_injected"}, {"neutral_responses", "loglik_suppressed"}}) {
            JsonNode l = j.get(f[0]);
            assertEquals(3, l.get("pairs").asInt(), l.toString());
            assertTrue(l.get("tokens").asLong() >= 3 && l.get("tokens").asLong() <= 3 * 16, l.toString());
            double plain = l.get("loglik_unsteered").asDouble();
            double steered = l.get(f[1]).asDouble();
            assertTrue(plain < 0 && steered < 0, l.toString());
            assertEquals(steered - plain, l.get("delta").asDouble(), 1e-12);
        }
    }

    /** The numbers of one pair, recomputed here from Model.forward's logits with the clamp m * a+ / m * a-. */
    @Test
    void agreesWithAComputationFromTheLogits() throws IOException {
        double m = 2;
        TrainSteerObjectiveCommandTest.Run r = run("eval", "--model", model.toString(), "--vector", vector.toString(),
                "--data", one.toString(), "--multiplier", "2", "--max-new-tokens", "6", "--max-response-tokens", "12");
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = lastJson(r.out());
        ConceptPair p = PairReader.read(one).getFirst();
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        try (ModelFolder folder = ModelFolder.open(model);
             Model mod = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            PromptEncoder enc = folder.prompts();
            int vocab = mod.config().vocabSize();
            // concept response after the neutral prompt, injected with a = m * a+
            PromptEncoder.EncodedPrompt x = enc.encodePrompt(p.negativeInput());
            int[] yc = ResponseTruncation.encodeResponse(folder.tokenizer(), p.positiveOutput(), 12);
            int[] seq = concat(x.ids(), yc);
            Intervention inject = Intervention.clamp(LAYER, 1, v.w(), new float[] {(float) (m * A_PLUS)},
                    new int[] {x.prefixLen()});
            double[] lp = logProbs(mod.forward(TokenBatch.single(seq), inject, 0, EnumSet.of(ForwardOutput.LOGITS)).logits(), vocab);
            double sum = 0;
            for (int k = 0; k < yc.length; k++) {
                sum += lp[(x.length() - 1 + k) * vocab + yc[k]];
            }
            JsonNode c = j.get("concept_responses");
            assertEquals(yc.length, c.get("tokens").asInt());
            assertEquals(sum / yc.length, c.get("loglik_injected").asDouble(), 1e-9);

            // KL(unsteered || injected) on the neutral prompt's greedy continuation
            int pad = folder.tokenizer().padTokenId().orElse(0);
            int[] cont = mod.generate(TokenBatch.leftPadded(pad, x.ids()), null,
                    GenerationOptions.greedy(6, CliSupport.stopIds(folder)))[0];
            int[] s = concat(x.ids(), cont);
            double[] plain = logProbs(mod.forward(TokenBatch.single(s), null, 0, EnumSet.of(ForwardOutput.LOGITS)).logits(), vocab);
            double[] inj = logProbs(mod.forward(TokenBatch.single(s), inject, 0, EnumSet.of(ForwardOutput.LOGITS)).logits(), vocab);
            double kl = 0;
            for (int k = 0; k < cont.length; k++) {
                int t = x.length() - 1 + k;
                for (int i = 0; i < vocab; i++) {
                    double pi = Math.exp(plain[t * vocab + i]);
                    kl += pi * (plain[t * vocab + i] - inj[t * vocab + i]);
                }
            }
            JsonNode n = j.get("neutral_prompts");
            assertEquals(1, n.get("prompts").asInt());
            assertEquals(cont.length, n.get("tokens").asInt());
            assertEquals(kl / cont.length, n.get("inject").get("kl").asDouble(), 1e-9 + 1e-7 * kl);
        }
    }

    @Test
    void badInputsGiveOneLineErrorsAndLeaveNothingBehind(@TempDir Path dir) throws IOException {
        Path outDir = Files.createDirectories(dir.resolve("out"));
        String out = outDir.resolve("eval.json").toString();
        Path bad = Files.createDirectories(dir.resolve("bad"));
        String m = model.toString();
        assertFailsCleanly(outDir, "file not found", "eval", "--model", m, "--vector", bad.resolve("none.safetensors").toString(),
                "--data", data.toString(), "--out", out);
        Path wrong = bad.resolve("wrong.safetensors");
        new SafetensorsWriter().metadata(Map.of("layer", "1", "factor_positive", "1.0", "factor_negative", "-1.0",
                "model", "x", "concept", "food", "method", "cdas")).add("w", new long[] {7}, new float[] {1, 0, 0, 0, 0, 0, 0}).write(wrong);
        assertFailsCleanly(outDir, "holds 7 floats, but the model's hidden size is 192",
                "eval", "--model", m, "--vector", wrong.toString(), "--data", data.toString(), "--out", out);
        Path malformed = bad.resolve("malformed.jsonl");
        Files.writeString(malformed, Files.readAllLines(data).get(0) + "\n{\"negative_input\": 3}\n");
        assertFailsCleanly(outDir, "malformed.jsonl line 2, field \"negative_input\"",
                "eval", "--model", m, "--vector", vector.toString(), "--data", malformed.toString(), "--out", out);
        assertFailsCleanly(outDir, "no pairs with concept \"love\"",
                "eval", "--model", m, "--vector", vector.toString(), "--data", data.toString(), "--concept", "love", "--out", out);
        assertFailsCleanly(outDir, "no such prompts file", "eval", "--model", m, "--vector", vector.toString(),
                "--data", data.toString(), "--prompts", bad.resolve("none.txt").toString(), "--out", out);
        assertFailsCleanly(outDir, "--max-new-tokens must be at least 1", "eval", "--model", m, "--vector", vector.toString(),
                "--data", data.toString(), "--max-new-tokens", "0", "--out", out);
    }

    private static double[] logProbs(float[] logits, int vocab) {
        double[] out = new double[logits.length];
        for (int off = 0; off < logits.length; off += vocab) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < vocab; i++) {
                max = Math.max(max, logits[off + i]);
            }
            double z = 0;
            for (int i = 0; i < vocab; i++) {
                z += Math.exp(logits[off + i] - max);
            }
            double lse = max + Math.log(z);
            for (int i = 0; i < vocab; i++) {
                out[off + i] = logits[off + i] - lse;
            }
        }
        return out;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
