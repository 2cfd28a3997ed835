package dev.cdas.reference;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.SplittableRandom;
import java.util.function.ToDoubleFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The reference itself: every gradient of L = sum(G * h') by central differences in double, and
 * the intervention's defining properties.
 */
class DiiReferenceTest {
    private final long seed = System.nanoTime();
    private final SplittableRandom random = new SplittableRandom(seed);

    private double[] gaussian(int n) {
        double[] a = new double[n];
        for (int i = 0; i < n; i++) {
            a[i] = random.nextGaussian();
        }
        return a;
    }

    @ParameterizedTest(name = "rank {0}, with source {1}")
    @CsvSource({"1, true", "1, false", "3, true", "3, false"})
    void gradientsMatchCentralDifferences(int rank, boolean withSource) {
        int rows = 7, dim = 6, examples = 3;
        double[] h = gaussian(rows * dim);
        double[] w = gaussian(rank * dim); // not orthonormal: the formulas hold for any W
        double[] source = withSource ? gaussian(examples * dim) : null;
        double[] values = withSource ? null : gaussian(examples * rank);
        int[] index = {0, 1, 2, 0, 1, 2, 2};
        boolean[] mask = {true, true, false, true, true, true, false};
        double[] g = gaussian(rows * dim);
        ToDoubleFunction<Void> loss = unused -> {
            double[] out = DiiReference.forward(rows, dim, rank, examples, h, w, source, values, index, mask).hOut();
            double s = 0;
            for (int i = 0; i < out.length; i++) {
                s += g[i] * out[i];
            }
            return s;
        };
        DiiReference.Gradients grads = DiiReference.backward(rows, dim, rank, examples, h, w, source, values, index,
                mask, g);
        assertMatchesNumeric("dL/dh", h, grads.gradH(), loss);
        assertMatchesNumeric("dL/dW", w, grads.gradDirections(), loss);
        if (values != null) {
            assertMatchesNumeric("dL/da", values, grads.gradValues(), loss);
        }
    }

    private void assertMatchesNumeric(String what, double[] x, double[] analytic, ToDoubleFunction<Void> loss) {
        double eps = 1e-6, worst = 0, scale = 0;
        for (int i = 0; i < x.length; i++) {
            double keep = x[i];
            x[i] = keep + eps;
            double up = loss.applyAsDouble(null);
            x[i] = keep - eps;
            double down = loss.applyAsDouble(null);
            x[i] = keep;
            double numeric = (up - down) / (2 * eps);
            worst = Math.max(worst, Math.abs(numeric - analytic[i]));
            scale = Math.max(scale, Math.abs(numeric));
        }
        assertTrue(scale > 1e-3, what + ": the check needs a gradient that is not ~0 (seed " + seed + ")");
        assertTrue(worst <= 1e-7 * scale + 1e-9, what + ": max |analytic - numeric| " + worst + " vs " + scale
                + " (seed " + seed + ")");
    }

    @ParameterizedTest(name = "rank {0}")
    @CsvSource({"1", "3"})
    void clampsTheSubspaceAndLeavesItsComplement(int rank) {
        int rows = 5, dim = 8, examples = 2;
        double[] w = orthonormal(rank, dim);
        double[] h = gaussian(rows * dim);
        double[] source = gaussian(examples * dim);
        int[] index = {0, 1, 1, 0, 1};
        boolean[] mask = {true, true, true, false, true};
        DiiReference.Forward f = DiiReference.forward(rows, dim, rank, examples, h, w, source, null, index, mask);
        for (int t = 0; t < rows; t++) {
            for (int k = 0; k < rank; k++) {
                double wh = 0, whOut = 0;
                for (int j = 0; j < dim; j++) {
                    wh += w[k * dim + j] * h[t * dim + j];
                    whOut += w[k * dim + j] * f.hOut()[t * dim + j];
                }
                double expected = mask[t] ? f.clampValues()[index[t] * rank + k] : wh;
                assertEquals(expected, whOut, 1e-12, "W h' = a on intervened rows, unchanged elsewhere");
            }
            // h' - h lies in the row space of W: removing its projection leaves nothing.
            double[] delta = new double[dim];
            for (int j = 0; j < dim; j++) {
                delta[j] = f.hOut()[t * dim + j] - h[t * dim + j];
            }
            for (int k = 0; k < rank; k++) {
                double c = 0;
                for (int j = 0; j < dim; j++) {
                    c += w[k * dim + j] * delta[j];
                }
                for (int j = 0; j < dim; j++) {
                    delta[j] -= c * w[k * dim + j];
                }
            }
            for (double d : delta) {
                assertEquals(0, d, 1e-12, "orthogonal complement unchanged");
            }
        }
    }

    private double[] orthonormal(int rank, int dim) {
        double[] w = gaussian(rank * dim);
        for (int k = 0; k < rank; k++) {
            for (int p = 0; p < k; p++) {
                double dot = 0;
                for (int j = 0; j < dim; j++) {
                    dot += w[k * dim + j] * w[p * dim + j];
                }
                for (int j = 0; j < dim; j++) {
                    w[k * dim + j] -= dot * w[p * dim + j];
                }
            }
            double n = 0;
            for (int j = 0; j < dim; j++) {
                n += w[k * dim + j] * w[k * dim + j];
            }
            for (int j = 0; j < dim; j++) {
                w[k * dim + j] /= Math.sqrt(n);
            }
        }
        return w;
    }
}
