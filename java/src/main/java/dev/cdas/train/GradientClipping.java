package dev.cdas.train;

import dev.cdas.NonFiniteException;
import dev.cdas.InvalidArgumentException;

/**
 * Global gradient-norm clipping as {@code torch.nn.utils.clip_grad_norm_}: with total L2 norm
 * {@code n}, the gradient is scaled by {@code min(1, max / (n + 1e-6))}.
 */
public final class GradientClipping {
    /** The default maximum norm, 1. */
    public static final double DEFAULT_MAX_NORM = 1.0;
    private static final double TORCH_EPS = 1e-6;

    private GradientClipping() {}

    /**
     * The L2 norm, accumulated in double.
     *
     * @param grad the gradient
     * @return its L2 norm
     */
    public static double norm(float[] grad) {
        double s = 0;
        for (float g : grad) {
            s += (double) g * g;
        }
        return Math.sqrt(s);
    }

    /**
     * Clips {@code grad} in place and returns its norm before clipping.
     *
     * @param grad    the gradient, scaled in place when its norm exceeds {@code maxNorm}
     * @param maxNorm the norm to clip to, positive
     * @return the norm before clipping
     * @throws InvalidArgumentException when {@code maxNorm} is not positive
     * @throws dev.cdas.NonFiniteException when the norm is not finite
     */
    public static double clipGlobalNorm(float[] grad, double maxNorm) {
        if (!(maxNorm > 0)) {
            throw new InvalidArgumentException("max norm must be positive: " + maxNorm);
        }
        double n = norm(grad);
        if (!Double.isFinite(n)) {
            throw new NonFiniteException("gradient norm is " + n);
        }
        double coef = maxNorm / (n + TORCH_EPS);
        if (coef < 1.0) {
            for (int i = 0; i < grad.length; i++) {
                grad[i] = (float) (grad[i] * coef);
            }
        }
        return n;
    }
}
