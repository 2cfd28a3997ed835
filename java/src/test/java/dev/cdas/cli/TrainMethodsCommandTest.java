package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.assertFailsCleanly;
import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.io.Safetensors;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --method das and --method diffmean on 16 demo pairs: the files they write, steering with
 * them (diffmean added, das clamped), and errors that leave nothing behind.
 */
class TrainMethodsCommandTest {
    static final int LAYER = 1;

    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static Path diffmean;
    static Path das;
    static TrainSteerObjectiveCommandTest.Run diffmeanRun;
    static TrainSteerObjectiveCommandTest.Run dasRun;

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        data = shared.resolve("sixteen.jsonl");
        Files.write(data, Files.readAllLines(root.resolve(CliSupport.DEMO_DATA)).subList(0, 16));
        diffmean = shared.resolve("dm").resolve("startrek.safetensors");
        das = shared.resolve("das").resolve("startrek.safetensors");
        diffmeanRun = run("train", "--method", "diffmean", "--model", model.toString(), "--data", data.toString(),
                "--layer", "" + LAYER, "--out", diffmean.toString(), "--max-response-tokens", "16");
        assertEquals(0, diffmeanRun.exit(), diffmeanRun.out() + diffmeanRun.err());
        dasRun = run("train", "--method", "das", "--model", model.toString(), "--data", data.toString(),
                "--layer", "" + LAYER, "--out", das.toString(), "--epochs", "1", "--batch", "8", "--max-response-tokens", "16");
        assertEquals(0, dasRun.exit(), dasRun.out() + dasRun.err());
    }

    @Test
    void diffmeanWritesAUnitVectorWithOppositeFactorsAndNoLossCurve() throws IOException {
        SteeringVectorFile v = SteeringVectorFile.read(diffmean);
        assertEquals("diffmean", v.method());
        assertEquals(LAYER, v.layer());
        assertEquals("Star Trek", v.concept());
        assertEquals(1, v.rank());
        assertEquals(192, v.dimension());
        double f = v.factorPositive()[0];
        assertTrue(f > 0, "factor_positive = ||mu+ - mu-|| > 0: " + f);
        assertEquals(-f, v.factorNegative()[0], 0);
        double n = 0;
        for (float x : v.w()) {
            n += (double) x * x;
        }
        assertEquals(1, Math.sqrt(n), 1e-6);
        assertEquals("16", v.settings().get("max_response_tokens"));
        assertEquals("16", v.settings().get("pairs"));
        assertFalse(v.settings().containsKey("epochs"), v.settings().toString());
        try (var files = Files.list(diffmean.getParent())) {
            assertEquals(List.of("startrek.safetensors"), files.map(p -> p.getFileName().toString()).toList());
        }
        assertTrue(diffmeanRun.out().contains("diffmean on 16 pairs") && diffmeanRun.out().contains("factors: f+ = "),
                diffmeanRun.out());
    }

    @Test
    void dasWritesATrainedVectorWithClampFactorsAndItsLossCurve() throws IOException {
        SteeringVectorFile v = SteeringVectorFile.read(das);
        assertEquals("das", v.method());
        assertEquals(SteeringMethod.DAS, v.steeringMethod());
        assertEquals(LAYER, v.layer());
        assertEquals("2", v.settings().get("steps"));
        assertTrue(Double.isFinite(v.factorPositive()[0]) && Double.isFinite(v.factorNegative()[0]));
        double loss = Double.parseDouble(v.settings().get("final_loss"));
        assertTrue(loss > Math.log(2), "a cross-entropy, not a JSD (<= ln 2): " + loss);
        assertTrue(Files.exists(das.resolveSibling("startrek.loss.csv")) && Files.exists(das.resolveSibling("startrek.loss.png")));
        assertTrue(dasRun.out().contains("training das on 16 pairs") && dasRun.out().contains("loss (cross-entropy)")
                && dasRun.out().contains("factors: a+ = "), dasRun.out());
    }

    @Test
    void steerRunsWithEitherVector() {
        for (Path v : List.of(diffmean, das)) {
            TrainSteerObjectiveCommandTest.Run r = run("steer", "--model", model.toString(), "--vector", v.toString(), "--inject",
                    "--grid", "1,4", "--prompt", "Give me a quote.", "--max-new-tokens", "5", "--temperature", "0");
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(r.out().contains("inject x4.0:"), r.out());
            assertTrue(r.out().contains(v == diffmean ? "diffmean: add m * f+ * w to h_L" : "das: clamp w.h_L to m * a+"), r.out());
        }
        TrainSteerObjectiveCommandTest.Run s = run("steer", "--model", model.toString(), "--vector", diffmean.toString(),
                "--suppress", "--prompt", "What is a good quote about food?", "--max-new-tokens", "5", "--temperature", "0");
        assertEquals(0, s.exit(), s.err());
        assertTrue(s.out().contains("f- = -"), s.out());
    }

    /** What steer and the train demo generate with a diffmean vector is what Model.generate gives with the addition. */
    @Test
    void generationAddsTheDiffMeanVector() throws IOException {
        SteeringVectorFile v = SteeringVectorFile.read(diffmean);
        List<String> prompts = List.of("Give me a quote.", "What is a good quote about food?");
        try (ModelFolder folder = ModelFolder.open(model);
             Model m = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            GenerationOptions gen = GenerationOptions.greedy(8, CliSupport.stopIds(folder));
            List<String> viaCli = CliSupport.generate(folder, m, prompts, v, v.values(true, 6), gen);
            assertFalse(viaCli.equals(CliSupport.generate(folder, m, prompts, null, null, gen)), "steering changes the replies");
            int[][] rows = new int[prompts.size()][];
            int[] prefix = new int[rows.length];
            for (int i = 0; i < rows.length; i++) {
                var p = folder.prompts().encodePrompt(prompts.get(i));
                rows[i] = p.ids();
                prefix[i] = p.prefixLen();
            }
            float f = (float) (6 * v.factorPositive()[0]);
            Intervention add = Intervention.add(LAYER, 1, v.w(), new float[] {f, f}, prefix);
            int[][] direct = m.generate(TokenBatch.leftPadded(folder.tokenizer().padTokenId().orElse(0), rows), add, gen);
            for (int i = 0; i < rows.length; i++) {
                int[] out = direct[i];
                int k = out.length;
                while (k > 0 && contains(gen.eosIds(), out[k - 1])) {
                    k--;
                }
                assertEquals(folder.tokenizer().decode(java.util.Arrays.copyOf(out, k), true), viaCli.get(i));
            }
        }
    }

    @Test
    void evalAndLogitsApplyADiffMeanVectorAdditively(@TempDir Path dir) throws IOException {
        Path few = dir.resolve("few.jsonl");
        Files.write(few, Files.readAllLines(data).subList(0, 2));
        TrainSteerObjectiveCommandTest.Run e = run("eval", "--model", model.toString(), "--vector", diffmean.toString(),
                "--data", few.toString(), "--max-new-tokens", "4", "--max-response-tokens", "8", "--multiplier", "2");
        assertEquals(0, e.exit(), e.out() + e.err());
        List<String> lines = e.out().lines().filter(x -> !x.isBlank()).toList();
        JsonNode j = new ObjectMapper().readTree(lines.getLast());
        assertEquals("diffmean", j.get("method").asText());
        assertEquals("add", j.get("intervention").asText());
        SteeringVectorFile v = SteeringVectorFile.read(diffmean);
        assertEquals(2 * v.factorPositive()[0], j.get("clamp_inject").get(0).asDouble(), 1e-12);

        // logits --vector: h_L moves by exactly factor * w at every position (prefix_len 0 with --tokens)
        Path out = dir.resolve("logits.safetensors");
        TrainSteerObjectiveCommandTest.Run l = run("logits", "--model", model.toString(), "--tokens", "5,17,42,7",
                "--layer", "" + LAYER, "--out", out.toString(), "--vector", diffmean.toString(), "--factor", "3");
        assertEquals(0, l.exit(), l.out() + l.err());
        Path plain = dir.resolve("plain.safetensors");
        assertEquals(0, run("logits", "--model", model.toString(), "--tokens", "5,17,42,7", "--layer", "" + LAYER,
                "--out", plain.toString()).exit());
        try (Safetensors a = Safetensors.open(out); Safetensors b = Safetensors.open(plain)) {
            assertEquals("add", a.metadata().get("intervention"));
            float[] h1 = a.tensor("hidden").toFloatArray();
            float[] h0 = b.tensor("hidden").toFloatArray();
            for (int t = 0; t < 4; t++) {
                for (int i = 0; i < 192; i++) {
                    double expected = h0[t * 192 + i] + 3.0 * v.w()[i];
                    // the demo model computes in fp16
                    assertEquals(expected, h1[t * 192 + i], 2e-3 * (1 + Math.abs(expected)), "t " + t + " i " + i);
                }
            }
        }
    }

    @Test
    void badMethodsAndOptionsGiveOneLineErrorsAndLeaveNothingBehind(@TempDir Path dir) throws IOException {
        Path outDir = Files.createDirectories(dir.resolve("out"));
        String out = outDir.resolve("v.safetensors").toString();
        String m = model.toString();
        String d = data.toString();
        assertFailsCleanly(outDir, "--method must be one of cdas, das, diffmean, prompt, reps, bipo, loreft, got \"mean\"",
                "train", "--model", m, "--data", d, "--layer", "1", "--out", out, "--method", "mean");
        assertFailsCleanly(outDir, "--epochs, --lr do not apply to --method diffmean",
                "train", "--model", m, "--data", d, "--layer", "1", "--out", out, "--method", "diffmean", "--epochs", "2", "--lr", "0.1");
        assertFailsCleanly(outDir, "--rank 2 does not apply to --method diffmean",
                "train", "--model", m, "--data", d, "--layer", "1", "--out", out, "--method", "diffmean", "--rank", "2");
        assertFailsCleanly(outDir, "--layer 4 is out of range",
                "train", "--model", m, "--data", d, "--layer", "4", "--out", out, "--method", "diffmean");
        Path odd = dir.resolve("odd.safetensors");
        SteeringVectorFile v = SteeringVectorFile.read(diffmean);
        new dev.cdas.io.SafetensorsWriter().metadata(java.util.Map.of("layer", "1", "factor_positive", "1.0",
                "factor_negative", "-1.0", "model", "x", "concept", "food", "method", "pca"))
                .add("w", new long[] {192}, v.w()).write(odd);
        assertFailsCleanly(outDir, odd + ": metadata \"method\": unknown method \"pca\"",
                "steer", "--model", m, "--vector", odd.toString(), "--inject", "--prompt", "hi");
        assertFailsCleanly(outDir, odd + ": metadata \"method\": unknown method \"pca\"",
                "eval", "--model", m, "--vector", odd.toString(), "--data", d);
    }

    @Test
    void objectiveTakesTheLossKind(@TempDir Path dir) throws IOException {
        Path few = dir.resolve("few.jsonl");
        Files.write(few, Files.readAllLines(data).subList(0, 3));
        double[] loss = new double[3];
        String[] kinds = {"jsd", "composed", "ce"};
        for (int k = 0; k < kinds.length; k++) {
            TrainSteerObjectiveCommandTest.Run r = run("objective", "--model", model.toString(), "--data", few.toString(),
                    "--vector", das.toString(), "--max-response-tokens", "8", "--no-grad", "--loss", kinds[k]);
            assertEquals(0, r.exit(), r.out() + r.err());
            loss[k] = new ObjectMapper().readTree(r.out()).get("loss").asDouble();
        }
        assertTrue(loss[0] > 0 && loss[0] <= Math.log(2), "JSD " + loss[0]);
        assertEquals(loss[0], loss[1], 1e-4 + 1e-3 * loss[0], "fused and composed JSD");
        assertTrue(loss[2] > Math.log(2), "cross-entropy " + loss[2]);
        Path outDir = Files.createDirectories(dir.resolve("out"));
        assertFailsCleanly(outDir, "--loss must be jsd, composed or ce, got \"kl\"", "objective", "--model", model.toString(),
                "--data", few.toString(), "--vector", das.toString(), "--loss", "kl");
    }

    @Test
    void helpListsTheMethods() {
        TrainSteerObjectiveCommandTest.Run r = run("train", "--help");
        assertEquals(0, r.exit());
        assertTrue(r.out().contains("cdas (default), das, diffmean, prompt,") && r.out().contains("  prompt    no vector")
                && r.out().contains("  loreft    LoReFT") && r.out().contains("diffmean and") && r.out().contains("prompt write none"), r.out());
        assertFalse(r.out().contains("not available yet"), r.out());
    }

    private static boolean contains(int[] ids, int id) {
        for (int x : ids) {
            if (x == id) {
                return true;
            }
        }
        return false;
    }
}
