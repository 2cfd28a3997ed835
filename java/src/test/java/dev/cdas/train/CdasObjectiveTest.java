package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.reference.JsdReference;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The runtime's fused CDAS objective against the same objective composed independently from
 * Model.forward (unmodified target logits, source h_L, the clamp a = W h_L(source) on the base)
 * and a double-precision JSD in Java, with the sequences and loss positions built here from the
 * pairs as docs/method.md section 1 states them (not by ExampleEncoder, the code under test); its
 * gradient against central finite differences; the steering factors against h_L from Model.forward.
 */
class CdasObjectiveTest {
    static final List<ConceptPair> PAIRS = List.of(
            // short enough for the fixtures' 64-position context (qwen2's chat template alone takes most of it)
            new ConceptPair("A joke?", "Why not?", "Cats?", "Cats purr a lot.", "cats", 0, "p1"),
            new ConceptPair("3 + 4?", "It is 7.", "Cats nap?", "Yes, all day", "cats", 0, "p2"),
            new ConceptPair("Hello there", "Hi!", "xyz cats", "meow meow meow", "cats", 0, "p3"));
    static final int LAYER = 1;
    static final int MAX_RESPONSE = 6;

    static Batch all() {
        return new Batch(0, 0, 0, IntStream.range(0, PAIRS.size()).toArray(), PAIRS);
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "phi3", "qwen2"})
    void fusedObjectiveMatchesTheObjectiveComposedFromForwardPasses(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective objective = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE);
            float[] w = Directions.randomUnit(1, objective.dimension(), new Rng(3));
            // make the clamp matter: a longer w moves h more
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            Objective.Result fused = objective.lossAndGradient(w, all());
            Reference plus = reference(model, folder.prompts(), w, PAIRS, true);
            Reference minus = reference(model, folder.prompts(), w, PAIRS, false);
            double expected = 0.5 * plus.mean() + 0.5 * minus.mean();
            assertTrue(expected > 1e-4, family + ": the clamp changes nothing (" + expected + ")");
            assertEquals(expected, fused.loss(), 2e-5 + 1e-4 * expected, family);
            assertEquals(plus.tokens() + minus.tokens(), fused.tokens());
        }
    }

    /**
     * Issue 16 item 7: the objective of many pairs evaluated a few pairs per native call (memory
     * bounded by the chunk) is the objective of one minibatch of all of them, loss and gradient.
     */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "gemma2"})
    void chunkedEvaluationEqualsOneMinibatch(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective objective = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE);
            CdasObjective uncached = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, ObjectiveLoss.JSD, 0);
            float[] w = Directions.randomUnit(1, objective.dimension(), new Rng(5));
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            Objective.Result whole = objective.lossAndGradient(w, all());
            for (int perCall : new int[] {1, 2, 3, 100}) {
                Objective.Result chunked = uncached.evaluateInChunks(w, all(), perCall, true);
                assertEquals(whole.loss(), chunked.loss(), 1e-6 + 1e-5 * whole.loss(), family + " " + perCall + " pairs per call");
                assertEquals(whole.tokens(), chunked.tokens());
                double scale = 0;
                double worst = 0;
                for (int i = 0; i < w.length; i++) {
                    scale = Math.max(scale, Math.abs(whole.gradient()[i]));
                    worst = Math.max(worst, Math.abs(whole.gradient()[i] - chunked.gradient()[i]));
                }
                assertTrue(scale > 0 && worst <= 1e-4 * scale + 1e-7, family + " " + perCall + ": gradient differs by " + worst
                        + " (largest component " + scale + ")");
                Objective.Result lossOnly = uncached.evaluateInChunks(w, all(), perCall, false);
                assertEquals(chunked.loss(), lossOnly.loss(), 1e-9);
                assertEquals(null, lossOnly.gradient());
            }
            assertEquals(0, uncached.stateCacheBytes());

            // the demo's path: chunks through a state cache, which keeps the states they computed
            CdasObjective kept = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE);
            Objective.Result cached = kept.evaluateInChunksCached(w, all(), 2, true);
            assertEquals(whole.loss(), cached.loss(), 1e-6 + 1e-5 * whole.loss(), family + " cached chunks");
            assertEquals(whole.tokens(), cached.tokens());
            for (int i = 0; i < w.length; i++) {
                assertEquals(whole.gradient()[i], cached.gradient()[i], 1e-4 * Math.abs(whole.gradient()[i]) + 1e-7, family + " " + i);
            }
            long held = kept.stateCacheBytes();
            assertTrue(held > 0, family + ": the chunks kept no states");
            assertEquals(whole.loss(), kept.loss(w, all()).loss(), 1e-6 + 1e-5 * whole.loss(), family + " one minibatch on kept states");
            assertEquals(held, kept.stateCacheBytes(), family + ": the minibatch computed states the chunks had kept");
        }
    }

    /** Issue 16 item 7: a pair whose sequence is longer than the context is refused, naming the pair, before a batch is built. */
    @Test
    void aPairLongerThanTheContextIsRefusedByName() throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("qwen2"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective objective = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, ObjectiveLoss.JSD, 0);
            ConceptPair longPrompt = new ConceptPair("Tell me a joke. ".repeat(100), "Why not?", "Tell me about cats.", "Cats purr.",
                    "cats", 0, "long.jsonl line 2");
            Batch batch = new Batch(0, 0, 0, new int[] {0, 1}, List.of(PAIRS.get(0), longPrompt));
            float[] w = Directions.randomUnit(1, objective.dimension(), new Rng(5));
            dev.cdas.InvalidArgumentException e = org.junit.jupiter.api.Assertions.assertThrows(dev.cdas.InvalidArgumentException.class,
                    () -> objective.evaluateInChunks(w, batch, 1, true));
            assertTrue(e.getMessage().startsWith("long.jsonl line 2: a sequence of this pair is ")
                    && e.getMessage().contains("more than the model's context of 64 positions (max_position_embeddings in "), e.getMessage());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "phi3"})
    void gradientMatchesCentralFiniteDifferences(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective objective = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE);
            float[] w = Directions.randomUnit(1, objective.dimension(), new Rng(11));
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            double largest = 0;
            for (GradientCheck.Probe p : GradientCheck.directional(objective, w, all(), 4, 1e-2, 5)) {
                assertTrue(p.relativeError() < 2e-2 || Math.abs(p.analytic() - p.numeric()) < 2e-4,
                        family + ": analytic " + p.analytic() + " vs numeric " + p.numeric());
                largest = Math.max(largest, Math.abs(p.numeric()));
            }
            // four random directions; a vanishing gradient would pass the comparison above trivially
            assertTrue(largest > 1e-3, family + ": the loss does not move with w (largest directional derivative " + largest + ")");
        }
    }

    /**
     * The state cache (on by default) changes nothing: the same loss and gradient with the states
     * computed in the call (cache off), on the first call (states computed by forward passes and
     * kept), on a later call (states read from the cache), and past the cache's bound (computed,
     * not kept); for the JSD and for DAS's cross-entropy.
     */
    @ParameterizedTest
    @ValueSource(strings = {"JSD", "CROSS_ENTROPY"})
    void stateCacheGivesTheUncachedLossAndGradient(String loss) throws Exception {
        ObjectiveLoss kind = ObjectiveLoss.valueOf(loss);
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("llama"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective uncached = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, kind, 0);
            CdasObjective cached = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, kind, 1L << 30);
            CdasObjective tiny = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, kind, 1);
            float[] w = Directions.randomUnit(1, uncached.dimension(), new Rng(5));
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            Objective.Result want = uncached.lossAndGradient(w, all());
            assertTrue(want.loss() > 1e-4, "the clamp changes nothing");
            assertEquals(0, uncached.stateCacheBytes());
            Objective.Result first = cached.lossAndGradient(w, all());
            long kept = cached.stateCacheBytes();
            assertTrue(kept > 0, "nothing was cached");
            Objective.Result second = cached.lossAndGradient(w, all());
            assertEquals(kept, cached.stateCacheBytes(), "a second call cached again");
            Objective.Result unkept = tiny.lossAndGradient(w, all());
            assertEquals(0, tiny.stateCacheBytes());
            for (Objective.Result r : List.of(first, second, unkept)) {
                assertEquals(want.loss(), r.loss(), 1e-6 * Math.max(1, want.loss()), loss);
                for (int i = 0; i < w.length; i++) {
                    assertEquals(want.gradient()[i], r.gradient()[i], 1e-6, loss + " gradient[" + i + "]");
                }
            }
            // a different w on cached states still moves the loss (the states are w-independent only)
            float[] other = Directions.randomUnit(1, uncached.dimension(), new Rng(6));
            assertEquals(uncached.loss(other, all()).loss(), cached.loss(other, all()).loss(), 1e-6);
        }
    }

    /** The factors a+ and a- (mean of w . h_L at the last token of each rendered prompt), one forward pass per prompt. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "gemma2"})
    void steeringFactorsAreTheMeanProjectionAtTheSourceToken(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            int d = model.config().hiddenSize();
            float[] w = Directions.randomUnit(1, d, new Rng(8));
            var factors = new ModelSteeringFactors(model, folder.prompts(), LAYER).estimate(w, 1, PAIRS);
            double[] want = new double[2];
            for (ConceptPair p : PAIRS) {
                want[0] += projectionAtLastToken(model, folder.prompts(), w, p.positiveInput()) / PAIRS.size();
                want[1] += projectionAtLastToken(model, folder.prompts(), w, p.negativeInput()) / PAIRS.size();
            }
            assertTrue(Math.abs(want[0] - want[1]) > 1e-4, family + ": the prompts do not differ along w");
            assertEquals(want[0], factors.positive()[0], 1e-4 * Math.max(1, Math.abs(want[0])), family + " a+");
            assertEquals(want[1], factors.negative()[0], 1e-4 * Math.max(1, Math.abs(want[1])), family + " a-");
        }
    }

    static double projectionAtLastToken(Model model, PromptEncoder prompts, float[] w, String prompt) throws Exception {
        int d = model.config().hiddenSize();
        int[] ids = prompts.encodePrompt(prompt).ids();
        float[] h = model.forward(TokenBatch.single(ids), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
        double a = 0;
        for (int i = 0; i < d; i++) {
            a += (double) w[i] * h[(ids.length - 1) * d + i];
        }
        return a;
    }

    record Reference(double mean, long tokens) {}

    /**
     * Token-mean JSD of one direction (inject: D+, else D-), composed from unfused forward passes
     * in double, with every sequence and position built from the pairs by docs/method.md: D+ steers
     * x + y^c (clamp value from the source x^c) towards the unmodified model on x^c + y^c; D- steers
     * x^c + y (source x) towards x + y; the compared positions predict the response tokens, from
     * the last prompt token on; responses are tokenised without special tokens and cut to
     * MAX_RESPONSE; the clamp acts from the template's shared opening (prefix_len) on.
     */
    static Reference reference(Model model, PromptEncoder prompts, float[] w, List<ConceptPair> pairs, boolean inject)
            throws Exception {
        int d = model.config().hiddenSize();
        int v = model.config().vocabSize();
        double sum = 0;
        long rows = 0;
        for (ConceptPair pair : pairs) {
            String baseInput = inject ? pair.negativeInput() : pair.positiveInput();
            String sourceInput = inject ? pair.positiveInput() : pair.negativeInput();
            String response = inject ? pair.positiveOutput() : pair.negativeOutput();
            int[] basePrompt = prompts.encodePrompt(baseInput).ids();
            int[] sourcePrompt = prompts.encodePrompt(sourceInput).ids();
            int[] all = prompts.tokenizer().encode(response, false);
            int[] resp = Arrays.copyOf(all, Math.min(all.length, MAX_RESPONSE));
            int[] base = concat(basePrompt, resp);
            int[] target = concat(sourcePrompt, resp);

            float[] targetLogits = model.logits(TokenBatch.single(target));
            float[] h = model.forward(TokenBatch.single(sourcePrompt), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            double a = 0;
            for (int i = 0; i < d; i++) {
                a += (double) w[i] * h[(sourcePrompt.length - 1) * d + i];
            }
            float[] baseLogits = model.forward(TokenBatch.single(base),
                    Intervention.clamp(LAYER, 1, w, new float[] {(float) a}, new int[] {prompts.prefixLen()}), 0,
                    EnumSet.of(ForwardOutput.LOGITS)).logits();
            for (int k = 0; k < resp.length; k++) {
                sum += JsdReference.jsd(row(targetLogits, sourcePrompt.length - 1 + k, v), row(baseLogits, basePrompt.length - 1 + k, v));
                rows++;
            }
        }
        return new Reference(sum / rows, rows);
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static double[] row(float[] logits, int t, int v) {
        double[] r = new double[v];
        for (int i = 0; i < v; i++) {
            r[i] = logits[t * v + i];
        }
        return r;
    }
}
