package dev.cdas.reference;

import dev.cdas.InvalidArgumentException;

/**
 * Plain double-precision DII, written from the formulas of cdas.h and nothing else; the spec the
 * native kernels are tested against.
 *
 * <pre>
 *   forward:  h'_t = h_t + W^T (a_e - W h_t)      on rows with mask != 0, e = example(t)
 *             a_e  = W s_e  (source given)  or  values_e
 *   backward: dL/dh_t = g_t - W^T W g_t            (masked rows; g_t elsewhere)
 *             dL/da_e = sum_{masked t in e} W g_t
 *             dL/dW   = sum_{masked t} (a_e - W h_t) g_t^T + (W g_t)(s_e - h_t)^T
 *                       (s_e taken as 0 when a is given: then a does not depend on W)
 * </pre>
 * Arrays are row-major: h, g [T x d], W [r x d], source [B x d], values [B x r].
 */
public final class DiiReference {
    private DiiReference() {
    }

    public record Forward(double[] hOut, double[] clampValues) {
    }

    public record Gradients(double[] gradH, double[] gradDirections, double[] gradValues) {
    }

    /** source or values is null; mask null means every row. */
    public static Forward forward(int rows, int dim, int rank, int examples, double[] h, double[] directions,
                                  double[] source, double[] values, int[] exampleIndex, boolean[] mask) {
        double[] a = clampValues(dim, rank, examples, directions, source, values);
        double[] out = h.clone();
        for (int t = 0; t < rows; t++) {
            if (!active(mask, t)) {
                continue;
            }
            int e = exampleIndex[t];
            double[] wh = project(directions, rank, dim, h, t * dim);
            for (int k = 0; k < rank; k++) {
                double delta = a[e * rank + k] - wh[k];
                for (int j = 0; j < dim; j++) {
                    out[t * dim + j] += directions[k * dim + j] * delta;
                }
            }
        }
        return new Forward(out, a);
    }

    public static Gradients backward(int rows, int dim, int rank, int examples, double[] h, double[] directions,
                                     double[] source, double[] values, int[] exampleIndex, boolean[] mask,
                                     double[] gradOut) {
        double[] a = clampValues(dim, rank, examples, directions, source, values);
        double[] gradH = gradOut.clone();
        double[] gradW = new double[rank * dim];
        double[] gradA = new double[examples * rank];
        for (int t = 0; t < rows; t++) {
            if (!active(mask, t)) {
                continue;
            }
            int e = exampleIndex[t];
            double[] wg = project(directions, rank, dim, gradOut, t * dim);
            double[] wh = project(directions, rank, dim, h, t * dim);
            for (int k = 0; k < rank; k++) {
                gradA[e * rank + k] += wg[k];
                double residual = a[e * rank + k] - wh[k];
                for (int j = 0; j < dim; j++) {
                    double w = directions[k * dim + j];
                    gradH[t * dim + j] -= w * wg[k];
                    double towardSource = (source == null ? 0 : source[e * dim + j]) - h[t * dim + j];
                    gradW[k * dim + j] += residual * gradOut[t * dim + j] + wg[k] * towardSource;
                }
            }
        }
        return new Gradients(gradH, gradW, gradA);
    }

    /** a [B x r]: W s_e with a source, else the given values. */
    public static double[] clampValues(int dim, int rank, int examples, double[] directions, double[] source,
                                       double[] values) {
        if ((source == null) == (values == null)) {
            throw new InvalidArgumentException("exactly one of source and values");
        }
        if (values != null) {
            return values.clone();
        }
        double[] a = new double[examples * rank];
        for (int e = 0; e < examples; e++) {
            double[] ws = project(directions, rank, dim, source, e * dim);
            System.arraycopy(ws, 0, a, e * rank, rank);
        }
        return a;
    }

    private static double[] project(double[] directions, int rank, int dim, double[] x, int offset) {
        double[] p = new double[rank];
        for (int k = 0; k < rank; k++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                s += directions[k * dim + j] * x[offset + j];
            }
            p[k] = s;
        }
        return p;
    }

    private static boolean active(boolean[] mask, int t) {
        return mask == null || mask[t];
    }
}
