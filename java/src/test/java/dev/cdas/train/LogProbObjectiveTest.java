package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plumbing of {@link LogProbObjective} (which sequences, which steering, which loss, the chain
 * rule through the scorer, the reference cache, the draws, the trainer hooks) on a toy scorer whose
 * log-probabilities are a smooth closed-form function of the parameters. The model-backed objective
 * is checked against {@code Model.forward} in LogProbMethodsModelTest.
 */
class LogProbObjectiveTest {
    @TempDir
    Path dir;

    static final int DIM = 6;

    /** Toy tokenizer: one id per character, prompt then response; the template prefix is the first id. */
    static final LogProbObjective.SequenceEncoder CHARS = (input, response, origin) -> {
        int[] ids = (input + "|" + response).chars().toArray();
        return new LogProbObjective.Scored(ids, 1, input.length() + 1);
    };

    /**
     * logp(s) = −n · softplus(−z), z = c_s + e: e = f·(v·φ_s) for the additive methods, and
     * e = f·ψ_s·Rᵀ(W φ_s + b − R φ_s) for LoReFT; φ_s, ψ_s, c_s fixed per sequence.
     */
    static final class ToyScorer implements LogProbObjective.Scorer {
        int unsteeredSequences;
        int calls;

        @Override
        public int dimension() {
            return DIM;
        }

        @Override
        public LogProbObjective.Scores score(LogProbObjective.Steering st, List<LogProbObjective.Scored> seqs, double[] up) {
            calls++;
            double[] lp = new double[seqs.size()];
            double[] grad = st == null ? null : new double[st.parameters().length];
            if (st == null) {
                unsteeredSequences += seqs.size();
            }
            for (int i = 0; i < seqs.size(); i++) {
                LogProbObjective.Scored s = seqs.get(i);
                Random r = new Random(Arrays.hashCode(s.ids()));
                double c = 0.5 * r.nextGaussian();
                double[] phi = new double[DIM];
                double[] psi = new double[DIM];
                for (int k = 0; k < DIM; k++) {
                    phi[k] = r.nextGaussian();
                    psi[k] = r.nextGaussian();
                }
                int n = s.responseLength();
                double e = 0;
                double[] de = st == null ? null : new double[st.parameters().length];
                if (st != null) {
                    float[] p = st.parameters();
                    switch (st.kind()) {
                        case LOREFT -> {
                            int rank = st.rank();
                            for (int k = 0; k < rank; k++) {
                                double rphi = 0;
                                double wphi = 0;
                                double u = 0;
                                for (int j = 0; j < DIM; j++) {
                                    rphi += p[k * DIM + j] * phi[j];
                                    wphi += p[rank * DIM + k * DIM + j] * phi[j];
                                    u += p[k * DIM + j] * psi[j];
                                }
                                double g = wphi + p[2 * rank * DIM + k] - rphi;
                                e += g * u;
                                for (int j = 0; j < DIM; j++) {
                                    de[rank * DIM + k * DIM + j] = u * phi[j];
                                    de[k * DIM + j] = -u * phi[j] + g * psi[j];
                                }
                                de[2 * rank * DIM + k] = u;
                            }
                        }
                        case ADD -> {
                            double f = st.amounts()[i];
                            for (int j = 0; j < DIM; j++) {
                                e += f * p[j] * phi[j];
                                de[j] = f * phi[j];
                            }
                        }
                        case NULL_OUT -> {
                            // h = psi loses ReLU(v.psi)/|v|^2 v; the score reads it along phi
                            double vpsi = 0;
                            double vphi = 0;
                            double vv = 0;
                            for (int j = 0; j < DIM; j++) {
                                vpsi += p[j] * psi[j];
                                vphi += p[j] * phi[j];
                                vv += (double) p[j] * p[j];
                            }
                            if (vpsi > 0) {
                                e = -vpsi * vphi / vv;
                                for (int j = 0; j < DIM; j++) {
                                    de[j] = -(psi[j] * vphi + phi[j] * vpsi) / vv + 2 * vpsi * vphi * p[j] / (vv * vv);
                                }
                            }
                        }
                    }
                }
                double z = c + e;
                lp[i] = -n * LogProbLosses.softplus(-z);
                if (up != null && st != null) {
                    double dz = n * LogProbLosses.sigmoid(-z);
                    for (int j = 0; j < grad.length; j++) {
                        grad[j] += up[i] * dz * de[j];
                    }
                }
            }
            float[] g = null;
            if (up != null && st != null) {
                g = new float[grad.length];
                for (int j = 0; j < g.length; j++) {
                    g[j] = (float) grad[j];
                }
            }
            return new LogProbObjective.Scores(lp, g);
        }
    }

    static List<ConceptPair> pairs(int n) {
        List<ConceptPair> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new ConceptPair("plain prompt " + i, "plain answer " + (i * 7 % 5), "concept prompt " + i,
                    "concept answer number " + i, "toy", 0, "toy #" + i));
        }
        return out;
    }

    static LogProbObjective objective(SteeringMethod m, ToyScorer scorer) {
        return new LogProbObjective(m, scorer, CHARS, 3, LogProbObjective.DEFAULT_REPS_FACTORS,
                LogProbObjective.DEFAULT_BIPO_BETA);
    }

    static Batch batch(List<ConceptPair> pairs, long step) {
        return new Batch(step, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
    }

    private static float[] randomParameters(LogProbObjective o, int rank, long seed) {
        float[] p = o.initialParameters(rank, new Rng(seed));
        Random r = new Random(seed);
        for (int i = 0; i < p.length; i++) {
            p[i] += (float) (0.3 * r.nextGaussian());
        }
        return p;
    }

    @Test
    void gradientsMatchFiniteDifferences() {
        List<ConceptPair> pairs = pairs(5);
        for (SteeringMethod m : List.of(SteeringMethod.REPS, SteeringMethod.BIPO, SteeringMethod.LOREFT)) {
            int rank = m == SteeringMethod.LOREFT ? 2 : 1;
            LogProbObjective o = objective(m, new ToyScorer());
            float[] p = randomParameters(o, rank, 4);
            GradientCheck.Probe[] probes = GradientCheck.directional(o, p, batch(pairs, 3), 4, 1e-3, 8);
            for (GradientCheck.Probe probe : probes) {
                assertTrue(Math.abs(probe.numeric()) > 1e-4, m + ": vanishing directional derivative " + probe.numeric());
                assertTrue(probe.relativeError() < 2e-3, m + ": " + probe.analytic() + " vs " + probe.numeric());
            }
        }
    }

    @Test
    void lossesAreThoseOfTheScoredSequences() {
        List<ConceptPair> pairs = pairs(3);
        ToyScorer toy = new ToyScorer();
        // one training factor, so that the test knows alpha
        LogProbObjective reps = new LogProbObjective(SteeringMethod.REPS, toy, CHARS, 3, new double[] {1.5}, 0.1);
        float[] v = randomParameters(reps, 1, 2);
        double expected = 0;
        for (ConceptPair p : pairs) {
            List<LogProbObjective.Scored> seqs = List.of(seq(p.negativeInput(), p.positiveOutput()),
                    seq(p.negativeInput(), p.negativeOutput()), seq(p.positiveInput(), p.negativeOutput()),
                    seq(p.positiveInput(), p.positiveOutput()));
            double[] ref = toy.score(null, seqs, null).logProbs();
            double[] plus = toy.score(new LogProbObjective.Steering(LogProbObjective.Kind.ADD, 1, v, new float[] {1.5f, 1.5f}),
                    seqs.subList(0, 2), null).logProbs();
            double[] minus = toy.score(new LogProbObjective.Steering(LogProbObjective.Kind.NULL_OUT, 1, v, null),
                    seqs.subList(2, 4), null).logProbs();
            expected += LogProbLosses.reps(new double[] {plus[0], plus[1], minus[0], minus[1]}, ref,
                    new int[] {seqs.get(0).responseLength()}, new int[] {seqs.get(1).responseLength()}).loss();
        }
        assertEquals(expected / pairs.size(), reps.loss(v, batch(pairs, 0)).loss(), 1e-12);
        // LoReFT at its initial parameters is the identity: half the CE of yc after x plus half that of y after xc,
        // each a token mean, under the unsteered toy
        LogProbObjective loreft = objective(SteeringMethod.LOREFT, toy);
        float[] init = loreft.initialParameters(2, new Rng(1));
        double[] ce = new double[2];
        int[] tokens = new int[2];
        for (ConceptPair p : pairs) {
            LogProbObjective.Scored plus = seq(p.negativeInput(), p.positiveOutput());
            LogProbObjective.Scored minus = seq(p.positiveInput(), p.negativeOutput());
            ce[0] -= toy.score(null, List.of(plus), null).logProbs()[0];
            ce[1] -= toy.score(null, List.of(minus), null).logProbs()[0];
            tokens[0] += plus.responseLength();
            tokens[1] += minus.responseLength();
        }
        Objective.Result r = loreft.lossAndGradient(init, batch(pairs, 0));
        assertEquals(0.5 * ce[0] / tokens[0] + 0.5 * ce[1] / tokens[1], r.loss(), 1e-12);
        assertEquals(tokens[0] + tokens[1], r.tokens());
    }

    private static LogProbObjective.Scored seq(String in, String out) {
        try {
            return CHARS.encode(in, out, "t");
        } catch (dev.cdas.model.ChatTemplateException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void referencesAreComputedOncePerSequence() {
        List<ConceptPair> pairs = pairs(4);
        ToyScorer toy = new ToyScorer();
        LogProbObjective bipo = objective(SteeringMethod.BIPO, toy);
        float[] v = randomParameters(bipo, 1, 3);
        for (int step = 0; step < 20; step++) {
            bipo.lossAndGradient(v, batch(pairs, step));
        }
        // each pair has at most 4 distinct sequences (two per sign), scored unsteered once each
        assertTrue(toy.unsteeredSequences <= 4 * pairs.size() && toy.unsteeredSequences > 2 * pairs.size(),
                "unsteered sequences scored: " + toy.unsteeredSequences);
    }

    @Test
    void bipoSignsAreBalancedAndReproducible() {
        LogProbObjective a = objective(SteeringMethod.BIPO, new ToyScorer());
        LogProbObjective b = objective(SteeringMethod.BIPO, new ToyScorer());
        int plus = 0;
        for (int step = 0; step < 100; step++) {
            for (int i = 0; i < 10; i++) {
                assertEquals(a.sign(step, i), b.sign(step, i));
                plus += a.sign(step, i) > 0 ? 1 : 0;
            }
        }
        assertTrue(plus > 430 && plus < 570, "+1 drawn " + plus + " times of 1000");
    }

    @Test
    void loreftKeepsROrthonormalWhileTraining() throws IOException {
        List<ConceptPair> pairs = pairs(8);
        LogProbObjective o = objective(SteeringMethod.LOREFT, new ToyScorer());
        TrainingSettings s = TrainingSettings.defaults().withEpochs(5).withBatchSize(4).withLr(0.05).withRank(2).withSeed(3);
        Trainer.Run run = new Trainer(o, s).train(pairs, Trainer.Outputs.none(), false);
        assertEquals(2 * (2 * 2 * DIM + 2), run.w().length);
        for (int edit = 0; edit < 2; edit++) {
            float[] r = LoreftParameters.r(LoreftParameters.block(run.w(), edit, 2, DIM), 2, DIM);
            for (int a = 0; a < 2; a++) {
                for (int b = 0; b < 2; b++) {
                    double dot = 0;
                    for (int i = 0; i < DIM; i++) {
                        dot += (double) r[a * DIM + i] * r[b * DIM + i];
                    }
                    assertEquals(a == b ? 1.0 : 0.0, dot, 1e-6, "edit " + edit);
                }
            }
        }
        assertTrue(run.log().entries().getLast().loss() < run.log().entries().getFirst().loss(),
                "loss " + run.log().entries().getFirst().loss() + " -> " + run.log().entries().getLast().loss());
        // the step moved W and b away from the identity start
        float[] init = o.initialParameters(2, new Rng(3));
        for (int edit = 0; edit < 2; edit++) {
            assertNotEquals(Arrays.toString(LoreftParameters.b(LoreftParameters.block(init, edit, 2, DIM), 2, DIM)),
                    Arrays.toString(LoreftParameters.b(LoreftParameters.block(run.w(), edit, 2, DIM), 2, DIM)));
        }
    }

    @Test
    void resumedRunIsBitIdentical() throws IOException {
        List<ConceptPair> pairs = pairs(7);
        TrainingSettings s = TrainingSettings.defaults().withEpochs(3).withBatchSize(3).withLr(0.05).withRank(1).withSeed(9);
        Path ck = dir.resolve("bipo.checkpoint.safetensors");
        Objective crashing = HiddenDirectionObjective.crashingAt(objective(SteeringMethod.BIPO, new ToyScorer()), 5);
        // the wrapper keeps the plain hooks; give it BiPO's by delegating
        Objective wrapped = delegating(objective(SteeringMethod.BIPO, new ToyScorer()), crashing);
        assertThrows(IllegalStateException.class, () -> new Trainer(wrapped, s.withCheckpointEvery(2))
                .train(pairs, new Trainer.Outputs(ck, null, null, null), false));
        Trainer.Run whole = new Trainer(objective(SteeringMethod.BIPO, new ToyScorer()), s).train(pairs, Trainer.Outputs.none(), false);
        Trainer.Run resumed = new Trainer(objective(SteeringMethod.BIPO, new ToyScorer()), s)
                .train(pairs, new Trainer.Outputs(ck, null, null, null), true);
        assertTrue(resumed.resumed());
        assertArrayEquals(whole.w(), resumed.w());
        assertEquals(whole.log().entries(), resumed.log().entries());
        // a RePS run does not resume BiPO's checkpoint
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () ->
                new Trainer(objective(SteeringMethod.REPS, new ToyScorer()), s)
                        .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
        assertTrue(e.getMessage().contains("objective_method bipo -> reps"), e.getMessage());
    }

    @Test
    void trainJobWritesAFileThatReadsBack() throws IOException {
        List<ConceptPair> pairs = pairs(6);
        for (SteeringMethod m : List.of(SteeringMethod.REPS, SteeringMethod.BIPO, SteeringMethod.LOREFT)) {
            int rank = m == SteeringMethod.LOREFT ? 2 : 1;
            TrainingSettings s = TrainingSettings.defaults().withEpochs(2).withBatchSize(3).withLr(0.05).withRank(rank).withSeed(4);
            Path out = dir.resolve(m.id() + ".safetensors");
            TrainJob.Spec spec = TrainJob.Spec.beside(dir.resolve("pairs.jsonl"), null, s, 3, "toy", m.id(), out, false);
            TrainJob.Result r = TrainJob.run(spec, pairs, "toy", objective(m, new ToyScorer()), null);
            SteeringVectorFile back = SteeringVectorFile.read(out);
            assertEquals(m, back.steeringMethod());
            assertArrayEquals(r.vector().w(), back.w());
            assertEquals(4, r.run().steps());
            if (m == SteeringMethod.LOREFT) {
                assertArrayEquals(r.run().w(), back.loreft());
                assertArrayEquals(new double[] {1, 1}, back.factorPositive());
                assertArrayEquals(new double[] {-1, -1}, back.factorNegative());
            } else {
                // w = v/|v|, factors +-|v|: factor * w gives back the trained v
                float[] v = r.run().w();
                for (int i = 0; i < DIM; i++) {
                    assertEquals(v[i], back.factorPositive()[0] * back.w()[i], 1e-6);
                    assertEquals(-v[i], back.factorNegative()[0] * back.w()[i], 1e-6);
                }
                assertEquals(null, back.loreft());
            }
            assertTrue(back.settings().containsKey(m == SteeringMethod.REPS ? "reps_factors"
                    : m == SteeringMethod.BIPO ? "bipo_beta" : "final_loss"), back.settings().toString());
            assertTrue(java.nio.file.Files.exists(dir.resolve(m.id() + ".loss.csv")));
        }
        // a loreft file without its W and b is refused, naming the file and the tensor
        Path bad = dir.resolve("bad.safetensors");
        SteeringVectorFile lo = SteeringVectorFile.read(dir.resolve("loreft.safetensors"));
        new dev.cdas.io.SafetensorsWriter().metadata(lo.metadata()).add("w", new long[] {2, DIM}, lo.w()).write(bad);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(bad));
        assertEquals(bad + ": a loreft vector needs the tensor loreft_weight", e.getMessage());
    }

    /** {@code hooks}' parameter hooks with {@code calls}' loss (a crash wrapper). */
    private static Objective delegating(Objective hooks, Objective calls) {
        return new Objective() {
            @Override
            public int dimension() {
                return hooks.dimension();
            }

            @Override
            public Result lossAndGradient(float[] w, Batch batch) {
                return calls.lossAndGradient(w, batch);
            }

            @Override
            public float[] initialParameters(int rank, Rng rng) {
                return hooks.initialParameters(rank, rng);
            }

            @Override
            public void afterStep(float[] parameters, int rank) {
                hooks.afterStep(parameters, rank);
            }

            @Override
            public java.util.Map<String, String> identity() {
                return hooks.identity();
            }
        };
    }

    @Test
    void refusesWrongShapes() {
        assertThrows(InvalidArgumentException.class, () -> objective(SteeringMethod.BIPO, new ToyScorer())
                .initialParameters(2, new Rng(1)));
        assertThrows(InvalidArgumentException.class, () -> objective(SteeringMethod.REPS, new ToyScorer())
                .loss(new float[DIM + 1], batch(pairs(1), 0)));
        assertThrows(InvalidArgumentException.class, () -> objective(SteeringMethod.LOREFT, new ToyScorer())
                .loss(new float[DIM], batch(pairs(1), 0)));
        assertThrows(InvalidArgumentException.class, () -> new LogProbObjective(SteeringMethod.CDAS, new ToyScorer(),
                CHARS, 1, new double[] {1}, 0.1));
        assertThrows(InvalidArgumentException.class, () -> new LogProbObjective(SteeringMethod.REPS, new ToyScorer(),
                CHARS, 1, new double[] {-1}, 0.1));
    }
}
