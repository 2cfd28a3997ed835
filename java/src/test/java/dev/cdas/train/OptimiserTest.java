package dev.cdas.train;

import dev.cdas.NonFiniteException;
import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class OptimiserTest {

    @Test
    void adamwFirstStepByHand() {
        // Step 1: m̂ = g, v̂ = g², so each coordinate moves by lr·g/(|g| + eps); g = 0 stays.
        float[] p = {1.0f, -2.0f, 0.25f};
        AdamW adam = new AdamW(3);
        adam.step(p, new float[] {0.5f, -0.1f, 0.0f}, 0.1);
        assertEquals(1.0 - 0.1 * 0.5 / (0.5 + 1e-8), p[0], 1e-7);
        assertEquals(-2.0 + 0.1 * 0.1 / (0.1 + 1e-8), p[1], 1e-7);
        assertEquals(0.25f, p[2]);
        // m = (1 − β₁)g, v = (1 − β₂)g²
        assertArrayEquals(new float[] {0.05f, -0.01f, 0f}, adam.firstMoment(), 1e-9f);
        assertArrayEquals(new float[] {0.00025f, 0.00001f, 0f}, adam.secondMoment(), 1e-12f);
    }

    @Test
    void adamwMatchesTorchOverThreeSteps() {
        // torch.optim.AdamW(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd), lr changed per step.
        double[][] grads = {{0.5, -0.1, 0.0}, {0.2, 0.3, -1e-3}, {-0.4, 0.3, 2.0}};
        double[] lrs = {0.1, 0.05, 0.02};
        double[][] torchNoDecay = {
            {0.9000000357627869, -1.899999976158142, 0.25},
            {0.8550712466239929, -1.924709439277649, 0.2872063219547272},
            {0.8515456914901733, -1.9390465021133423, 0.27443578839302063}};
        double[][] torchDecay = {
            {0.8990000486373901, -1.8980000019073486, 0.24975000321865082},
            {0.8536217212677002, -1.9217604398727417, 0.28683143854141235},
            {0.8499254584312439, -1.9357131719589233, 0.2740035355091095}};
        for (double wd : new double[] {0.0, 0.01}) {
            float[] p = {1.0f, -2.0f, 0.25f};
            AdamW adam = new AdamW(3, 0.9, 0.999, 1e-8, wd);
            for (int s = 0; s < 3; s++) {
                float[] g = new float[3];
                for (int i = 0; i < 3; i++) {
                    g[i] = (float) grads[s][i];
                }
                adam.step(p, g, lrs[s]);
                double[] expected = wd == 0 ? torchNoDecay[s] : torchDecay[s];
                for (int i = 0; i < 3; i++) {
                    assertEquals(expected[i], p[i], 2e-7, "wd " + wd + " step " + (s + 1) + " [" + i + "]");
                }
            }
            assertEquals(3, adam.stepCount());
            assertArrayEquals(new float[] {0.018500003963708878f, 0.048900000751018524f, 0.1999099999666214f},
                    adam.firstMoment(), 1e-8f);
            assertArrayEquals(new float[] {0.0004494602617342025f, 0.0001898900227388367f, 0.00400000112131238f},
                    adam.secondMoment(), 1e-10f);
        }
    }

    @Test
    void adamwRestoreContinuesIdentically() {
        float[] a = {0.3f, -0.7f};
        AdamW one = new AdamW(2);
        one.step(a, new float[] {1f, 2f}, 0.1);
        AdamW two = new AdamW(2);
        two.restore(one.firstMoment(), one.secondMoment(), one.stepCount());
        float[] b = a.clone();
        one.step(a, new float[] {-0.5f, 0.25f}, 0.05);
        two.step(b, new float[] {-0.5f, 0.25f}, 0.05);
        assertArrayEquals(a, b);
        assertThrows(InvalidArgumentException.class, () -> new AdamW(2).step(new float[2], new float[3], 0.1));
        assertThrows(InvalidArgumentException.class, () -> new AdamW(2, 1.0, 0.999, 1e-8, 0));
    }

    @Test
    void linearDecayWithoutWarmup() {
        LinearDecaySchedule s = new LinearDecaySchedule(0.04, 10);
        assertEquals(0.04, s.lr(0), 0);
        assertEquals(0.036, s.lr(1), 1e-15);
        assertEquals(0.02, s.lr(5), 1e-15);
        assertEquals(0.004, s.lr(9), 1e-15);
        assertEquals(0.0, s.lr(10), 0);
        assertEquals(0.0, s.lr(12), 0);
        for (int k = 1; k < 10; k++) {
            assertTrue(s.lr(k) < s.lr(k - 1));
        }
        assertThrows(InvalidArgumentException.class, () -> new LinearDecaySchedule(0.04, 0));
        assertThrows(InvalidArgumentException.class, () -> new LinearDecaySchedule(-1, 5));
        assertThrows(InvalidArgumentException.class, () -> s.lr(-1));
    }

    @Test
    void clippingMatchesTorch() {
        float[] g = {3f, 4f, 0f};
        assertEquals(5.0, GradientClipping.clipGlobalNorm(g, 1.0), 0);
        // torch.nn.utils.clip_grad_norm_([p], 1.0) with grad (3, 4, 0)
        assertArrayEquals(new float[] {0.5999999046325684f, 0.7999998331069946f, 0f}, g, 1e-7f);
        float[] small = {0.3f, -0.4f};
        assertEquals(0.5, GradientClipping.clipGlobalNorm(small, 1.0), 1e-7);
        assertArrayEquals(new float[] {0.3f, -0.4f}, small);
        assertThrows(NonFiniteException.class, () -> GradientClipping.clipGlobalNorm(new float[] {Float.NaN}, 1.0));
        assertThrows(InvalidArgumentException.class, () -> GradientClipping.clipGlobalNorm(small, 0));
    }

    @Test
    void renormalisationMakesEachRowUnit() {
        float[] w = {3f, 4f, 0f, 0f, 0f, 0.5f};
        Directions.renormalizeRows(w, 2);
        assertArrayEquals(new float[] {0.6f, 0.8f, 0f, 0f, 0f, 1f}, w, 1e-7f);
        float[] zero = {0f, 0f};
        Directions.renormalizeRows(zero, 1); // ε keeps it finite
        assertArrayEquals(new float[] {0f, 0f}, zero);
        assertThrows(InvalidArgumentException.class, () -> Directions.renormalizeRows(new float[5], 2));
    }

    @Test
    void randomInitialisationIsSeededUnitAndOrthonormal() {
        float[] a = Directions.randomUnit(3, 50, new Rng(7));
        float[] b = Directions.randomUnit(3, 50, new Rng(7));
        float[] c = Directions.randomUnit(3, 50, new Rng(8));
        assertArrayEquals(a, b);
        assertNotEquals(a[0], c[0]);
        for (int r = 0; r < 3; r++) {
            for (int q = 0; q < 3; q++) {
                double dot = 0;
                for (int i = 0; i < 50; i++) {
                    dot += (double) a[r * 50 + i] * a[q * 50 + i];
                }
                assertEquals(r == q ? 1.0 : 0.0, dot, 1e-6);
            }
        }
    }

    @Test
    void rngStateRoundTripsAndNextIntIsInRange() {
        Rng r = new Rng(123);
        r.nextLong();
        Rng copy = Rng.fromState(r.state());
        for (int i = 0; i < 100; i++) {
            assertEquals(r.nextLong(), copy.nextLong());
        }
        int[] counts = new int[7];
        for (int i = 0; i < 70_000; i++) {
            counts[r.nextInt(7)]++;
        }
        for (int c : counts) {
            assertTrue(Math.abs(c - 10_000) < 500, "counts " + java.util.Arrays.toString(counts));
        }
    }

    @Test
    void presetsCarryTheReferenceSettings() {
        TrainingSettings g2 = TrainingPreset.GEMMA2_2B.settings();
        assertEquals(8, g2.batchSize());
        assertEquals(18, g2.epochs());
        assertEquals(0.04, g2.lr());
        assertEquals(0.0, g2.weightDecay());
        assertEquals(1.0, g2.maxGradNorm());
        assertEquals(128, g2.maxResponseTokens());
        assertEquals(0.06, TrainingPreset.byId("gemma-2-9b").lr());
        assertEquals(6, TrainingPreset.GEMMA2_9B.batchSize());
        TrainingSettings llama = TrainingPreset.byId("llama-3.1-8b-refusal").settings();
        assertEquals(16, llama.batchSize());
        assertEquals(50, llama.epochs());
        assertEquals(0.08, llama.lr());
        assertEquals(TrainingSettings.defaults(), g2);
        assertEquals(3 * 4, g2.withEpochs(3).totalSteps(25)); // ceil(25 / 8) = 4 per epoch
        assertThrows(InvalidArgumentException.class, () -> TrainingPreset.byId("gpt-5"));
        assertThrows(InvalidArgumentException.class, () -> g2.withBatchSize(0));
    }
}
