package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import java.util.Arrays;

/**
 * LoReFT's parameters in one flat array. One edit {@code h + Rᵀ(W h + b − R h)} (Wu et al. 2024,
 * ReFT; R's rows orthonormal) is a block laid out as the runtime's gradient is: {@code R} [r × d]
 * row-major, then {@code W} [r × d], then {@code b} [r]. A trained LoReFT holds two blocks, the
 * injecting edit then the suppressing one (LoReFT is one-directional; docs/method.md, "Baselines").
 */
public final class LoreftParameters {
    private LoreftParameters() {}

    /**
     * Floats of one edit: {@code 2 r d + r}.
     *
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     * @return the float count
     */
    public static int blockSize(int rank, int dim) {
        return 2 * rank * dim + rank;
    }

    /**
     * Floats of the two edits (inject, suppress).
     *
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     * @return the float count
     */
    public static int count(int rank, int dim) {
        return 2 * blockSize(rank, dim);
    }

    /**
     * The rank r of the two edits in {@code length} parameters of width {@code dim}, or −1 if none fits.
     *
     * @param length the number of parameters
     * @param dim d, the width of the residual stream
     * @return r, or −1
     */
    public static int rankOf(int length, int dim) {
        if (length % (2 * (2 * dim + 1)) != 0) {
            return -1;
        }
        int r = length / (2 * (2 * dim + 1));
        return r >= 1 ? r : -1;
    }

    /**
     * Edit {@code k} (0 inject, 1 suppress) of the two.
     *
     * @param p the parameters of both edits (or of one, for the accessors)
     * @param k 0 for the injecting edit, 1 for the suppressing one
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     * @return a copy of the edit
     */
    public static float[] block(float[] p, int k, int rank, int dim) {
        int n = blockSize(rank, dim);
        return Arrays.copyOfRange(p, k * n, (k + 1) * n);
    }

    /**
     * R of the edit at the start of {@code p}.
     *
     * @param p an edit (or both; the first is read)
     * @param rank the rank r
     * @param dim d
     * @return a copy of R, r x d
     */
    public static float[] r(float[] p, int rank, int dim) {
        return Arrays.copyOfRange(p, 0, rank * dim);
    }

    /**
     * W of the edit at the start of {@code p}.
     *
     * @param p an edit (or both; the first is read)
     * @param rank the rank r
     * @param dim d
     * @return a copy of W, r x d
     */
    public static float[] w(float[] p, int rank, int dim) {
        return Arrays.copyOfRange(p, rank * dim, 2 * rank * dim);
    }

    /**
     * b of the edit at the start of {@code p}.
     *
     * @param p an edit (or both; the first is read)
     * @param rank the rank r
     * @param dim d
     * @return a copy of b, r floats
     */
    public static float[] b(float[] p, int rank, int dim) {
        return Arrays.copyOfRange(p, 2 * rank * dim, 2 * rank * dim + rank);
    }

    /**
     * R, W, b joined in the flat layout.
     *
     * @param r R, r x d
     * @param w W, r x d
     * @param b b, r floats
     * @return the edit in the flat layout
     */
    public static float[] join(float[] r, float[] w, float[] b) {
        int rank = b.length;
        if (rank < 1 || r.length != w.length || r.length % rank != 0) {
            throw new InvalidArgumentException("LoReFT needs R and W of equal shape [r x d] and b of r values; got "
                    + r.length + ", " + w.length + " and " + b.length + " values");
        }
        float[] p = Arrays.copyOf(r, 2 * r.length + rank);
        System.arraycopy(w, 0, p, r.length, w.length);
        System.arraycopy(b, 0, p, 2 * r.length, rank);
        return p;
    }

    /**
     * Both edits joined: (R⁺, W⁺, b⁺) then (R⁻, W⁻, b⁻).
     *
     * @param r1 the injecting edit's R
     * @param w1 its W
     * @param b1 its b
     * @param r2 the suppressing edit's R
     * @param w2 its W
     * @param b2 its b
     * @return both edits in the flat layout
     */
    public static float[] join(float[] r1, float[] w1, float[] b1, float[] r2, float[] w2, float[] b2) {
        float[] a = join(r1, w1, b1);
        float[] b = join(r2, w2, b2);
        if (a.length != b.length) {
            throw new InvalidArgumentException("the two LoReFT edits differ in shape");
        }
        float[] p = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, p, a.length, b.length);
        return p;
    }

    /**
     * The start of training, both edits: R random with orthonormal rows (seeded; the injecting
     * edit's drawn first), W = R and b = 0, so that {@code W h + b − R h = 0} and each edit starts as
     * the identity (the unsteered model).
     *
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     * @param rng the run's random stream
     * @return the initial parameters of both edits
     */
    public static float[] initial(int rank, int dim, Rng rng) {
        float[] r1 = Directions.randomUnit(rank, dim, rng);
        float[] r2 = Directions.randomUnit(rank, dim, rng);
        return join(r1, r1.clone(), new float[rank], r2, r2.clone(), new float[rank]);
    }

    /**
     * {@link #orthonormalizeR} of both edits.
     *
     * @param p the parameters of both edits, changed in place
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     */
    public static void orthonormalizeBoth(float[] p, int rank, int dim) {
        orthonormalizeR(p, 0, rank, dim);
        orthonormalizeR(p, blockSize(rank, dim), rank, dim);
    }

    /**
     * Re-orthonormalises the rows of the R that starts at {@code offset}, in place by modified Gram–Schmidt (in double precision), leaving
     * W and b alone: the optimiser's step leaves the set of orthonormal R, this puts R back on it
     * (the nearest such basis of the same row space, in row order). A row that becomes dependent on
     * the earlier ones (norm under 1e-6 after projection) is an error: the step has collapsed R.
     *
     * @param p the parameters, changed in place
     * @param offset where the R starts in p
     * @param rank the rank r of an edit
     * @param dim d, the width of the residual stream
     */
    public static void orthonormalizeR(float[] p, int offset, int rank, int dim) {
        double[][] rows = new double[rank][dim];
        for (int k = 0; k < rank; k++) {
            for (int i = 0; i < dim; i++) {
                rows[k][i] = p[offset + k * dim + i];
            }
            double n = Directions.removeEarlierRows(rows, k);
            if (!(n > 1e-6)) {
                throw new dev.cdas.NonFiniteException("LoReFT's R lost rank: row " + k + " has norm " + n
                        + " after removing the earlier rows");
            }
            for (int i = 0; i < dim; i++) {
                rows[k][i] /= n;
                p[offset + k * dim + i] = (float) rows[k][i];
            }
        }
    }
}
