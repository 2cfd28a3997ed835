package dev.cdas.train;

import static dev.cdas.train.CdasObjectiveTest.LAYER;
import static dev.cdas.train.CdasObjectiveTest.MAX_RESPONSE;
import static dev.cdas.train.CdasObjectiveTest.all;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import java.util.EnumSet;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The DAS objective ({@code CdasObjective} with {@link ObjectiveLoss#CROSS_ENTROPY}) against
 * the same objective composed from Model.forward: source h_L, the clamp a = W h_L(source) on the
 * base, and the token-mean cross-entropy of the base's own response tokens in double, ½ per
 * direction; and its gradient against central finite differences.
 */
class DasObjectiveTest {

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "qwen2"})
    void lossIsHalfTheMeanCrossEntropyOfEachDirection(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective das = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, ObjectiveLoss.CROSS_ENTROPY);
            assertEquals(ObjectiveLoss.CROSS_ENTROPY, das.lossKind());
            float[] w = Directions.randomUnit(1, das.dimension(), new Rng(3));
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            ExampleEncoder enc = new ExampleEncoder(folder.prompts(), MAX_RESPONSE);
            double plus = reference(model, enc, w, all().inject(), true);
            double minus = reference(model, enc, w, all().suppress(), true);
            double expected = 0.5 * plus + 0.5 * minus;
            Objective.Result r = das.loss(w, all());
            assertEquals(expected, r.loss(), 1e-5 * expected, family);
            assertEquals(expected, das.lossAndGradient(w, all()).loss(), 1e-5 * expected, family);
            assertEquals(plus, das.directionLoss(w, all().inject()), 1e-5 * plus, family + " D+");
            assertEquals(minus, das.directionLoss(w, all().suppress()), 1e-5 * minus, family + " D-");

            // the intervention matters: without it the cross-entropy is another number
            double unsteered = 0.5 * reference(model, enc, w, all().inject(), false)
                    + 0.5 * reference(model, enc, w, all().suppress(), false);
            assertTrue(Math.abs(unsteered - expected) > 1e-3, family + ": the clamp changes nothing (" + expected + ")");
            // and it is not the JSD objective
            assertNotEquals(new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE).loss(w, all()).loss(), r.loss(), 1e-3);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "phi3"})
    void gradientMatchesCentralFiniteDifferences(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            CdasObjective das = new CdasObjective(model, folder.prompts(), LAYER, MAX_RESPONSE, ObjectiveLoss.CROSS_ENTROPY);
            float[] w = Directions.randomUnit(1, das.dimension(), new Rng(11));
            for (int i = 0; i < w.length; i++) {
                w[i] *= 3;
            }
            GradientCheck.Probe[] probes = GradientCheck.directional(das, w, all(), 4, 1e-2, 5);
            double largest = 0;
            for (GradientCheck.Probe p : probes) {
                largest = Math.max(largest, Math.abs(p.numeric()));
                assertTrue(p.relativeError() < 5e-3 || Math.abs(p.analytic() - p.numeric()) < 2e-5,
                        family + ": analytic " + p.analytic() + " vs numeric " + p.numeric());
            }
            assertTrue(largest > 1e-3, family + ": the loss does not move with w (" + largest + ")");
        }
    }

    /**
     * Token-mean cross-entropy of one direction's base responses: base {@code baseInput ⊕ response}
     * run through Model.forward with the clamp a = W h_L(source) (or unsteered), in double.
     */
    static double reference(Model model, ExampleEncoder enc, float[] w, List<DirectionExample> examples, boolean clamp)
            throws Exception {
        int d = model.config().hiddenSize();
        int v = model.config().vocabSize();
        double sum = 0;
        long rows = 0;
        for (ExampleEncoder.EncodedExample e : enc.encode(examples)) {
            float[] h = model.forward(TokenBatch.single(e.source()), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            double a = 0;
            for (int i = 0; i < d; i++) {
                a += (double) w[i] * h[e.sourcePosition() * d + i];
            }
            Intervention iv = clamp
                    ? Intervention.clamp(LAYER, 1, w, new float[] {(float) a}, new int[] {e.basePrefixLen()})
                    : null;
            float[] logits = model.forward(TokenBatch.single(e.base()), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
            int[] tokens = e.base();
            for (int k = 0; k < e.responseLength(); k++) {
                int t = e.baseLossStart() + k;
                double max = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < v; i++) {
                    max = Math.max(max, logits[t * v + i]);
                }
                double z = 0;
                for (int i = 0; i < v; i++) {
                    z += Math.exp(logits[t * v + i] - max);
                }
                sum += max + Math.log(z) - logits[t * v + tokens[t + 1]];
                rows++;
            }
        }
        return sum / rows;
    }
}
