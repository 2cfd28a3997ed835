package dev.cdas.reference;

/**
 * Plain double-precision LM head + soft-cap + Jensen-Shannon divergence, written from the
 * formulas of cdas.h and docs/method.md section 2; the spec the native kernel is tested against.
 *
 * <pre>
 *   u = x W^T,  z = c tanh(u / c) if c > 0 else u
 *   Q = softmax(z_student), P = softmax(z_teacher), M = (P + Q) / 2, r = log Q - log M
 *   JSD_t = KL(P||M)/2 + KL(Q||M)/2;  loss = mean of JSD_t over rows with mask (0 without rows)
 *   dJSD_t/dz_s = Q (r - sum_j Q_j r_j) / 2,  times (1 - tanh^2(u / c)) under soft-cap
 *   gradStudent_t = gradScale / rowsCounted * (dJSD_t/dz_s) W
 * </pre>
 */
public final class JsdReference {
    private JsdReference() {
    }

    public record Result(double loss, double[] rowLoss, double[] gradStudent) {
    }

    public static Result compute(int rows, int dim, int vocab, double[] xStudent, double[] xTeacher, double[] head,
                                 double softcap, boolean[] mask, double gradScale) {
        int counted = 0;
        for (int t = 0; t < rows; t++) {
            if (mask == null || mask[t]) {
                counted++;
            }
        }
        double[] rowLoss = new double[rows];
        double[] grad = new double[rows * dim];
        double sum = 0;
        for (int t = 0; t < rows; t++) {
            if (mask != null && !mask[t]) {
                continue;
            }
            double[] uStudent = logits(head, vocab, dim, xStudent, t * dim);
            double[] zStudent = softcap(uStudent, softcap);
            double[] zTeacher = softcap(logits(head, vocab, dim, xTeacher, t * dim), softcap);
            double[] dz = new double[vocab];
            rowLoss[t] = jsdAndGradient(zTeacher, zStudent, dz);
            sum += rowLoss[t];
            double scale = gradScale / counted;
            for (int v = 0; v < vocab; v++) {
                double g = dz[v] * scale;
                if (softcap > 0) {
                    double th = Math.tanh(uStudent[v] / softcap);
                    g *= 1 - th * th;
                }
                for (int j = 0; j < dim; j++) {
                    grad[t * dim + j] += g * head[v * dim + j];
                }
            }
        }
        return new Result(counted == 0 ? 0 : sum / counted, rowLoss, grad);
    }

    /** JSD(P || Q) of two logit rows (teacher P, student Q), natural log. */
    public static double jsd(double[] zTeacher, double[] zStudent) {
        return jsdAndGradient(zTeacher, zStudent, new double[zStudent.length]);
    }

    /** Returns JSD(P || Q) and writes dJSD/dz_student into dz. */
    static double jsdAndGradient(double[] zTeacher, double[] zStudent, double[] dz) {
        int n = zStudent.length;
        double[] logP = logSoftmax(zTeacher);
        double[] logQ = logSoftmax(zStudent);
        double jsd = 0;
        double qr = 0;
        double[] r = new double[n];
        for (int v = 0; v < n; v++) {
            double hi = Math.max(logP[v], logQ[v]);
            double logM = hi + Math.log(0.5 * (Math.exp(logP[v] - hi) + Math.exp(logQ[v] - hi)));
            double p = Math.exp(logP[v]);
            double q = Math.exp(logQ[v]);
            r[v] = logQ[v] - logM;
            // p log(p/m) -> 0 as p -> 0; skipping exact zeros avoids 0 * -inf.
            if (p > 0) {
                jsd += 0.5 * p * (logP[v] - logM);
            }
            if (q > 0) {
                jsd += 0.5 * q * r[v];
                qr += q * r[v];
            }
        }
        for (int v = 0; v < n; v++) {
            double q = Math.exp(logQ[v]);
            dz[v] = q > 0 ? 0.5 * q * (r[v] - qr) : 0;
        }
        return jsd;
    }

    public static double[] logSoftmax(double[] z) {
        double max = Double.NEGATIVE_INFINITY;
        for (double v : z) {
            max = Math.max(max, v);
        }
        double s = 0;
        for (double v : z) {
            s += Math.exp(v - max);
        }
        double lse = max + Math.log(s);
        double[] out = new double[z.length];
        for (int i = 0; i < z.length; i++) {
            out[i] = z[i] - lse;
        }
        return out;
    }

    private static double[] logits(double[] head, int vocab, int dim, double[] x, int offset) {
        double[] z = new double[vocab];
        for (int v = 0; v < vocab; v++) {
            double s = 0;
            for (int j = 0; j < dim; j++) {
                s += head[v * dim + j] * x[offset + j];
            }
            z[v] = s;
        }
        return z;
    }

    private static double[] softcap(double[] u, double cap) {
        if (cap <= 0) {
            return u;
        }
        double[] z = new double[u.length];
        for (int i = 0; i < u.length; i++) {
            z[i] = cap * Math.tanh(u[i] / cap);
        }
        return z;
    }
}
