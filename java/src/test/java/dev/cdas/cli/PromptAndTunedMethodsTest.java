package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.assertFailsCleanly;
import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.io.Safetensors;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.train.PromptSteering;
import dev.cdas.train.SteeringEvaluation;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --method prompt (a file without a tensor, applied by rewriting the prompt in steer, logits,
 * eval, mc and evaluate) and the tuned DiffMean of evaluate --write-vector, on the demo model with
 * a few pairs and a local fake judge.
 */
class PromptAndTunedMethodsTest {
    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static Path prompt;
    static Path diffmean;

    @BeforeAll
    static void setUp() throws IOException {
        Path root = CliSupport.demoRoot();
        model = root.resolve(CliSupport.DEMO_MODEL);
        data = shared.resolve("eight.jsonl");
        Files.write(data, Files.readAllLines(root.resolve(CliSupport.DEMO_HELDOUT)).subList(0, 8));
        prompt = shared.resolve("p").resolve("startrek.safetensors");
        TrainSteerObjectiveCommandTest.Run r = run("train", "--method", "prompt", "--model", model.toString(), "--data",
                data.toString(), "--out", prompt.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("inject:   " + PromptSteering.defaults("Star Trek").instruction(1)), r.out());
        diffmean = shared.resolve("dm.safetensors");
        r = run("train", "--method", "diffmean", "--model", model.toString(), "--data", data.toString(), "--layer", "1",
                "--out", diffmean.toString(), "--max-response-tokens", "16");
        assertEquals(0, r.exit(), r.out() + r.err());
    }

    @Test
    void promptFileHasNoTensorAndRecordsTheTemplates() throws IOException {
        try (Safetensors st = Safetensors.open(prompt)) {
            assertTrue(st.names().isEmpty(), st.names().toString());
            assertEquals("prompt", st.metadata().get("method"));
            assertEquals(PromptSteering.DEFAULT_INJECT, st.metadata().get("prompt_inject"));
            assertEquals(PromptSteering.DEFAULT_SUPPRESS, st.metadata().get("prompt_suppress"));
            assertFalse(st.metadata().containsKey("layer"), st.metadata().toString());
        }
        SteeringVectorFile v = SteeringVectorFile.read(prompt);
        assertTrue(v.steersByPrompt());
        assertEquals("Star Trek", v.concept());
        assertEquals("model", v.model());
        assertArrayEquals(new double[] {1}, v.factorPositive());
        assertArrayEquals(new double[] {-1}, v.factorNegative());
        assertNull(v.intervention(v.values(true, 1), 3));
        // m = 0: unsteered; the size of m does not matter, its sign picks the instruction
        assertEquals("Hi", v.message("Hi", v.values(true, 0)));
        assertEquals(v.message("Hi", v.values(true, 1)), v.message("Hi", v.values(true, 5)));
        assertEquals(v.message("Hi", v.values(false, 1)), v.message("Hi", v.values(true, -2)));
        // a prompt file has no directions for objective or logits' directions reader
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(dev.cdas.InvalidArgumentException.class,
                () -> SteeringVectorFile.readDirections(prompt));
        assertTrue(e.getMessage().contains("method prompt has no directions"), e.getMessage());
    }

    @Test
    void steeredPromptCarriesTheInstructionInTheUserTurn() throws IOException {
        SteeringVectorFile v = SteeringVectorFile.read(prompt);
        try (ModelFolder folder = ModelFolder.open(model)) {
            PromptEncoder enc = folder.prompts();
            String message = "Give me a quote.";
            PromptEncoder.EncodedPrompt plain = enc.encodePrompt(message);
            PromptEncoder.EncodedPrompt inj = enc.encodePrompt(v.message(message, v.values(true, 1)));
            PromptEncoder.EncodedPrompt sup = enc.encodePrompt(v.message(message, v.values(false, 1)));
            String injText = folder.tokenizer().decode(inj.ids(), false);
            String instruction = v.promptSteering().instruction(1);
            // the instruction, a blank line and the message, together in the one user turn
            assertTrue(injText.contains("<|user|>\n" + instruction + "\n\n" + message + "<|end|>"), injText);
            assertTrue(folder.tokenizer().decode(sup.ids(), false).contains(v.promptSteering().instruction(-1) + "\n\n" + message),
                    folder.tokenizer().decode(sup.ids(), false));
            assertFalse(injText.contains(v.promptSteering().instruction(-1)));
            assertEquals(plain.prefixLen(), inj.prefixLen());
            assertTrue(inj.length() > plain.length());
        }
        TrainSteerObjectiveCommandTest.Run r = run("steer", "--model", model.toString(), "--vector", prompt.toString(), "--inject",
                "--prompt", "Give me a quote.", "--max-new-tokens", "4", "--temperature", "0", "--dtype", "f32");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("injecting \"Star Trek\" by prompt"), r.out());
    }

    @Test
    void logitsUnderInjectAndSuppressDifferFromUnsteeredAndFromEachOther(@TempDir Path dir) throws IOException {
        float[][] last = new float[4][];
        String[] factors = {"1", "-1", "0", null};
        for (int i = 0; i < 4; i++) {
            Path out = dir.resolve("l" + i + ".safetensors");
            List<String> a = new ArrayList<>(List.of("logits", "--model", model.toString(), "--text", "Give me a quote.", "--chat",
                    "--dtype", "f32", "--out", out.toString()));
            if (factors[i] != null) {
                a.addAll(List.of("--vector", prompt.toString(), "--factor", factors[i]));
            }
            TrainSteerObjectiveCommandTest.Run r = run(a.toArray(String[]::new));
            assertEquals(0, r.exit(), r.out() + r.err());
            try (Safetensors st = Safetensors.open(out)) {
                float[] logits = st.tensor("logits").toFloatArray();
                int v = (int) st.tensor("logits").dim(1);
                last[i] = Arrays.copyOfRange(logits, logits.length - v, logits.length);
                if (factors[i] != null) {
                    assertEquals("prompt", st.metadata().get("intervention"));
                }
            }
        }
        assertArrayEquals(last[3], last[2], "factor 0 is unsteered");
        assertFalse(Arrays.equals(last[0], last[3]), "inject changes the next-token logits");
        assertFalse(Arrays.equals(last[1], last[3]), "suppress changes them");
        assertFalse(Arrays.equals(last[0], last[1]), "inject and suppress differ");
        Path none = dir.resolve("none");
        Files.createDirectories(none);
        assertFailsCleanly(none, "give --text", "logits", "--model", model.toString(), "--tokens", "1,2,3", "--vector",
                prompt.toString(), "--factor", "1", "--out", none.resolve("nope.safetensors").toString());
    }

    @Test
    void evalLogLikelihoodMatchesAForwardOverTheRewrittenPrompt() throws IOException {
        SteeringVectorFile v = SteeringVectorFile.read(prompt);
        List<ConceptPair> pairs = PairReader.read(data).subList(0, 2);
        try (ModelFolder folder = ModelFolder.open(model);
             Model m = Model.load(model, RuntimeOptions.defaults().withDtype(dev.cdas.DType.F32))) {
            SteeringEvaluation eval = new SteeringEvaluation(m, folder.prompts(), v, 1, 16);
            SteeringEvaluation.LogLikelihood inj = eval.logLikelihood(pairs, true);
            SteeringEvaluation.LogLikelihood sup = eval.logLikelihood(pairs, false);
            // reference: the instruction before negative_input in the user turn, the concept response after it
            double steered = 0;
            double plain = 0;
            long tokens = 0;
            for (ConceptPair p : pairs) {
                int[] response = ResponseTruncation.encodeResponse(folder.tokenizer(), p.positiveOutput(), 16);
                plain += responseLogLikelihood(m, folder.prompts().encodePrompt(p.negativeInput()).ids(), response);
                String rewritten = PromptSteering.defaults("Star Trek").instruction(1) + "\n\n" + p.negativeInput();
                steered += responseLogLikelihood(m, folder.prompts().encodePrompt(rewritten).ids(), response);
                tokens += response.length;
            }
            assertEquals(tokens, inj.tokens());
            assertEquals(plain / tokens, inj.unsteered(), 1e-9);
            assertEquals(steered / tokens, inj.steered(), 1e-9);
            assertNotEquals(inj.unsteered(), inj.steered());
            assertNotEquals(sup.unsteered(), sup.steered());
        }
    }

    /** Sum of log softmax over the response tokens after the prompt, by hand from the logits. */
    private static double responseLogLikelihood(Model m, int[] promptIds, int[] response) {
        int[] seq = Arrays.copyOf(promptIds, promptIds.length + response.length);
        System.arraycopy(response, 0, seq, promptIds.length, response.length);
        float[] logits = m.forward(TokenBatch.single(seq), null, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
        int v = m.config().vocabSize();
        double sum = 0;
        for (int k = 0; k < response.length; k++) {
            int row = promptIds.length - 1 + k;
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                max = Math.max(max, logits[row * v + j]);
            }
            double z = 0;
            for (int j = 0; j < v; j++) {
                z += Math.exp(logits[row * v + j] - max);
            }
            sum += logits[row * v + response[k]] - max - Math.log(z);
        }
        return sum;
    }

    @Test
    void evalAndMcRunWithAPromptFile(@TempDir Path dir) throws IOException {
        Path report = dir.resolve("r.json");
        Path two = dir.resolve("two.jsonl");
        Files.write(two, Files.readAllLines(data).subList(0, 2));
        Path neutral = dir.resolve("neutral.txt");
        Files.writeString(neutral, "Give me a quote.\nTell me a saying about love.\n");
        TrainSteerObjectiveCommandTest.Run r = run("eval", "--model", model.toString(), "--vector", prompt.toString(), "--data",
                two.toString(), "--prompts", neutral.toString(), "--max-new-tokens", "3", "--max-response-tokens", "8",
                "--dtype", "f32", "--out", report.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        JsonNode j = new ObjectMapper().readTree(Files.readString(report));
        assertEquals("prompt", j.get("method").asText());
        assertEquals("prompt", j.get("intervention").asText());
        assertTrue(j.get("layer").isNull());
        assertTrue(j.get("neutral_prompts").get("inject").get("kl").asDouble() > 0, j.toString());
        Path mmlu = CliSupport.demoRoot().resolve("demo/data/mmlu.jsonl");
        double[][] ll = new double[2][];
        for (int i = 0; i < 2; i++) {
            Path out = dir.resolve("mc" + i + ".json");
            List<String> a = new ArrayList<>(List.of("mc", "--model", model.toString(), "--data", mmlu.toString(), "--format", "mmlu",
                    "--limit", "1", "--dtype", "f32", "--out", out.toString()));
            if (i == 1) {
                a.addAll(List.of("--vector", prompt.toString(), "--suppress"));
            }
            r = run(a.toArray(String[]::new));
            assertEquals(0, r.exit(), r.out() + r.err());
            JsonNode items = new ObjectMapper().readTree(Files.readString(out)).get("items");
            ll[i] = new double[items.get(0).get("loglikelihoods").size()];
            for (int k = 0; k < ll[i].length; k++) {
                ll[i][k] = items.get(0).get("loglikelihoods").get(k).asDouble();
            }
        }
        assertFalse(Arrays.equals(ll[0], ll[1]), "the instruction before the context changes the scores");
    }

    @Test
    void userTemplatesAreRecordedAndBadOnesFailInOneLineNamingTheFile(@TempDir Path dir) throws IOException {
        Path good = dir.resolve("good.json");
        Files.writeString(good, "{\"inject\": \"Talk about {concept}.\", \"suppress\": \"Never talk about {concept}.\"}");
        Path out = dir.resolve("out").resolve("p.safetensors");
        TrainSteerObjectiveCommandTest.Run r = run("train", "--method", "prompt", "--model", model.toString(), "--data",
                data.toString(), "--out", out.toString(), "--prompt-template", good.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        SteeringVectorFile v = SteeringVectorFile.read(out);
        assertEquals("Talk about Star Trek.\n\nHi", v.message("Hi", v.values(true, 1)));
        assertEquals("Never talk about Star Trek.\n\nHi", v.message("Hi", v.values(false, 1)));
        assertEquals("good.json", v.settings().get("prompt_template"));

        Path empty = dir.resolve("none");
        Files.createDirectories(empty);
        String[][] bad = {
            {"{\"inject\": \"Talk about {concept}.\"", "not a JSON object"},
            {"{\"inject\": \"Talk about it.\", \"suppress\": \"Not {concept}.\"}", "does not contain {concept}"},
            {"{\"inject\": \"Talk about {concept}.\"}", "\"suppress\" is missing"},
            {"{\"inject\": \"{concept}\", \"suppress\": \"{concept}\", \"extra\": 1}", "unknown key \"extra\""},
            // a key with a line break is quoted escaped, so the error stays one line
            {"{\"inject\": \"{concept}\", \"suppress\": \"{concept}\", \"ex\\ntra\": 1}", "unknown key \"ex\\ntra\""},
            {"{\"inject\": \"{concept} {topic}\", \"suppress\": \"{concept}\"}", "unknown placeholder {topic}"},
            {"[1, 2]", "expected a JSON object"},
        };
        for (int i = 0; i < bad.length; i++) {
            Path t = dir.resolve("bad" + i + ".json");
            Files.writeString(t, bad[i][0]);
            assertFailsCleanly(empty, t.toString(), "train", "--method", "prompt", "--model", model.toString(), "--data",
                    data.toString(), "--out", empty.resolve("p.safetensors").toString(), "--prompt-template", t.toString());
            assertFailsCleanly(empty, bad[i][1], "train", "--method", "prompt", "--model", model.toString(), "--data",
                    data.toString(), "--out", empty.resolve("p.safetensors").toString(), "--prompt-template", t.toString());
        }
        assertFailsCleanly(empty, "--prompt-template belongs to --method prompt", "train", "--method", "diffmean", "--model",
                model.toString(), "--data", data.toString(), "--layer", "1", "--out", empty.resolve("p.safetensors").toString(),
                "--prompt-template", good.toString());
        assertFailsCleanly(empty, "--layer does not apply to --method prompt", "train", "--method", "prompt", "--model",
                model.toString(), "--data", data.toString(), "--layer", "1", "--out", empty.resolve("p.safetensors").toString());
    }

    // ---- DiffMean with a tuned factor ----------------------------------------------------------------------

    /**
     * A chat-completions endpoint that answers every judge prompt with {@code answer}, or, when it is
     * null, with {@code Rating: N}, N = the prompt's hash mod 3 (deterministic, different per reply and axis).
     */
    private static HttpServer judge(String answer) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", (HttpExchange ex) -> {
            JsonNode body = new ObjectMapper().readTree(ex.getRequestBody().readAllBytes());
            String promptText = body.get("messages").get(0).get("content").asText();
            String content = answer != null ? answer : "Rating: " + Math.floorMod(promptText.hashCode(), 3);
            var root = new ObjectMapper().createObjectNode();
            root.putArray("choices").addObject().putObject("message").put("role", "assistant").put("content", content);
            byte[] b = root.toString().getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        server.start();
        return server;
    }

    private static List<String> evaluate(HttpServer server, Path outDir, String... more) {
        List<String> a = new ArrayList<>(List.of("evaluate", "--model", model.toString(), "--vector", diffmean.toString(),
                "--instructions", CliSupport.demoRoot().resolve("demo/data/eval.instructions.jsonl").toString(),
                "--max-new-tokens", "4", "--dtype", "f32", "--judge-url",
                "http://" + server.getAddress().getHostString() + ":" + server.getAddress().getPort() + "/v1/chat/completions",
                "--judge-model", "fake", "--judge-key-env", "", "--judge-backoff", "0", "--out-dir", outDir.toString()));
        a.addAll(Arrays.asList(more));
        return a;
    }

    @Test
    void tunedDiffMeanWritesTheChosenFactorAndSteerUsesIt(@TempDir Path dir) throws IOException {
        Path tuned = dir.resolve("tuned.safetensors");
        HttpServer server = judge(null);
        double m;
        try {
            TrainSteerObjectiveCommandTest.Run r = run(evaluate(server, dir.resolve("ev"), "--limit", "4", "--factors", "3,1",
                    "--write-vector", tuned.toString()).toArray(String[]::new));
            assertEquals(0, r.exit(), r.out() + r.err());
            JsonNode j = new ObjectMapper().readTree(Files.readString(dir.resolve("ev").resolve("report.json")));
            m = selectedByHand(j);
            assertEquals(m, j.get("result").get("tuned").get("factor").asDouble(), 0);
            assertTrue(r.out().contains("tuned m = " + m + ": wrote " + tuned), r.out());
        } finally {
            server.stop(0);
        }
        SteeringVectorFile before = SteeringVectorFile.read(diffmean);
        SteeringVectorFile after = SteeringVectorFile.read(tuned);
        assertEquals("diffmean", after.method());
        assertEquals(m * before.factorPositive()[0], after.factorPositive()[0], 1e-12);
        assertArrayEquals(before.factorNegative(), after.factorNegative());
        assertArrayEquals(before.w(), after.w());
        assertEquals(Double.toString(m), after.settings().get("tuned_multiplier_positive"));
        assertEquals(Double.toString(before.factorPositive()[0]), after.settings().get("untuned_factor_positive"));
        assertTrue(after.settings().get("tuned_by").startsWith("evaluate --mode inject"), after.settings().toString());

        // steer with the tuned file at m = 1 is steer with the original at the tuned m
        AtomicReference<String> atThree = new AtomicReference<>();
        for (Path v : List.of(diffmean, tuned)) {
            TrainSteerObjectiveCommandTest.Run r = run("steer", "--model", model.toString(), "--vector", v.toString(), "--inject",
                    "--multiplier", v == diffmean ? Double.toString(m) : "1", "--prompt", "Give me a quote.", "--prompt", "Tell me a saying.",
                    "--max-new-tokens", "8", "--temperature", "0", "--dtype", "f32");
            assertEquals(0, r.exit(), r.out() + r.err());
            String replies = String.join("\n", r.out().lines().filter(l -> l.trim().startsWith("inject x"))
                    .map(l -> l.substring(l.indexOf(':') + 1)).toList());
            if (atThree.get() == null) {
                atThree.set(replies);
            } else {
                assertEquals(atThree.get(), replies);
            }
        }
    }

    /**
     * The factor selection recomputed from the report's items: per m, the mean over its validation
     * replies of the harmonic mean of the three ratings (0 when one is 0), over the replies rated on
     * all three axes; the largest wins, the first in grid order among equals.
     */
    private static double selectedByHand(JsonNode report) {
        double best = Double.NaN;
        double bestScore = Double.NEGATIVE_INFINITY;
        for (JsonNode f : report.get("factors")) {
            double sum = 0;
            int n = 0;
            for (JsonNode it : report.get("items")) {
                if (it.get("factor").asDouble() != f.asDouble() || !it.get("split").asText().equals("validation")) {
                    continue;
                }
                double inv = 0;
                boolean zero = false;
                boolean all = true;
                for (String axis : List.of("concept", "instruction", "fluency")) {
                    JsonNode rating = it.get("ratings").get(axis).get("rating");
                    if (rating.isNull()) {
                        all = false;
                    } else if (rating.asInt() == 0) {
                        zero = true;
                    } else {
                        inv += 1.0 / rating.asInt();
                    }
                }
                if (all) {
                    sum += zero ? 0 : 3 / inv;
                    n++;
                }
            }
            if (n > 0 && sum / n > bestScore) {
                bestScore = sum / n;
                best = f.asDouble();
            }
        }
        return best;
    }

    @Test
    void noTunedFactorMeansNoFileAndExitOne(@TempDir Path dir) throws IOException {
        Path tuned = dir.resolve("tuned.safetensors");
        HttpServer server = judge("I cannot say.");
        try {
            TrainSteerObjectiveCommandTest.Run r = run(evaluate(server, dir.resolve("ev"), "--limit", "2", "--factors", "2",
                    "--judge-attempts", "1", "--write-vector", tuned.toString()).toArray(String[]::new));
            assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
            assertTrue(r.err().contains("no factor was tuned"), r.err());
            assertFalse(Files.exists(tuned));
            Path none = dir.resolve("none");
            Files.createDirectories(none);
            assertFailsCleanly(none, "--write-vector belongs to --mode inject or suppress", evaluate(server, none.resolve("ev"),
                    "--mode", "refusal", "--write-vector", tuned.toString()).toArray(String[]::new));
            List<String> a = evaluate(server, none.resolve("ev"), "--write-vector", tuned.toString());
            a.set(a.indexOf(diffmean.toString()), prompt.toString());
            assertFailsCleanly(none, "has no factor to tune", a.toArray(String[]::new));
        } finally {
            server.stop(0);
        }
    }
}
