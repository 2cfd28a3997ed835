package dev.cdas.train;

import dev.cdas.data.ConceptPair;
import java.util.ArrayList;
import java.util.List;

/**
 * A synthetic objective computed in Java: each pair (by index) carries noisy samples
 * {@code x_{i,r} = u_r + σ·noise} of hidden orthonormal directions {@code u_r}; the loss of a
 * batch is {@code mean_i mean_r (1 − cos(w_r, x̂_{i,r}))}, whose gradient at a unit row is
 * {@code −mean_i (x̂_{i,r} − (w_r·x̂_{i,r}) w_r) / rank}. Its minimiser is the direction of the mean
 * sample, close to {@code u_r}, and the gradient vanishes there. (With a loss whose gradient does
 * not vanish at the optimum, such as {@code −w·x̂}, Adam's per-coordinate scaling drives
 * {@code w} toward {@code sign(x̄)} instead, alignment ≈ √(2/π).)
 */
final class HiddenDirectionObjective implements Objective {
    final int dim;
    final int rank;
    final float[] hidden;
    private final double[][][] samples; // [pair][row][dim]
    int calls;

    /** {@code inner}, except that its call number {@code crashAt} (0-based) throws: a simulated crash. */
    static Objective crashingAt(Objective inner, int crashAt) {
        return new Objective() {
            int calls;

            @Override
            public int dimension() {
                return inner.dimension();
            }

            @Override
            public Result lossAndGradient(float[] w, Batch batch) {
                if (calls++ == crashAt) {
                    throw new IllegalStateException("simulated crash");
                }
                return inner.lossAndGradient(w, batch);
            }
        };
    }

    HiddenDirectionObjective(int dim, int rank, int pairs, double noise, long seed) {
        this.dim = dim;
        this.rank = rank;
        Rng rng = new Rng(seed);
        this.hidden = Directions.randomUnit(rank, dim, rng);
        samples = new double[pairs][rank][dim];
        for (int p = 0; p < pairs; p++) {
            for (int r = 0; r < rank; r++) {
                double n = 0;
                for (int i = 0; i < dim; i++) {
                    samples[p][r][i] = hidden[r * dim + i] + noise * rng.nextGaussian() / Math.sqrt(dim);
                    n += samples[p][r][i] * samples[p][r][i];
                }
                for (int i = 0; i < dim; i++) {
                    samples[p][r][i] /= Math.sqrt(n);
                }
            }
        }
    }

    static List<ConceptPair> pairs(int n) {
        List<ConceptPair> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(new ConceptPair("x" + i, "y" + i, "xc" + i, "yc" + i, "synthetic", i, "synthetic #" + i));
        }
        return out;
    }

    @Override
    public int dimension() {
        return dim;
    }

    @Override
    public Result lossAndGradient(float[] w, Batch batch) {
        calls++;
        double loss = 0;
        double[] grad = new double[rank * dim];
        int[] idx = batch.pairIndices();
        for (int p : idx) {
            for (int r = 0; r < rank; r++) {
                double dot = 0;
                double norm = 0;
                for (int i = 0; i < dim; i++) {
                    dot += w[r * dim + i] * samples[p][r][i];
                    norm += (double) w[r * dim + i] * w[r * dim + i];
                }
                norm = Math.sqrt(norm);
                dot /= norm;
                for (int i = 0; i < dim; i++) {
                    grad[r * dim + i] -= (samples[p][r][i] - dot * w[r * dim + i] / norm) / (norm * idx.length * rank);
                }
                loss += (1 - dot) / (idx.length * rank);
            }
        }
        float[] g = new float[grad.length];
        for (int i = 0; i < g.length; i++) {
            g[i] = (float) grad[i];
        }
        return new Result(loss, g, 10L * idx.length);
    }

    /** Mean over rows of w_r·u_r. */
    double alignment(float[] w) {
        double s = 0;
        for (int r = 0; r < rank; r++) {
            for (int i = 0; i < dim; i++) {
                s += (double) w[r * dim + i] * hidden[r * dim + i];
            }
        }
        return s / rank;
    }
}
