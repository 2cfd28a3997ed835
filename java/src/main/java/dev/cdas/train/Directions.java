package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * The learned directions: {@code r} rows of length {@code d} in one row-major array ({@code r = 1}
 * is CDAS's vector {@code w}).
 */
public final class Directions {
    /** ε of the re-normalisation {@code w ← w / (‖w‖ + ε)}. */
    public static final double RENORM_EPS = 1e-8;

    private Directions() {}

    /**
     * Seeded random initialisation: Gaussian rows, orthonormalised (Gram–Schmidt) when
     * {@code rank > 1} so that the subspace really has rank r, each row unit norm.
     *
     * @param rank the number of rows r, 1 to {@code dim}
     * @param dim  the width d of each row
     * @param rng  the generator the Gaussians are drawn from
     * @return W, rank x dim row-major
     * @throws InvalidArgumentException when the rank is not in 1..dim
     */
    public static float[] randomUnit(int rank, int dim, Rng rng) {
        if (rank < 1 || dim < 1 || rank > dim) {
            throw new InvalidArgumentException("need 1 <= rank <= dim, got rank " + rank + ", dim " + dim);
        }
        double[][] rows = new double[rank][dim];
        for (int r = 0; r < rank; r++) {
            while (true) {
                for (int i = 0; i < dim; i++) {
                    rows[r][i] = rng.nextGaussian();
                }
                double n = removeEarlierRows(rows, r);
                if (n > 1e-6) {
                    for (int i = 0; i < dim; i++) {
                        rows[r][i] /= n;
                    }
                    break;
                }
            }
        }
        float[] w = new float[rank * dim];
        for (int r = 0; r < rank; r++) {
            for (int i = 0; i < dim; i++) {
                w[r * dim + i] = (float) rows[r][i];
            }
        }
        return w;
    }

    /**
     * One step of modified Gram–Schmidt: removes from {@code rows[k]}, in place, its components
     * along the (orthonormal) rows before it, in row order.
     *
     * @return the norm of what is left of {@code rows[k]}
     */
    static double removeEarlierRows(double[][] rows, int k) {
        double[] row = rows[k];
        for (int q = 0; q < k; q++) {
            double dot = 0;
            for (int i = 0; i < row.length; i++) {
                dot += row[i] * rows[q][i];
            }
            for (int i = 0; i < row.length; i++) {
                row[i] -= dot * rows[q][i];
            }
        }
        double n = 0;
        for (double x : row) {
            n += x * x;
        }
        return Math.sqrt(n);
    }

    /**
     * {@code w_r ← w_r / (‖w_r‖ + ε)} for each row, in place (docs/method.md: after every step; the
     * gradient itself is not projected).
     *
     * @param w    W, rank x d row-major
     * @param rank the number of rows
     * @throws InvalidArgumentException when {@code w} does not split into {@code rank} rows
     */
    public static void renormalizeRows(float[] w, int rank) {
        if (rank < 1 || w.length % rank != 0) {
            throw new InvalidArgumentException(w.length + " values do not split into " + rank + " rows");
        }
        int dim = w.length / rank;
        for (int r = 0; r < rank; r++) {
            double n = 0;
            for (int i = r * dim; i < (r + 1) * dim; i++) {
                n += (double) w[i] * w[i];
            }
            double scale = 1.0 / (Math.sqrt(n) + RENORM_EPS);
            for (int i = r * dim; i < (r + 1) * dim; i++) {
                w[i] = (float) (w[i] * scale);
            }
        }
    }
}
