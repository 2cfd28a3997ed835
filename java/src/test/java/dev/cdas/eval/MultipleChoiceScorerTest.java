package dev.cdas.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.DType;
import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.model.Tokenizer;
import dev.cdas.train.SteeringVectorFile;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The scorer's log-likelihoods against a plain recomputation from Model.forward logits: tokenise
 * context and context + continuation with the tokenizer's default encoding, run context +
 * continuation alone, log-softmax in double, sum over the continuation's tokens; steered and not.
 * Models: the bundled demo (GPT-2, learned positions, a BOS) and the llama and qwen2 fixtures
 * (rotary; llama's tokenizer adds a BOS, qwen2's does not), in fp32.
 */
class MultipleChoiceScorerTest {
    /** Summation order differs (left-padded batches, shared passes); fp32 logits of these tiny models agree to ~1e-6. */
    static final double TOLERANCE = 2e-4;

    static Path demoModel() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (p.resolve("demo/model/config.json").toFile().isFile()) {
                return p.resolve("demo/model");
            }
        }
        throw new IllegalStateException("demo/model not found above " + Path.of("").toAbsolutePath());
    }

    static Path resource(String name) throws Exception {
        return Path.of(MultipleChoiceScorerTest.class.getResource("/eval/" + name).toURI());
    }

    /**
     * A rotary fixture with a 512-position context instead of its 64 (the MMLU and TruthfulQA
     * prompts are 76-146 tokens, and every family refuses rows past its context): the folder's
     * files linked into a temporary folder, config.json rewritten. max_position_embeddings only
     * bounds the length for these models (llama3 scaling reads original_max_position_embeddings),
     * and both sides of the comparison run the same model.
     */
    static Path longContext(String family) throws Exception {
        Path dir = java.nio.file.Files.createTempDirectory("mc-" + family + "-");
        dir.toFile().deleteOnExit();
        try (var files = java.nio.file.Files.list(Fixtures.dir(family))) {
            for (Path f : files.toList()) {
                Path link = dir.resolve(f.getFileName());
                if (f.getFileName().toString().equals("config.json")) {
                    var json = (com.fasterxml.jackson.databind.node.ObjectNode) new com.fasterxml.jackson.databind.ObjectMapper()
                            .readTree(f.toFile());
                    json.put("max_position_embeddings", 512);
                    java.nio.file.Files.writeString(link, json.toString());
                } else {
                    java.nio.file.Files.createSymbolicLink(link, f.toAbsolutePath());
                }
                link.toFile().deleteOnExit();
            }
        }
        return dir;
    }

    static List<Arguments> cases() throws Exception {
        List<Arguments> out = new ArrayList<>();
        for (Path model : List.of(demoModel(), longContext("llama"), longContext("qwen2"))) {
            for (MultipleChoiceFormat f : MultipleChoiceFormat.values()) {
                out.add(Arguments.of(model, f));
            }
        }
        return out;
    }

    /** A seeded random unit direction for the model with clamp values chosen to move the logits. */
    static SteeringVectorFile vector(int d, int layer, String method) {
        Random rng = new Random(11);
        float[] w = new float[d];
        double n = 0;
        for (int i = 0; i < d; i++) {
            w[i] = (float) rng.nextGaussian();
            n += w[i] * w[i];
        }
        for (int i = 0; i < d; i++) {
            w[i] /= (float) Math.sqrt(n);
        }
        return new SteeringVectorFile(w, 1, d, layer, new double[] {6}, new double[] {-6}, "m", "c", method, Map.of());
    }

    /** The recomputation, written out plainly. */
    static double[] reference(Model model, Tokenizer tok, MultipleChoiceItem item, SteeringVectorFile v, double[] values) {
        double[] out = new double[item.continuations().size()];
        int prefix = tok.prependedSpecialTokens().length;
        for (int c = 0; c < out.length; c++) {
            String context = item.context();
            String continuation = item.continuations().get(c);
            int[] ctx = tok.encode(context, true);
            int[] whole = tok.encode(context + continuation, true);
            int[] cont = Arrays.copyOfRange(whole, ctx.length, whole.length);
            int[] input = new int[ctx.length + cont.length];
            System.arraycopy(ctx, 0, input, 0, ctx.length);
            System.arraycopy(cont, 0, input, ctx.length, cont.length);
            Intervention iv = v == null ? null : v.intervention(values, prefix);
            float[] logits = model.forward(TokenBatch.single(input), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
            int vocab = model.config().vocabSize();
            double sum = 0;
            for (int j = 0; j < cont.length; j++) {
                int row = (ctx.length + j - 1) * vocab;
                double max = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < vocab; i++) {
                    max = Math.max(max, logits[row + i]);
                }
                double z = 0;
                for (int i = 0; i < vocab; i++) {
                    z += Math.exp(logits[row + i] - max);
                }
                sum += logits[row + cont[j]] - max - Math.log(z);
            }
            out[c] = sum;
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource("cases")
    void matchesARecomputationFromForwardLogits(Path modelDir, MultipleChoiceFormat format) throws Exception {
        List<MultipleChoiceItem> items = MultipleChoiceData.read(
                resource(format == MultipleChoiceFormat.MMLU ? "mmlu.jsonl" : "truthfulqa_mc.jsonl"), format, "");
        items = items.subList(0, 3);
        try (ModelFolder folder = ModelFolder.open(modelDir);
             Model model = Model.create(folder.config(), folder.weights(), null,
                     RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1))) {
            Tokenizer tok = folder.tokenizer();
            int layer = folder.config().numLayers() / 2;
            SteeringVectorFile v = vector(folder.config().hiddenSize(), layer, "cdas");
            SteeringVectorFile add = vector(folder.config().hiddenSize(), layer, "diffmean");
            MultipleChoiceScorer plain = new MultipleChoiceScorer(model, tok, null, null);
            assertEquals(tok.prependedSpecialTokens().length, plain.prefixLen());
            MultipleChoiceScorer clamped = new MultipleChoiceScorer(model, tok, v, v.values(true, 1.0));
            MultipleChoiceScorer added = new MultipleChoiceScorer(model, tok, add, add.values(false, 2.0));
            double moved = 0;
            for (MultipleChoiceItem item : items) {
                double[] base = plain.loglikelihoods(item);
                assertClose(reference(model, tok, item, null, null), base, item.source() + " unsteered");
                double[] steered = clamped.loglikelihoods(item);
                assertClose(reference(model, tok, item, v, v.values(true, 1.0)), steered, item.source() + " clamped");
                assertClose(reference(model, tok, item, add, add.values(false, 2.0)), added.loglikelihoods(item),
                        item.source() + " added");
                for (int c = 0; c < base.length; c++) {
                    assertTrue(base[c] < 0 && Double.isFinite(base[c]), "a log-probability: " + base[c]);
                    moved = Math.max(moved, Math.abs(base[c] - steered[c]));
                }
            }
            assertTrue(moved > 1e-2, "steering changes the log-likelihoods (largest change " + moved + ")");

            // The whole run: the same numbers, argmax predictions and the format's score.
            MultipleChoiceResult r = clamped.score(items, format, null);
            double sum = 0;
            for (int i = 0; i < items.size(); i++) {
                MultipleChoiceResult.Scored s = r.items().get(i);
                double[] ref = reference(model, tok, items.get(i), v, v.values(true, 1.0));
                assertClose(ref, s.loglikelihoods(), "score()");
                int best = 0;
                for (int c = 1; c < ref.length; c++) {
                    best = ref[c] > ref[best] ? c : best;
                }
                assertEquals(best, s.prediction());
                double expected;
                if (format == MultipleChoiceFormat.TRUTHFULQA_MC2) {
                    double right = 0;
                    double all = 0;
                    boolean[] correct = items.get(i).correct();
                    for (int c = 0; c < ref.length; c++) {
                        all += Math.exp(ref[c]);
                        right += correct[c] ? Math.exp(ref[c]) : 0;
                    }
                    expected = right / all;
                    assertEquals(expected, s.score(), 1e-6);
                } else {
                    expected = best == items.get(i).answer() ? 1 : 0;
                    assertEquals(expected, s.score());
                }
                sum += s.score();
            }
            assertEquals(sum / items.size(), r.accuracy(), 1e-12);
        }
    }

    static void assertClose(double[] expected, double[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++) {
            assertEquals(expected[i], actual[i], TOLERANCE, what + " continuation " + i + ": " + Arrays.toString(expected)
                    + " vs " + Arrays.toString(actual));
        }
    }

    @ParameterizedTest
    @MethodSource("tokenizers")
    void splitsTokensAsTheHarnessDoes(Path modelDir) throws Exception {
        try (ModelFolder folder = ModelFolder.open(modelDir);
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults().withDtype(DType.F32))) {
            Tokenizer tok = folder.tokenizer();
            MultipleChoiceScorer s = new MultipleChoiceScorer(model, tok, null, null);
            // Trailing whitespace of the context moves to the continuation: "Answer: " + "A" is split as "Answer:" + " A".
            MultipleChoiceScorer.Encoded moved = s.encode("Answer: ", "A");
            MultipleChoiceScorer.Encoded plain = s.encode("Answer:", " A");
            assertArrayEquals(plain.context(), moved.context());
            assertArrayEquals(plain.continuation(), moved.continuation());
            assertArrayEquals(tok.encode("Answer:", true), plain.context());
            int[] whole = tok.encode("Answer: A", true);
            assertArrayEquals(Arrays.copyOfRange(whole, plain.context().length, whole.length), plain.continuation());
        }
    }

    static List<Path> tokenizers() {
        return List.of(demoModel(), Fixtures.dir("llama"), Fixtures.dir("qwen2"));
    }
}
