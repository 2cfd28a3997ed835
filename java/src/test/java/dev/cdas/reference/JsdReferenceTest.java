package dev.cdas.reference;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reference itself: gradients by central differences in double, and the JSD properties. */
class JsdReferenceTest {
    private final long seed = System.nanoTime();
    private final SplittableRandom random = new SplittableRandom(seed);

    private double[] gaussian(int n, double scale) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextGaussian() * scale;
        }
        return a;
    }

    @ParameterizedTest(name = "softcap {0}, gradScale {1}, masked {2}")
    @CsvSource({"0, 1, false", "0, 0.37, true", "1.5, 1, false", "1.5, -2.5, true"})
    void gradientMatchesCentralDifferences(double softcap, double gradScale, boolean masked) {
        int rows = 4, dim = 5, vocab = 9;
        double[] xs = gaussian(rows * dim, 1);
        double[] xt = gaussian(rows * dim, 1);
        double[] head = gaussian(vocab * dim, 1);
        boolean[] mask = masked ? new boolean[] {true, false, true, true} : null;
        JsdReference.Result r = JsdReference.compute(rows, dim, vocab, xs, xt, head, softcap, mask, gradScale);
        double eps = 1e-6;
        double worst = 0, scale = 0;
        for (int i = 0; i < xs.length; i++) {
            double keep = xs[i];
            xs[i] = keep + eps;
            double up = JsdReference.compute(rows, dim, vocab, xs, xt, head, softcap, mask, gradScale).loss();
            xs[i] = keep - eps;
            double down = JsdReference.compute(rows, dim, vocab, xs, xt, head, softcap, mask, gradScale).loss();
            xs[i] = keep;
            double numeric = gradScale * (up - down) / (2 * eps);
            worst = Math.max(worst, Math.abs(numeric - r.gradStudent()[i]));
            scale = Math.max(scale, Math.abs(numeric));
        }
        assertTrue(scale > 1e-4, "the check needs a gradient that is not ~0 (seed " + seed + ")");
        assertTrue(worst <= 1e-6 * scale + 1e-9,
                "max |analytic - numeric| " + worst + " vs max |numeric| " + scale + " (seed " + seed + ")");
        if (masked) {
            for (int j = 0; j < dim; j++) {
                assertEquals(0, r.gradStudent()[dim + j], "masked row has no gradient");
            }
            assertEquals(0, r.rowLoss()[1]);
        }
    }

    @Test
    void jsdOfIdenticalDistributionsIsZero() {
        double[] z = gaussian(50, 3);
        assertEquals(0, JsdReference.jsd(z, z), 1e-15);
    }

    @Test
    void jsdIsSymmetricAndBetweenZeroAndLn2() {
        for (int trial = 0; trial < 200; trial++) {
            double spread = trial < 100 ? 1 : 60; // near-disjoint distributions too
            double[] p = gaussian(31, spread);
            double[] q = gaussian(31, spread);
            double pq = JsdReference.jsd(p, q);
            assertEquals(pq, JsdReference.jsd(q, p), 1e-12, "JSD symmetry (seed " + seed + ")");
            assertTrue(pq >= 0 && pq <= Math.log(2) + 1e-12, "JSD " + pq + " outside [0, ln 2] (seed " + seed + ")");
        }
    }

    @Test
    void disjointDistributionsReachLn2() {
        double[] p = {1000, 0, 0};
        double[] q = {0, 0, 1000};
        assertEquals(Math.log(2), JsdReference.jsd(p, q), 1e-9);
    }

    @Test
    void lossIsTheMeanOverUnmaskedRowsAndZeroWithoutRows() {
        int rows = 3, dim = 4, vocab = 6;
        double[] xs = gaussian(rows * dim, 1);
        double[] xt = gaussian(rows * dim, 1);
        double[] head = gaussian(vocab * dim, 1);
        boolean[] mask = {true, false, true};
        JsdReference.Result r = JsdReference.compute(rows, dim, vocab, xs, xt, head, 0, mask, 1);
        assertEquals((r.rowLoss()[0] + r.rowLoss()[2]) / 2, r.loss(), 1e-15);
        JsdReference.Result none = JsdReference.compute(rows, dim, vocab, xs, xt, head, 0,
                new boolean[rows], 1);
        assertEquals(0, none.loss());
        for (double g : none.gradStudent()) {
            assertEquals(0, g);
        }
    }
}
