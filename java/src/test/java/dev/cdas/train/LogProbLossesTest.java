package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import java.util.Random;
import java.util.function.ToDoubleFunction;
import org.junit.jupiter.api.Test;

class LogProbLossesTest {

    /** Central differences of {@code f} at {@code x}, coordinate by coordinate, against {@code grad}. */
    private static void assertGradient(ToDoubleFunction<double[]> f, double[] x, double[] grad) {
        double h = 1e-5;
        double largest = 0;
        for (int i = 0; i < x.length; i++) {
            double[] p = x.clone();
            double[] m = x.clone();
            p[i] += h;
            m[i] -= h;
            double numeric = (f.applyAsDouble(p) - f.applyAsDouble(m)) / (2 * h);
            assertEquals(numeric, grad[i], 1e-6 + 1e-5 * Math.abs(numeric), "coordinate " + i);
            largest = Math.max(largest, Math.abs(numeric));
        }
        assertTrue(largest > 1e-3, "the gradient vanishes here (" + largest + "); the check would prove nothing");
    }

    private static double[] logProbs(Random r, int n) {
        double[] v = new double[n];
        for (int i = 0; i < n; i++) {
            v[i] = -0.5 - 20 * r.nextDouble();
        }
        return v;
    }

    private static int[] lengths(Random r, int n) {
        int[] v = new int[n];
        for (int i = 0; i < n; i++) {
            v[i] = 1 + r.nextInt(12);
        }
        return v;
    }

    private static double logSigmoid(double x) {
        return -Math.log(1 + Math.exp(-x));
    }

    @Test
    void repsMatchesItsFormulaAndFiniteDifferences() {
        Random r = new Random(11);
        for (int trial = 0; trial < 5; trial++) {
            int b = 1 + r.nextInt(4);
            double[] steered = logProbs(r, 4 * b);
            double[] reference = logProbs(r, 4 * b);
            int[] nc = lengths(r, b);
            int[] ny = lengths(r, b);
            LogProbLosses.Value v = LogProbLosses.reps(steered, reference, nc, ny);
            // the formula written out plainly
            double expected = 0;
            for (int i = 0; i < b; i++) {
                double bp = Math.max(reference[4 * i + 1] / ny[i] - reference[4 * i] / nc[i], 1);
                double bm = Math.max(reference[4 * i + 3] / nc[i] - reference[4 * i + 2] / ny[i], 1);
                double dp = bp * steered[4 * i] / nc[i] - steered[4 * i + 1] / ny[i];
                double dm = bm * steered[4 * i + 2] / ny[i] - steered[4 * i + 3] / nc[i];
                expected += -logSigmoid(dp) - logSigmoid(dm);
            }
            assertEquals(expected / b, v.loss(), 1e-12 * Math.max(1, Math.abs(expected)));
            assertGradient(x -> LogProbLosses.reps(x, reference, nc, ny).loss(), steered, v.gradient());
        }
    }

    @Test
    void repsBetaUpWeightsAnUnlikelyConceptResponse() {
        // reference: y is 3 nats/token likelier than yc after x, so beta+ = 3; after xc yc is not likelier, so beta- = 1
        double[] reference = {-10, -4, -6, -8};
        double[] steered = {-2, -2, -2, -2};
        LogProbLosses.Value v = LogProbLosses.reps(steered, reference, new int[] {2}, new int[] {2});
        double deltaPlus = 3 * -1.0 - -1.0;
        double deltaMinus = 1 * -1.0 - -1.0;
        assertEquals(-logSigmoid(deltaPlus) - logSigmoid(deltaMinus), v.loss(), 1e-12);
    }

    @Test
    void bipoMatchesDpoAndFiniteDifferences() {
        Random r = new Random(12);
        for (int trial = 0; trial < 5; trial++) {
            int b = 1 + r.nextInt(4);
            double[] steered = logProbs(r, 2 * b);
            double[] reference = logProbs(r, 2 * b);
            double beta = 0.05 + r.nextDouble();
            LogProbLosses.Value v = LogProbLosses.bipo(steered, reference, beta);
            double expected = 0;
            for (int i = 0; i < b; i++) {
                expected += -logSigmoid(beta * (steered[2 * i] - reference[2 * i] - steered[2 * i + 1] + reference[2 * i + 1]));
            }
            assertEquals(expected / b, v.loss(), 1e-12 * Math.max(1, expected));
            assertGradient(x -> LogProbLosses.bipo(x, reference, beta).loss(), steered, v.gradient());
        }
        // at the reference the margin is 0: loss log 2
        assertEquals(Math.log(2), LogProbLosses.bipo(new double[] {-3, -5}, new double[] {-3, -5}, 0.1).loss(), 1e-15);
    }

    @Test
    void crossEntropyIsTheTokenMean() {
        Random r = new Random(13);
        double[] lp = logProbs(r, 3);
        int[] n = {2, 5, 1};
        LogProbLosses.Value v = LogProbLosses.crossEntropy(lp, n);
        assertEquals(-(lp[0] + lp[1] + lp[2]) / 8, v.loss(), 1e-12);
        assertGradient(x -> LogProbLosses.crossEntropy(x, n).loss(), lp, v.gradient());
    }

    @Test
    void extremeMarginsStayFinite() {
        LogProbLosses.Value v = LogProbLosses.bipo(new double[] {-1e4, 0}, new double[] {0, 0}, 1);
        assertEquals(1e4, v.loss(), 1e-6);
        assertEquals(-1.0, v.gradient()[0], 1e-12);
        assertEquals(0.0, LogProbLosses.bipo(new double[] {0, -1e4}, new double[] {0, 0}, 1).loss(), 1e-12);
    }

    @Test
    void refusesMalformedInput() {
        assertThrows(InvalidArgumentException.class, () -> LogProbLosses.reps(new double[4], new double[4], new int[] {0}, new int[] {1}));
        assertThrows(InvalidArgumentException.class, () -> LogProbLosses.reps(new double[3], new double[4], new int[] {1}, new int[] {1}));
        assertThrows(InvalidArgumentException.class, () -> LogProbLosses.bipo(new double[2], new double[2], 0));
        assertThrows(InvalidArgumentException.class, () -> LogProbLosses.bipo(new double[3], new double[3], 1));
        assertThrows(InvalidArgumentException.class, () -> LogProbLosses.crossEntropy(new double[2], new int[] {1}));
    }
}
