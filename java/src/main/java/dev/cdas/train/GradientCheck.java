package dev.cdas.train;

/**
 * Central finite differences of an {@link Objective} along random directions, for checking an
 * implementation's analytic gradient end to end (the runtime's CDAS objective: issue 4, tests).
 * Directional derivatives are compared rather than every coordinate, so the cost is two
 * objective evaluations per probe, whatever {@code d} is.
 */
public final class GradientCheck {
    /**
     * One probe: the analytic {@code ∇L·v} and the numeric {@code (L(w+hv) − L(w−hv)) / 2h}.
     *
     * @param analytic the gradient's component along v
     * @param numeric  the finite-difference estimate of it
     */
    public record Probe(double analytic, double numeric) {
        /** {@return |analytic - numeric| over the larger magnitude of the two (at least 1e-12)} */
        public double relativeError() {
            return Math.abs(analytic - numeric) / Math.max(1e-12, Math.max(Math.abs(analytic), Math.abs(numeric)));
        }
    }

    private GradientCheck() {}

    /**
     * {@code probes} random unit directions {@code v} (seeded), step {@code h}.
     *
     * @param objective the objective to check
     * @param w         the point, rank x d row-major (not changed)
     * @param batch     the minibatch
     * @param probes    the number of directions
     * @param h         the finite-difference step
     * @param seed      the directions' seed
     * @return one probe per direction
     */
    public static Probe[] directional(Objective objective, float[] w, Batch batch, int probes, double h, long seed) {
        float[] grad = objective.lossAndGradient(w.clone(), batch).gradient();
        Rng rng = new Rng(seed);
        Probe[] out = new Probe[probes];
        for (int p = 0; p < probes; p++) {
            float[] v = Directions.randomUnit(1, w.length, rng);
            float[] plus = w.clone();
            float[] minus = w.clone();
            double analytic = 0;
            for (int i = 0; i < w.length; i++) {
                plus[i] = (float) (w[i] + h * v[i]);
                minus[i] = (float) (w[i] - h * v[i]);
                analytic += (double) grad[i] * v[i];
            }
            double lp = objective.lossAndGradient(plus, batch).loss();
            double lm = objective.lossAndGradient(minus, batch).loss();
            out[p] = new Probe(analytic, (lp - lm) / (2 * h));
        }
        return out;
    }
}
