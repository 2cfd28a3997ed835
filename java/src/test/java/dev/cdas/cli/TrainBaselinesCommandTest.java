package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.io.Safetensors;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.Batch;
import dev.cdas.train.LogProbObjective;
import dev.cdas.train.ModelLogProbScorer;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --method reps, bipo and loreft on 8 demo pairs (one epoch of one step): the files they
 * write, {@code objective --method} on them against the objective in this process, steer and
 * logits --vector with each, and errors.
 */
class TrainBaselinesCommandTest {
    static final int LAYER = 1;
    static final List<String> METHODS = List.of("reps", "bipo", "loreft");

    @TempDir
    static Path shared;
    static Path model;
    static Path data;

    static Path vector(String method) {
        return shared.resolve(method).resolve("startrek.safetensors");
    }

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        data = shared.resolve("eight.jsonl");
        Files.write(data, Files.readAllLines(root.resolve(CliSupport.DEMO_DATA)).subList(0, 8));
        for (String m : METHODS) {
            TrainSteerObjectiveCommandTest.Run r = run("train", "--method", m, "--model", model.toString(), "--data",
                    data.toString(), "--layer", "" + LAYER, "--out", vector(m).toString(), "--epochs", "2", "--batch", "8",
                    "--max-response-tokens", "8", "--lr", "0.05", "--rank", m.equals("loreft") ? "2" : "1");
            assertEquals(0, r.exit(), m + ": " + r.out() + r.err());
            assertTrue(r.out().contains("training " + m + " on 8 pairs") && r.out().contains("wrote " + vector(m)), r.out());
        }
    }

    @Test
    void eachMethodWritesItsFileAndLossCurve() throws IOException {
        for (String m : METHODS) {
            SteeringVectorFile v = SteeringVectorFile.read(vector(m));
            assertEquals(m, v.method());
            assertEquals(LAYER, v.layer());
            assertEquals("2", v.settings().get("steps"));
            assertTrue(Files.exists(vector(m).resolveSibling("startrek.loss.csv")), m);
            if (m.equals("loreft")) {
                assertEquals(2, v.rank());
                assertArrayEquals(new double[] {1, 1}, v.factorPositive());
                assertArrayEquals(new double[] {-1, -1}, v.factorNegative());
                try (Safetensors st = Safetensors.open(vector(m))) {
                    for (String t : SteeringVectorFile.LOREFT_TENSORS) {
                        assertTrue(st.contains(t), t);
                    }
                }
            } else {
                assertEquals(1, v.rank());
                assertTrue(v.factorPositive()[0] > 0 && v.factorNegative()[0] == -v.factorPositive()[0], m);
                assertEquals(null, v.loreft());
            }
        }
    }

    /** objective --method M on a trained file prints what the objective gives in this process, gradient included. */
    @Test
    void objectiveMatchesTheInProcessObjective() throws IOException {
        List<ConceptPair> pairs = PairReader.read(data);
        Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
        try (ModelFolder folder = ModelFolder.open(model);
             Model m = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            for (String method : METHODS) {
                TrainSteerObjectiveCommandTest.Run r = run("objective", "--method", method, "--model", model.toString(), "--data",
                        data.toString(), "--vector", vector(method).toString(), "--max-response-tokens", "8", "--seed", "7",
                        "--pairs-per-call", "3");
                assertEquals(0, r.exit(), method + ": " + r.out() + r.err());
                JsonNode json = new ObjectMapper().readTree(r.out());
                SteeringVectorFile v = SteeringVectorFile.read(vector(method));
                float[] p = ObjectiveCommand.parameters(v);
                LogProbObjective o = new LogProbObjective(SteeringMethod.parse(method),
                        new ModelLogProbScorer(m, LAYER, folder.prompts().tokenizer().padTokenId().orElse(0), 64),
                        folder.prompts(), 8, 7, LogProbObjective.DEFAULT_REPS_FACTORS, LogProbObjective.DEFAULT_BIPO_BETA);
                var expected = o.lossAndGradient(p, all);
                assertEquals(expected.loss(), json.get("loss").asDouble(), 1e-5 * Math.abs(expected.loss()), method);
                assertEquals(p.length, json.get("grad").size(), method);
                double dot = 0;
                double n1 = 0;
                double n2 = 0;
                for (int i = 0; i < p.length; i++) {
                    double g = json.get("grad").get(i).asDouble();
                    dot += g * expected.gradient()[i];
                    n1 += g * g;
                    n2 += (double) expected.gradient()[i] * expected.gradient()[i];
                }
                assertTrue(n2 > 0 && dot / Math.sqrt(n1 * n2) > 0.9999, method + ": cosine " + dot / Math.sqrt(n1 * n2));
            }
        }
    }

    /** logits --vector applies each file as its method says: the intervention, and a change of the logits. */
    @Test
    void logitsAppliesEachFile() throws IOException {
        Path plain = shared.resolve("plain.safetensors");
        TrainSteerObjectiveCommandTest.Run base = run("logits", "--model", model.toString(), "--text", "Give me a quote.",
                "--chat", "--out", plain.toString());
        assertEquals(0, base.exit(), base.err());
        float[] unsteered;
        try (Safetensors st = Safetensors.open(plain)) {
            unsteered = st.tensor("logits").toFloatArray();
        }
        for (String m : METHODS) {
            for (String factor : List.of("1", "-1")) {
                Path out = shared.resolve(m + factor + ".safetensors");
                TrainSteerObjectiveCommandTest.Run r = run("logits", "--model", model.toString(), "--text", "Give me a quote.",
                        "--chat", "--out", out.toString(), "--vector", vector(m).toString(), "--factor", factor);
                assertEquals(0, r.exit(), m + " " + factor + ": " + r.out() + r.err());
                try (Safetensors st = Safetensors.open(out)) {
                    String expected = switch (m) {
                        case "loreft" -> "loreft";
                        case "reps" -> factor.equals("1") ? "add" : "null_out";
                        default -> "add";
                    };
                    assertEquals(expected, st.metadata().get("intervention"), m + " " + factor);
                    assertFalse(java.util.Arrays.equals(unsteered, st.tensor("logits").toFloatArray()), m + " " + factor
                            + " changes nothing");
                }
            }
        }
    }

    @Test
    void steerRunsWithEachFile() {
        for (String m : METHODS) {
            for (String mode : List.of("--inject", "--suppress")) {
                TrainSteerObjectiveCommandTest.Run r = run("steer", "--model", model.toString(), "--vector", vector(m).toString(),
                        mode, "--prompt", "Give me a quote.", "--max-new-tokens", "4", "--temperature", "0");
                assertEquals(0, r.exit(), m + " " + mode + ": " + r.out() + r.err());
            }
        }
    }

    @Test
    void badOptionsAreOneLineErrors() {
        TrainSteerObjectiveCommandTest.Run r = run("train", "--method", "bipo", "--model", model.toString(), "--data",
                data.toString(), "--layer", "1", "--out", shared.resolve("x.safetensors").toString(), "--reps-factors", "1");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("--reps-factors applies to --method reps only"), r.err());
        TrainSteerObjectiveCommandTest.Run rank = run("train", "--method", "reps", "--model", model.toString(), "--data",
                data.toString(), "--layer", "1", "--out", shared.resolve("y.safetensors").toString(), "--rank", "2");
        assertEquals(2, rank.exit());
        assertTrue(rank.err().contains("reps trains one vector (rank 1), not rank 2"), rank.err());
        assertFalse(Files.exists(shared.resolve("y.safetensors")));
        TrainSteerObjectiveCommandTest.Run wrong = run("objective", "--method", "bipo", "--model", model.toString(), "--data",
                data.toString(), "--vector", vector("reps").toString());
        assertEquals(2, wrong.exit());
        assertTrue(wrong.err().contains(vector("reps") + ": its method is reps, not bipo"), wrong.err());
        // with the features merged beside them: data parallel, prompt steering
        TrainSteerObjectiveCommandTest.Run dist = run("train", "--method", "loreft", "--distributed", "--model", model.toString(),
                "--data", data.toString(), "--layer", "1", "--out", shared.resolve("d.safetensors").toString());
        assertEquals(2, dist.exit());
        assertTrue(dist.err().contains("--distributed cannot be used with --method loreft (data parallel trains cdas and das only)"),
                dist.err());
        assertFalse(Files.exists(shared.resolve("d.safetensors")));
        TrainSteerObjectiveCommandTest.Run template = run("train", "--method", "reps", "--model", model.toString(), "--data",
                data.toString(), "--layer", "1", "--out", shared.resolve("t.safetensors").toString(), "--prompt-template",
                shared.resolve("none.json").toString());
        assertEquals(2, template.exit());
        assertTrue(template.err().contains("--prompt-template belongs to --method prompt, not reps"), template.err());
        TrainSteerObjectiveCommandTest.Run promptObjective = run("objective", "--method", "prompt", "--model", model.toString(),
                "--data", data.toString(), "--vector", vector("reps").toString());
        assertEquals(2, promptObjective.exit());
        assertTrue(promptObjective.err().contains("--method prompt has no objective"), promptObjective.err());
    }
}
