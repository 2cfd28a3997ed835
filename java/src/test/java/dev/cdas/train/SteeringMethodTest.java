package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.InterventionMode;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import java.io.IOException;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * How a vector file is applied: diffmean vectors add {@code m · f · w}, cdas and das vectors clamp
 * {@code wᵀh} to {@code m · a}; checked on the logits of steered forwards and through
 * {@link SteeringEvaluation}, the steering path of the eval command.
 */
class SteeringMethodTest {
    static final int LAYER = 1;
    static final double M = 2;

    @Test
    void parsesTheThreeMethods() {
        assertEquals(SteeringMethod.CDAS, SteeringMethod.parse("cdas"));
        assertEquals(SteeringMethod.DAS, SteeringMethod.parse("DAS"));
        assertEquals(SteeringMethod.DIFFMEAN, SteeringMethod.parse(" diffmean "));
        assertEquals(SteeringMethod.REPS, SteeringMethod.parse("RePS"));
        assertEquals(SteeringMethod.BIPO, SteeringMethod.parse("bipo"));
        assertEquals(SteeringMethod.LOREFT, SteeringMethod.parse("loreft"));
        assertEquals("cdas, das, diffmean, prompt, reps, bipo, loreft", SteeringMethod.names());
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> SteeringMethod.parse("pca"));
        assertTrue(e.getMessage().contains("unknown method \"pca\"") && e.getMessage().contains("cdas, das, diffmean, prompt"), e.getMessage());
        assertEquals(InterventionMode.CLAMP, SteeringMethod.CDAS.mode());
        assertEquals(InterventionMode.CLAMP, SteeringMethod.DAS.mode());
        assertEquals(InterventionMode.ADD, SteeringMethod.DIFFMEAN.mode());
        assertEquals(ObjectiveLoss.JSD, SteeringMethod.CDAS.objectiveLoss());
        assertEquals(ObjectiveLoss.CROSS_ENTROPY, SteeringMethod.DAS.objectiveLoss());
        assertFalse(SteeringMethod.DIFFMEAN.optimised());
        assertThrows(IllegalStateException.class, SteeringMethod.DIFFMEAN::objectiveLoss);
        for (SteeringMethod m : List.of(SteeringMethod.REPS, SteeringMethod.BIPO, SteeringMethod.LOREFT)) {
            assertTrue(m.optimised() && m.logProbTrained(), m.id());
            assertThrows(IllegalStateException.class, m::objectiveLoss);
        }
        assertFalse(SteeringMethod.CDAS.logProbTrained() || SteeringMethod.DIFFMEAN.logProbTrained());
        // RePS and BiPO vectors are stored and applied like DiffMean's: h + f·w
        assertEquals(InterventionMode.ADD, SteeringMethod.REPS.mode());
        assertEquals(InterventionMode.ADD, SteeringMethod.BIPO.mode());
    }

    /** Prompt (no vector) and the log-likelihood methods side by side: names, value names, what each applies. */
    @Test
    void promptAndTheLogProbMethodsCoexist(@TempDir Path dir) throws IOException {
        assertEquals("cdas, das, diffmean, prompt, reps, bipo, loreft", SteeringMethod.names());
        assertEquals("s", SteeringMethod.PROMPT.valueName());
        assertEquals("s", SteeringMethod.LOREFT.valueName());
        assertEquals("f", SteeringMethod.REPS.valueName());
        assertEquals("f", SteeringMethod.BIPO.valueName());
        assertEquals("a", SteeringMethod.DAS.valueName());
        assertFalse(SteeringMethod.PROMPT.logProbTrained());
        assertFalse(SteeringMethod.LOREFT.steersByPrompt() || SteeringMethod.REPS.steersByPrompt());
        assertThrows(IllegalStateException.class, SteeringMethod.PROMPT::objectiveLoss);
        assertEquals(null, SteeringMethod.PROMPT.intervention(0, 1, new float[0], new double[] {-1}, new int[] {0}, null));
        // the log-likelihood methods leave the message alone
        assertEquals("Hi", SteeringMethod.LOREFT.message("Hi", new double[] {1, 1}, null));
        assertEquals("Hi", SteeringMethod.REPS.message("Hi", new double[] {-1}, null));
        assertEquals(InterventionMode.NULL_OUT,
                SteeringMethod.REPS.intervention(0, 1, new float[] {1, 0}, new double[] {-1}, new int[] {0}).mode());

        // a loreft file keeps its edits through a tuned factor and a write/read round trip
        int rank = 1;
        int d = 2;
        float[] p = LoreftParameters.initial(rank, d, new Rng(3));
        SteeringVectorFile v = new SteeringVectorFile(LoreftParameters.r(p, rank, d), rank, d, 0, new double[] {1},
                new double[] {-1}, "m", "c", "loreft", Map.of(), p);
        SteeringVectorFile tuned = v.withTunedFactor(true, 2, Map.of("tuned_by", "test"));
        assertArrayEquals(p, tuned.loreft());
        assertArrayEquals(new double[] {2}, tuned.factorPositive());
        Path f = dir.resolve("l.safetensors");
        tuned.write(f);
        SteeringVectorFile back = SteeringVectorFile.read(f);
        assertArrayEquals(p, back.loreft());
        assertEquals("2.0", back.settings().get("tuned_multiplier_positive"));
        assertEquals(InterventionMode.LOREFT, back.intervention(new double[] {-1}, 0).mode());
    }

    @Test
    void promptRewritesTheMessageByTheSignAndHasNoIntervention() {
        SteeringMethod p = SteeringMethod.parse("Prompt");
        assertEquals(SteeringMethod.PROMPT, p);
        assertTrue(p.steersByPrompt());
        assertFalse(SteeringMethod.DIFFMEAN.steersByPrompt());
        assertFalse(p.optimised());
        assertThrows(IllegalStateException.class, p::mode);
        assertEquals(null, p.intervention(3, 1, new float[0], new double[] {1}, new int[] {0}));
        PromptSteering t = new PromptSteering("Be about {concept}.", "Avoid {concept}; no {concept} at all.", "cats");
        assertEquals("Be about cats.\n\nHello", p.message("Hello", new double[] {0.25}, t));
        assertEquals("Avoid cats; no cats at all.\n\nHello", p.message("Hello", new double[] {-7}, t));
        assertEquals("Hello", p.message("Hello", new double[] {0}, t));
        assertThrows(InvalidArgumentException.class, () -> p.message("Hello", new double[] {Double.NaN}, t));
        // the vector methods leave the message alone
        assertEquals("Hello", SteeringMethod.CDAS.message("Hello", new double[] {3}, null));
    }

    @Test
    void aPromptFileRoundTripsWithoutATensor(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("p.safetensors");
        SteeringVectorFile.prompt(PromptSteering.defaults("food"), "demo", Map.of("pairs", "3")).write(f);
        SteeringVectorFile v = SteeringVectorFile.read(f);
        assertEquals("prompt", v.method());
        assertEquals(SteeringVectorFile.NO_LAYER, v.layer());
        assertEquals("3", v.settings().get("pairs"));
        assertEquals(PromptSteering.defaults("food"), v.promptSteering());
        // a prompt file holding a tensor, or lacking a template, is refused naming the file
        Path g = dir.resolve("g.safetensors");
        new SafetensorsWriter().metadata(v.metadata()).add("w", new long[] {2}, new float[] {1, 0}).write(g);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(g));
        assertTrue(e.getMessage().startsWith(g.toString()) && e.getMessage().contains("holds no tensor"), e.getMessage());
        Map<String, String> meta = new java.util.LinkedHashMap<>(v.metadata());
        meta.remove("prompt_suppress");
        Path h = dir.resolve("h.safetensors");
        new SafetensorsWriter().metadata(meta).write(h);
        e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(h));
        assertTrue(e.getMessage().startsWith(h.toString()) && e.getMessage().contains("prompt_suppress"), e.getMessage());
        // a tuned factor makes no sense for it
        assertThrows(InvalidArgumentException.class, () -> v.withTunedFactor(true, 2, Map.of()));
    }

    @Test
    void theInterventionBroadcastsTheValuesOverTheBatch() {
        Intervention iv = SteeringMethod.DIFFMEAN.intervention(3, 2, new float[4], new double[] {1.5, -2}, new int[] {1, 4, 0});
        assertEquals(InterventionMode.ADD, iv.mode());
        assertArrayEquals(new float[] {1.5f, -2f, 1.5f, -2f, 1.5f, -2f}, iv.values());
        assertArrayEquals(new int[] {1, 4, 0}, iv.prefixLen());
        assertEquals(3, iv.layer());
        assertEquals(InterventionMode.CLAMP, SteeringMethod.DAS.intervention(3, 2, new float[4], new double[] {1, 2}, new int[] {0}).mode());
        assertThrows(InvalidArgumentException.class,
                () -> SteeringMethod.CDAS.intervention(3, 2, new float[4], new double[] {1}, new int[] {0}));
    }

    @Test
    void repsSuppressesByNullOutAndLoreftPicksItsEditBySign() {
        float[] w = {0.6f, 0.8f};
        assertEquals(InterventionMode.ADD, SteeringMethod.REPS.intervention(3, 1, w, new double[] {2.5}, new int[] {1}).mode());
        Intervention nulled = SteeringMethod.REPS.intervention(3, 1, w, new double[] {-2.5}, new int[] {1, 2});
        assertEquals(InterventionMode.NULL_OUT, nulled.mode());
        assertArrayEquals(w, nulled.directions());
        assertArrayEquals(new int[] {1, 2}, nulled.prefixLen());
        assertEquals(InterventionMode.ADD, SteeringMethod.BIPO.intervention(3, 1, w, new double[] {-2.5}, new int[] {1}).mode());

        // two rank-1 edits in d = 2: (R, W, b) = ((1, 0), (2, 3), 4) and ((0, 1), (5, 6), 7)
        float[] loreft = {1, 0, 2, 3, 4, 0, 1, 5, 6, 7};
        Intervention inject = SteeringMethod.LOREFT.intervention(3, 1, new float[] {1, 0}, new double[] {1}, new int[] {0}, loreft);
        assertEquals(InterventionMode.LOREFT, inject.mode());
        assertArrayEquals(new float[] {1, 0}, inject.directions());
        assertArrayEquals(new float[] {2, 3}, inject.loreftWeight());
        assertArrayEquals(new float[] {4}, inject.loreftBias());
        Intervention suppress = SteeringMethod.LOREFT.intervention(3, 1, new float[] {1, 0}, new double[] {-0.5}, new int[] {0},
                loreft);
        assertArrayEquals(new float[] {0, 1}, suppress.directions());
        assertArrayEquals(new float[] {5, 6}, suppress.loreftWeight());
        assertArrayEquals(new float[] {7}, suppress.loreftBias());
        assertThrows(InvalidArgumentException.class,
                () -> SteeringMethod.LOREFT.intervention(3, 1, new float[] {1, 0}, new double[] {0}, new int[] {0}, loreft));
        assertThrows(InvalidArgumentException.class,
                () -> SteeringMethod.LOREFT.intervention(3, 1, new float[] {1, 0}, new double[] {1}, new int[] {0}));
    }

    @Test
    void anUnknownMethodInAFileIsAnErrorNamingTheFile(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("odd.safetensors");
        new SafetensorsWriter().metadata(Map.of("layer", "1", "factor_positive", "1.0", "factor_negative", "-1.0",
                "model", "x", "concept", "food", "method", "pca")).add("w", new long[] {2}, new float[] {1, 0}).write(f);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(f));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains("unknown method \"pca\""), e.getMessage());
        assertThrows(InvalidArgumentException.class, () -> new SteeringVectorFile(new float[] {1, 0}, 1, 2, 0,
                new double[] {1}, new double[] {-1}, "m", "c", "pca", Map.of()));
    }

    @Test
    void diffMeanVectorsAreAddedAndTrainedOnesClamped() throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("gemma2"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            DiffMean.Result r = new DiffMean(model, folder.prompts(), LAYER, 6).compute(DiffMeanTest.PAIRS, null);
            int d = model.config().hiddenSize();
            float[] w = r.direction();
            SteeringVectorFile diffmean = new SteeringVectorFile(w, 1, d, LAYER, new double[] {r.factorPositive()},
                    new double[] {r.factorNegative()}, "gemma2", "cats", "diffmean", Map.of());
            SteeringVectorFile cdas = new SteeringVectorFile(w, 1, d, LAYER, new double[] {r.factorPositive()},
                    new double[] {r.factorNegative()}, "gemma2", "cats", "cdas", Map.of());
            var prompt = folder.prompts().encodePrompt("Tell me something.");
            int[] ids = prompt.ids();
            int[] prefix = {prompt.prefixLen()};
            float amount = (float) (M * r.factorPositive());
            assertArrayEquals(new double[] {M * r.factorPositive()}, diffmean.values(true, M));
            assertArrayEquals(new double[] {M * r.factorNegative()}, diffmean.values(false, M));

            float[] steered = logits(model, ids, diffmean.intervention(diffmean.values(true, M), prefix));
            float[] added = logits(model, ids, Intervention.add(LAYER, 1, w, new float[] {amount}, prefix));
            float[] clamped = logits(model, ids, Intervention.clamp(LAYER, 1, w, new float[] {amount}, prefix));
            assertArrayEquals(added, steered, 0f, "a diffmean vector is added");
            assertTrue(maxDiff(added, clamped) > 1e-3, "adding and clamping differ: " + maxDiff(added, clamped));
            assertArrayEquals(clamped, logits(model, ids, cdas.intervention(cdas.values(true, M), prefix)), 0f,
                    "a cdas vector is clamped");

            // the added amount moves h_L by exactly m·f+·w from prefix_len on
            float[] h0 = model.forward(TokenBatch.single(ids), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            float[] h1 = model.forward(TokenBatch.single(ids), diffmean.intervention(diffmean.values(true, M), prefix), LAYER,
                    EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (int t = 0; t < ids.length; t++) {
                for (int i = 0; i < d; i++) {
                    double expected = h0[t * d + i] + (t >= prefix[0] ? amount * w[i] : 0);
                    assertEquals(expected, h1[t * d + i], 1e-5 * (1 + Math.abs(expected)), "t " + t + " i " + i);
                }
            }

            // the eval command's path: SteeringEvaluation built from the file
            List<ConceptPair> pairs = DiffMeanTest.PAIRS.subList(0, 2);
            SteeringEvaluation eval = new SteeringEvaluation(model, folder.prompts(), diffmean, M, 6);
            assertEquals(SteeringMethod.DIFFMEAN, eval.method());
            SteeringEvaluation.LogLikelihood ll = eval.logLikelihood(pairs, true);
            double sumAdd = 0;
            double sumClamp = 0;
            for (ConceptPair p : pairs) {
                var e = eval.encode(new DirectionExample(p.negativeInput(), p.positiveInput(), p.positiveOutput(), p.origin()));
                sumAdd += SteeringEvaluation.logLikelihood(model, e,
                        Intervention.add(LAYER, 1, w, new float[] {amount}, new int[] {e.basePrefixLen()}));
                sumClamp += SteeringEvaluation.logLikelihood(model, e,
                        Intervention.clamp(LAYER, 1, w, new float[] {amount}, new int[] {e.basePrefixLen()}));
            }
            assertEquals(sumAdd / ll.tokens(), ll.steered(), 1e-12);
            assertTrue(Math.abs(sumClamp / ll.tokens() - ll.steered()) > 1e-4, "not the clamp");
            SteeringEvaluation evalCdas = new SteeringEvaluation(model, folder.prompts(), cdas, M, 6);
            assertEquals(sumClamp / ll.tokens(), evalCdas.logLikelihood(pairs, true).steered(), 1e-12);
        }
    }

    static float[] logits(Model model, int[] ids, Intervention iv) {
        return model.forward(TokenBatch.single(ids), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
    }

    static double maxDiff(float[] a, float[] b) {
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }
}
