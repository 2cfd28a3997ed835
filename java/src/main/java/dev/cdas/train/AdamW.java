package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * AdamW exactly as {@code torch.optim.AdamW} (non-amsgrad, non-fused): decoupled weight decay
 * {@code θ ← θ(1 − lr·λ)}, then {@code m ← β₁m + (1−β₁)g}, {@code v ← β₂v + (1−β₂)g²},
 * {@code θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)}. Moments are kept in float32 like torch's
 * state for float32 parameters; each update is computed in double. The reference defaults
 * (docs/method.md section 1): weight decay 0, betas 0.9/0.999, eps 1e-8.
 */
public final class AdamW {
    /** The reference beta1, 0.9. */
    public static final double DEFAULT_BETA1 = 0.9;
    /** The reference beta2, 0.999. */
    public static final double DEFAULT_BETA2 = 0.999;
    /** The reference eps, 1e-8. */
    public static final double DEFAULT_EPS = 1e-8;
    /** The reference weight decay, 0. */
    public static final double DEFAULT_WEIGHT_DECAY = 0.0;

    private final double beta1;
    private final double beta2;
    private final double eps;
    private final double weightDecay;
    private final float[] m;
    private final float[] v;
    private long step;

    /**
     * An optimiser over {@code size} parameters with zero moments at step 0.
     *
     * @param size        the number of parameters
     * @param beta1       the first-moment decay, in [0, 1)
     * @param beta2       the second-moment decay, in [0, 1)
     * @param eps         the denominator term, 0 or more
     * @param weightDecay the decoupled weight decay, 0 or more
     * @throws InvalidArgumentException when a beta, eps or the weight decay is out of range
     */
    public AdamW(int size, double beta1, double beta2, double eps, double weightDecay) {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) {
            throw new InvalidArgumentException("betas must lie in [0, 1): " + beta1 + ", " + beta2);
        }
        if (!(eps >= 0) || !(weightDecay >= 0)) {
            throw new InvalidArgumentException("eps and weight decay must be non-negative: " + eps + ", " + weightDecay);
        }
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        this.weightDecay = weightDecay;
        this.m = new float[size];
        this.v = new float[size];
    }

    /**
     * An optimiser over {@code size} parameters with the reference settings.
     *
     * @param size the number of parameters
     */
    public AdamW(int size) {
        this(size, DEFAULT_BETA1, DEFAULT_BETA2, DEFAULT_EPS, DEFAULT_WEIGHT_DECAY);
    }

    /**
     * One update of {@code params} in place with gradient {@code grad} at learning rate {@code lr}.
     *
     * @param params the parameters, updated in place
     * @param grad   their gradient
     * @param lr     the learning rate
     * @throws InvalidArgumentException when an array's length is not the optimiser's size
     */
    public void step(float[] params, float[] grad, double lr) {
        if (params.length != m.length || grad.length != m.length) {
            throw new InvalidArgumentException("AdamW over " + m.length + " values got params " + params.length
                    + " and grad " + grad.length);
        }
        step++;
        double bc1 = 1 - Math.pow(beta1, step);
        double sqrtBc2 = Math.sqrt(1 - Math.pow(beta2, step));
        double stepSize = lr / bc1;
        double decay = 1 - lr * weightDecay;
        for (int i = 0; i < params.length; i++) {
            double g = grad[i];
            float mi = (float) (beta1 * m[i] + (1 - beta1) * g);
            float vi = (float) (beta2 * v[i] + (1 - beta2) * g * g);
            m[i] = mi;
            v[i] = vi;
            double p = params[i] * decay;
            params[i] = (float) (p - stepSize * mi / (Math.sqrt(vi) / sqrtBc2 + eps));
        }
    }

    /** {@return the updates done (t)} */
    public long stepCount() {
        return step;
    }

    /** {@return a copy of the first moment m} */
    public float[] firstMoment() {
        return m.clone();
    }

    /** {@return a copy of the second moment v} */
    public float[] secondMoment() {
        return v.clone();
    }

    /**
     * Restores the state saved in a checkpoint.
     *
     * @param firstMoment  m, one value per parameter
     * @param secondMoment v, one value per parameter
     * @param stepCount    t, 0 or more
     * @throws InvalidArgumentException when a size differs or the step count is negative
     */
    public void restore(float[] firstMoment, float[] secondMoment, long stepCount) {
        if (firstMoment.length != m.length || secondMoment.length != v.length || stepCount < 0) {
            throw new InvalidArgumentException("optimiser state of the wrong size: " + firstMoment.length + "/"
                    + secondMoment.length + " for " + m.length + " values, step " + stepCount);
        }
        System.arraycopy(firstMoment, 0, m, 0, m.length);
        System.arraycopy(secondMoment, 0, v, 0, v.length);
        step = stepCount;
    }

    /** {@return beta1} */
    public double beta1() {
        return beta1;
    }

    /** {@return beta2} */
    public double beta2() {
        return beta2;
    }

    /** {@return eps} */
    public double eps() {
        return eps;
    }

    /** {@return the decoupled weight decay} */
    public double weightDecay() {
        return weightDecay;
    }
}
