package dev.cdas.train;

import static dev.cdas.train.CdasObjectiveTest.LAYER;
import static dev.cdas.train.CdasObjectiveTest.MAX_RESPONSE;
import static dev.cdas.train.CdasObjectiveTest.PAIRS;
import static dev.cdas.train.CdasObjectiveTest.all;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * RePS, BiPO and LoReFT on the runtime ({@link LogProbObjective} with {@link ModelLogProbScorer})
 * against their losses recomputed here from {@code Model.forward} logits: each sequence run alone
 * with the intervention built here, log-softmax in double at the rows that predict the response
 * tokens, and the paper's formula written out; and their gradients against central finite
 * differences along several directions.
 */
class LogProbMethodsModelTest {

    private static ExampleEncoder.EncodedSequence seq(ModelFolder folder, String in, String out) throws Exception {
        return new ExampleEncoder(folder.prompts(), MAX_RESPONSE).encodeSequence(in, out, "test");
    }

    /** Σ log p of the response tokens of {@code s} under {@code iv} (null: unsteered), from the logits of one forward pass. */
    private static double logProb(Model model, ExampleEncoder.EncodedSequence s, Intervention iv) {
        int v = model.config().vocabSize();
        float[] logits = model.forward(TokenBatch.single(s.ids()), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
        double sum = 0;
        for (int t = s.promptLength(); t < s.ids().length; t++) {
            int row = t - 1;
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < v; i++) {
                max = Math.max(max, logits[row * v + i]);
            }
            double z = 0;
            for (int i = 0; i < v; i++) {
                z += Math.exp(logits[row * v + i] - max);
            }
            sum += logits[row * v + s.ids()[t]] - max - Math.log(z);
        }
        return sum;
    }

    private static double logSigmoid(double x) {
        return x > 0 ? -Math.log1p(Math.exp(-x)) : x - Math.log1p(Math.exp(x));
    }

    private static float[] randomVector(int d, long seed, double norm) {
        float[] v = Directions.randomUnit(1, d, new Rng(seed));
        for (int i = 0; i < d; i++) {
            v[i] *= (float) norm;
        }
        return v;
    }

    private static LogProbObjective objective(SteeringMethod m, Model model, ModelFolder folder, double[] factors) {
        int pad = folder.prompts().tokenizer().padTokenId().orElse(0);
        return new LogProbObjective(m, new ModelLogProbScorer(model, LAYER, pad, 5), folder.prompts(), MAX_RESPONSE, 17,
                factors, 0.3);
    }

    /** Perturbs LoReFT's identity start so that both edits do something. */
    private static float[] loreftParameters(int d, int rank) {
        float[] p = LoreftParameters.initial(rank, d, new Rng(5));
        Random r = new Random(6);
        for (int i = 0; i < p.length; i++) {
            p[i] += (float) (0.3 * r.nextGaussian());
        }
        LoreftParameters.orthonormalizeBoth(p, rank, d);
        return p;
    }

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "qwen2"})
    void lossesMatchTheirFormulasOnForwardLogits(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            int d = model.config().hiddenSize();
            float[] v = randomVector(d, 3, 4.0);
            double alpha = 1.5;

            // RePS
            double reps = 0;
            for (ConceptPair p : PAIRS) {
                ExampleEncoder.EncodedSequence xc = seq(folder, p.negativeInput(), p.positiveOutput());
                ExampleEncoder.EncodedSequence xy = seq(folder, p.negativeInput(), p.negativeOutput());
                ExampleEncoder.EncodedSequence cy = seq(folder, p.positiveInput(), p.negativeOutput());
                ExampleEncoder.EncodedSequence cc = seq(folder, p.positiveInput(), p.positiveOutput());
                double nc = xc.responseLength();
                double ny = xy.responseLength();
                Intervention plus = Intervention.add(LAYER, 1, v, new float[] {(float) alpha}, new int[] {xc.prefixLen()});
                Intervention nullOut = Intervention.nullOut(LAYER, 1, v, new int[] {cy.prefixLen()});
                double betaPlus = Math.max(logProb(model, xy, null) / ny - logProb(model, xc, null) / nc, 1);
                double betaMinus = Math.max(logProb(model, cc, null) / nc - logProb(model, cy, null) / ny, 1);
                double dPlus = betaPlus * logProb(model, xc, plus) / nc - logProb(model, xy, plus) / ny;
                double dMinus = betaMinus * logProb(model, cy, nullOut) / ny - logProb(model, cc, nullOut) / nc;
                reps += -logSigmoid(dPlus) - logSigmoid(dMinus);
            }
            reps /= PAIRS.size();
            double got = objective(SteeringMethod.REPS, model, folder, new double[] {alpha}).loss(v, all()).loss();
            assertEquals(reps, got, 1e-4 * Math.abs(reps), family + " reps");

            // BiPO, with the objective's own signs (a hash of seed, step and index)
            LogProbObjective bipoObjective = objective(SteeringMethod.BIPO, model, folder, new double[] {1});
            double bipo = 0;
            int[] signs = new int[PAIRS.size()];
            for (int i = 0; i < PAIRS.size(); i++) {
                ConceptPair p = PAIRS.get(i);
                int sign = bipoObjective.sign(0, i);
                signs[i] = sign;
                ExampleEncoder.EncodedSequence win = sign > 0 ? seq(folder, p.negativeInput(), p.positiveOutput())
                        : seq(folder, p.positiveInput(), p.negativeOutput());
                ExampleEncoder.EncodedSequence lose = sign > 0 ? seq(folder, p.negativeInput(), p.negativeOutput())
                        : seq(folder, p.positiveInput(), p.positiveOutput());
                Intervention iv = Intervention.add(LAYER, 1, v, new float[] {sign}, new int[] {win.prefixLen()});
                double margin = (logProb(model, win, iv) - logProb(model, win, null))
                        - (logProb(model, lose, iv) - logProb(model, lose, null));
                bipo += -logSigmoid(0.3 * margin);
            }
            bipo /= PAIRS.size();
            assertEquals(bipo, bipoObjective.loss(v, all()).loss(), 1e-4 * Math.abs(bipo), family + " bipo, signs "
                    + java.util.Arrays.toString(signs));

            // LoReFT: half the token-mean CE of each direction under its own edit
            int rank = 2;
            float[] p = loreftParameters(d, rank);
            double[] ce = new double[2];
            double[] tokens = new double[2];
            for (ConceptPair pair : PAIRS) {
                for (int k = 0; k < 2; k++) {
                    ExampleEncoder.EncodedSequence s = k == 0 ? seq(folder, pair.negativeInput(), pair.positiveOutput())
                            : seq(folder, pair.positiveInput(), pair.negativeOutput());
                    float[] edit = LoreftParameters.block(p, k, rank, d);
                    Intervention iv = Intervention.loreft(LAYER, LoreftParameters.r(edit, rank, d),
                            LoreftParameters.w(edit, rank, d), LoreftParameters.b(edit, rank, d), rank, new int[] {s.prefixLen()});
                    ce[k] -= logProb(model, s, iv);
                    tokens[k] += s.responseLength();
                }
            }
            double loreft = 0.5 * ce[0] / tokens[0] + 0.5 * ce[1] / tokens[1];
            assertEquals(loreft, objective(SteeringMethod.LOREFT, model, folder, new double[] {1}).loss(p, all()).loss(),
                    1e-4 * loreft, family + " loreft");
        }
    }

    /**
     * RePS's starting vector for the finite-difference check: |v|=3 in a seeded random direction,
     * redrawn until no NULL_OUT row sits near a ReLU kink. The null-out
     * {@code h - ReLU(v.h)/|v|^2 v} is not differentiable where {@code v.h_t = 0}; a central
     * difference whose steps straddle such a point averages the two one-sided slopes, whatever the
     * step size, and the analytic derivative is one of them. With seed 9 (the vector BiPO uses)
     * an intervened row of the third pair's xᶜ has {@code v.h/|v| = 5e-4} at |h| = 18 (and one of
     * the first two pairs' {@code -0.022} at |h| = 21): the Δ⁻ sequences alone were off by 13-28 %
     * at steps 1e-2 and 2e-3 (the whole loss by 1.1-1.2 %), while the Δ⁺ sequences matched to 1e-4
     * at 1e-2 (0.15 % at 2e-3, float log-probabilities). A step of size {@code eps} along a unit
     * direction moves {@code v.h_t} by at most {@code eps |h_t|} (h_t at the layer does not depend
     * on v), so {@code |v.h_t| > 2 eps |h_t|} at every intervened row keeps every step on one side
     * of every kink, as in the native test of the NULL_OUT gradient; from such a vector the Δ⁻
     * sequences alone agree to 0.4 % and the whole loss to the tolerance of the other methods. Some
     * row must be active ({@code v.h_t > 0}), or the null-out would not contribute to the gradient.
     */
    private static float[] repsStartClearOfKinks(Model model, ModelFolder folder, double eps) throws Exception {
        int d = model.config().hiddenSize();
        // h_L at every row the null-out acts on (from prefixLen on) of every xᶜ sequence
        List<float[]> rows = new ArrayList<>();
        for (ConceptPair p : PAIRS) {
            for (String out : new String[] {p.negativeOutput(), p.positiveOutput()}) {
                ExampleEncoder.EncodedSequence s = seq(folder, p.positiveInput(), out);
                float[] h = model.forward(TokenBatch.single(s.ids()), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
                for (int t = s.prefixLen(); t < s.ids().length; t++) {
                    rows.add(Arrays.copyOfRange(h, t * d, (t + 1) * d));
                }
            }
        }
        for (long seed = 9; seed < 209; seed++) {
            float[] v = randomVector(d, seed, 3.0);
            boolean clear = true;
            boolean active = false;
            for (float[] h : rows) {
                double vh = 0;
                double hh = 0;
                for (int i = 0; i < d; i++) {
                    vh += (double) v[i] * h[i];
                    hh += (double) h[i] * h[i];
                }
                clear &= Math.abs(vh) > 2 * eps * Math.sqrt(hh);
                active |= vh > 0;
            }
            if (clear && active) {
                return v;
            }
        }
        throw new AssertionError("no RePS vector clear of the null-out's ReLU kinks in 200 draws");
    }

    /**
     * RePS, BiPO and LoReFT; RePS from a vector clear of its null-out's kinks
     * ({@link #repsStartClearOfKinks}).
     */
    @ParameterizedTest
    @ValueSource(strings = {"reps", "bipo", "loreft"})
    void gradientsMatchCentralFiniteDifferences(String method) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("gemma2"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            SteeringMethod m = SteeringMethod.parse(method);
            int d = model.config().hiddenSize();
            LogProbObjective o = objective(m, model, folder, new double[] {1.0, 2.0});
            double eps = 1e-2;
            float[] p = switch (m) {
                case LOREFT -> loreftParameters(d, 2);
                case REPS -> repsStartClearOfKinks(model, folder, eps);
                default -> randomVector(d, 9, 3.0);
            };
            GradientCheck.Probe[] probes = GradientCheck.directional(o, p, all(), 3, eps, 21);
            double largest = 0;
            for (GradientCheck.Probe probe : probes) {
                largest = Math.max(largest, Math.abs(probe.numeric()));
                assertTrue(probe.relativeError() < 1e-2 || Math.abs(probe.analytic() - probe.numeric()) < 2e-5,
                        method + ": analytic " + probe.analytic() + " vs numeric " + probe.numeric());
            }
            assertTrue(largest > 1e-3, method + ": the loss does not move with the parameters (" + largest + ")");
        }
    }
}
