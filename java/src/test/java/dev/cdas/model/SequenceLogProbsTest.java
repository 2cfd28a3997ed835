package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * {@link Model#sequenceLogProbs} on the fixture checkpoints, recomputed independently: the sum of
 * log-softmax of {@link Model#forward}'s logits (the same intervention applied by forward) at the
 * row before each scored token, for every intervention mode and without one; the LOREFT and
 * NULL_OUT edits of h_L recomputed in Java from the plain hidden states; the gradient's layout.
 */
class SequenceLogProbsTest {
    static final List<String> FAMILIES = Fixtures.FAMILIES;
    static final int LAYER = 1;
    static final int RANK = 2;
    static final int[] PREFIX = {2, 1};
    static final int[] SCORE_START = {3, 2};
    static final int[] SCORE_COUNT = {4, 3};

    static TokenBatch batch(Random rng, int vocab) {
        return TokenBatch.leftPadded(0, ModelTest.tokens(rng, 8, vocab), ModelTest.tokens(rng, 5, vocab));
    }

    static float[] gaussian(Random rng, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (rng.nextGaussian() * scale);
        }
        return a;
    }

    /** One intervention of each mode (null: none), in a fixed order. */
    static Map<String, Intervention> interventions(Random rng, int d) {
        double s = 1 / Math.sqrt(d);
        Map<String, Intervention> all = new LinkedHashMap<>();
        all.put("none", null);
        all.put("ADD", Intervention.add(LAYER, RANK, gaussian(rng, RANK * d, s), gaussian(rng, 2 * RANK, 2), PREFIX));
        all.put("CLAMP", Intervention.clamp(LAYER, RANK, gaussian(rng, RANK * d, s), gaussian(rng, 2 * RANK, 2), PREFIX));
        all.put("CLAMP source", Intervention.fromSource(LAYER, RANK, gaussian(rng, RANK * d, s), new int[] {1, 0}, PREFIX));
        all.put("NULL_OUT", Intervention.nullOut(LAYER, RANK, gaussian(rng, RANK * d, s), PREFIX));
        all.put("LOREFT", Intervention.loreft(LAYER, gaussian(rng, RANK * d, s), gaussian(rng, RANK * d, s),
                gaussian(rng, RANK, 1), RANK, PREFIX));
        return all;
    }

    /** Sum over the scored tokens of log-softmax of the forward logits at the row before each, in double. */
    static double[] fromLogits(Model model, TokenBatch batch, Intervention iv) {
        int v = model.config().vocabSize();
        float[] logits = model.forward(batch, iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
        double[] out = new double[batch.batch()];
        for (int b = 0; b < batch.batch(); b++) {
            for (int k = 0; k < SCORE_COUNT[b]; k++) {
                int column = batch.firstReal(b) + SCORE_START[b] + k;
                int row = (b * batch.seqLen() + column - 1) * v;
                double top = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < v; i++) {
                    top = Math.max(top, logits[row + i]);
                }
                double sum = 0;
                for (int i = 0; i < v; i++) {
                    sum += Math.exp(logits[row + i] - top);
                }
                out[b] += logits[row + batch.tokens()[b * batch.seqLen() + column]] - top - Math.log(sum);
            }
        }
        return out;
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void logProbsEqualLogSoftmaxOfForwardLogits(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), ModelTest.CPU)) {
            Random rng = new Random(17);
            TokenBatch batch = batch(rng, model.config().vocabSize());
            LogProbBatch scored = new LogProbBatch(batch, PREFIX, SCORE_START, SCORE_COUNT);
            double[] plain = fromLogits(model, batch, null);
            for (var e : interventions(rng, model.config().hiddenSize()).entrySet()) {
                Intervention iv = e.getValue();
                LogProbResult got = model.sequenceLogProbs(iv, scored, null);
                assertNull(got.gradient(), "no upstream, no gradient");
                double[] want = fromLogits(model, batch, iv);
                double moved = 0;
                for (int b = 0; b < batch.batch(); b++) {
                    assertEquals(want[b], got.logProbs()[b], 1e-4 * (1 + Math.abs(want[b])), family + " " + e.getKey() + " row " + b);
                    assertTrue(want[b] < 0, family + " " + e.getKey() + ": a log-probability is negative");
                    moved = Math.max(moved, Math.abs(want[b] - plain[b]));
                }
                if (iv != null) {
                    assertTrue(moved > 1e-3, family + " " + e.getKey() + ": the intervention changed nothing");
                }
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void loreftAndNullOutEditTheHiddenStatesAsTheirFormulas(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), ModelTest.CPU)) {
            int d = model.config().hiddenSize();
            Random rng = new Random(23);
            TokenBatch batch = batch(rng, model.config().vocabSize());
            Map<String, Intervention> all = interventions(rng, d);
            float[] plain = model.forward(batch, null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (String mode : List.of("LOREFT", "NULL_OUT")) {
                Intervention iv = all.get(mode);
                float[] edited = model.forward(batch, iv, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
                double worst = 0;
                for (int b = 0; b < batch.batch(); b++) {
                    for (int p = 0; p < batch.length(b); p++) {
                        int row = (b * batch.seqLen() + batch.firstReal(b) + p) * d;
                        double[] want = new double[d];
                        for (int i = 0; i < d; i++) {
                            want[i] = plain[row + i];
                        }
                        if (p >= PREFIX[b]) {
                            for (int k = 0; k < RANK; k++) {
                                float[] w = java.util.Arrays.copyOfRange(iv.directions(), k * d, (k + 1) * d);
                                double wh = ModelTest.dot(w, plain, row);
                                double c;
                                if (iv.mode() == InterventionMode.LOREFT) {
                                    float[] m = java.util.Arrays.copyOfRange(iv.loreftWeight(), k * d, (k + 1) * d);
                                    c = ModelTest.dot(m, plain, row) + iv.loreftBias()[k] - wh;
                                } else {
                                    c = -Math.max(wh, 0) / ModelTest.dot(w, w, 0);
                                }
                                for (int i = 0; i < d; i++) {
                                    want[i] += c * w[i];
                                }
                            }
                        }
                        for (int i = 0; i < d; i++) {
                            worst = Math.max(worst, Math.abs(want[i] - edited[row + i]));
                        }
                    }
                }
                assertTrue(worst < 1e-4, family + " " + mode + ": h_L off the formula by " + worst);
            }
        }
    }

    /**
     * The gradient's layout (R, M, then b for LOREFT): the derivative along b alone, from the last
     * RANK floats, matches central differences of the upstream-weighted log-probabilities.
     */
    @Test
    void loreftGradientEndsWithTheBiasGradient() throws Exception {
        try (Model model = Model.load(Fixtures.dir("llama"), ModelTest.CPU)) {
            int d = model.config().hiddenSize();
            Random rng = new Random(29);
            TokenBatch batch = batch(rng, model.config().vocabSize());
            LogProbBatch scored = new LogProbBatch(batch, PREFIX, SCORE_START, SCORE_COUNT);
            Intervention iv = interventions(rng, d).get("LOREFT");
            float[] upstream = {0.5f, -1.5f};
            LogProbResult r = model.sequenceLogProbs(iv, scored, upstream);
            assertNotNull(r.gradient());
            assertEquals(2 * RANK * d + RANK, r.gradient().length);
            assertEquals(iv.parameterCount(), r.gradient().length);
            double[] dir = {0.6, -0.8};
            double eps = 1e-2;
            double analytic = 0;
            for (int k = 0; k < RANK; k++) {
                analytic += r.gradient()[2 * RANK * d + k] * dir[k];
            }
            double[] f = new double[2];
            for (int s = 0; s < 2; s++) {
                float[] bias = iv.loreftBias().clone();
                for (int k = 0; k < RANK; k++) {
                    bias[k] += (float) ((s == 0 ? eps : -eps) * dir[k]);
                }
                Intervention moved = Intervention.loreft(LAYER, iv.directions(), iv.loreftWeight(), bias, RANK, PREFIX);
                float[] lp = model.sequenceLogProbs(moved, scored, null).logProbs();
                f[s] = upstream[0] * lp[0] + upstream[1] * lp[1];
            }
            double fd = (f[0] - f[1]) / (2 * eps);
            assertTrue(Math.abs(fd) > 1e-2, "the bias derivative is too small to check: " + fd);
            assertEquals(fd, analytic, 2e-3 + 2e-2 * Math.abs(fd), "d/db along (0.6, -0.8)");
        }
    }

    @Test
    void badArgumentsAreRefusedWithTheProjectsExceptions() throws Exception {
        try (Model model = Model.load(Fixtures.dir("gpt2"), ModelTest.CPU)) {
            int d = model.config().hiddenSize();
            Random rng = new Random(31);
            TokenBatch batch = batch(rng, model.config().vocabSize());
            LogProbBatch scored = new LogProbBatch(batch, PREFIX, SCORE_START, SCORE_COUNT);
            Intervention add = interventions(rng, d).get("ADD");
            ModelTest.assertMessage(InvalidArgumentException.class, "upstream must hold one entry per row (2)",
                    () -> model.sequenceLogProbs(add, scored, new float[3]));
            ModelTest.assertMessage(InvalidArgumentException.class, "no parameters to differentiate",
                    () -> model.sequenceLogProbs(null, scored, new float[2]));
            ModelTest.assertMessage(InvalidArgumentException.class, "scoreCount must hold one entry per row (2)",
                    () -> new LogProbBatch(batch, PREFIX, SCORE_START, new int[] {1}));
            ModelTest.assertMessage(InvalidArgumentException.class, "batch.score_start[0] = 0",
                    () -> model.sequenceLogProbs(add, new LogProbBatch(batch, PREFIX, new int[] {0, 2}, SCORE_COUNT), null));
            ModelTest.assertMessage(InvalidArgumentException.class, "loreftBias (b) must hold rank = 2 floats",
                    () -> Intervention.loreft(LAYER, new float[RANK * d], new float[RANK * d], new float[1], RANK, PREFIX));
            ModelTest.assertMessage(InvalidArgumentException.class, "takes neither values nor sourcePositions",
                    () -> new Intervention(LAYER, RANK, new float[RANK * d], new float[4], null, PREFIX, InterventionMode.NULL_OUT));
            ModelTest.assertMessage(InvalidArgumentException.class, "intervention.directions row 0 is zero",
                    () -> model.sequenceLogProbs(Intervention.nullOut(LAYER, RANK, new float[RANK * d], PREFIX), scored, null));
        }
    }
}
