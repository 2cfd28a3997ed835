package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * The losses of the log-likelihood baselines (docs/method.md, "Baselines: RePS, BiPO, LoReFT") as
 * functions of per-example sequence log-probabilities: each returns the loss of a minibatch and
 * its derivative with respect to every steered log-probability it was given (the reference
 * log-probabilities are constants). The objectives ({@link LogProbObjective}) get the
 * log-probabilities and the parameter gradient from the model; these are the pure parts.
 *
 * <p>A log-probability is the sum of {@code log p} over a response's tokens; a length is its number
 * of tokens ({@code ≥ 1}).
 */
public final class LogProbLosses {

    /**
     * A minibatch loss and {@code ∂loss/∂(steered log-prob)}, laid out like the steered input.
     *
     * @param loss the minibatch loss
     * @param gradient ∂loss/∂(steered log-prob), laid out like the steered input
     */
    public record Value(double loss, double[] gradient) {}

    /** Slots of one RePS example in the {@code steered} and {@code reference} arrays (4 per example). */
    public static final int REPS_PLUS_CONCEPT = 0;
    /** Slot of the concept response after x, steered positively. */
    public static final int REPS_PLUS_PLAIN = 1;
    /** Slot of the plain response after x, steered positively. */
    public static final int REPS_MINUS_PLAIN = 2;
    /** Slot of the plain response after x_c, steered negatively. */
    public static final int REPS_MINUS_CONCEPT = 3;

    private LogProbLosses() {}

    /**
     * RePS (Wu et al. 2025), mean over the B examples of {@code softplus(−Δ⁺) + softplus(−Δ⁻)},
     * i.e. {@code −log σ(Δ⁺) − log σ(Δ⁻)}, with per-token (length-normalised) log-likelihoods
     * {@code ℓ = logp / length}:
     * <pre>
     *   Δ⁺ = β⁺ · ℓ⁺(yᶜ | x) − ℓ⁺(y | x)       β⁺ = max(ℓ_ref(y | x) − ℓ_ref(yᶜ | x), 1)
     *   Δ⁻ = β⁻ · ℓ⁻(y | xᶜ) − ℓ⁻(yᶜ | xᶜ)     β⁻ = max(ℓ_ref(yᶜ | xᶜ) − ℓ_ref(y | xᶜ), 1)
     * </pre>
     * ⁺ is the model steered towards the concept, ⁻ steered away from it, ref the unsteered model.
     *
     * @param steered      [B × 4]: per example, at {@link #REPS_PLUS_CONCEPT} log p⁺(yᶜ|x), at
     *                     {@link #REPS_PLUS_PLAIN} log p⁺(y|x), at {@link #REPS_MINUS_PLAIN} log p⁻(y|xᶜ),
     *                     at {@link #REPS_MINUS_CONCEPT} log p⁻(yᶜ|xᶜ)
     * @param reference    the same four under the unsteered model
     * @param conceptLength tokens of yᶜ, per example
     * @param plainLength   tokens of y, per example
     * @return the loss and its gradient
     */
    public static Value reps(double[] steered, double[] reference, int[] conceptLength, int[] plainLength) {
        int b = conceptLength.length;
        check(steered.length == 4 * b && reference.length == 4 * b && plainLength.length == b,
                "RePS needs 4 steered and 4 reference log-probabilities and two lengths per example");
        double loss = 0;
        double[] grad = new double[steered.length];
        for (int i = 0; i < b; i++) {
            double nc = length(conceptLength[i]);
            double ny = length(plainLength[i]);
            int o = 4 * i;
            double betaPlus = Math.max(reference[o + REPS_PLUS_PLAIN] / ny - reference[o + REPS_PLUS_CONCEPT] / nc, 1.0);
            double betaMinus = Math.max(reference[o + REPS_MINUS_CONCEPT] / nc - reference[o + REPS_MINUS_PLAIN] / ny, 1.0);
            double deltaPlus = betaPlus * steered[o + REPS_PLUS_CONCEPT] / nc - steered[o + REPS_PLUS_PLAIN] / ny;
            double deltaMinus = betaMinus * steered[o + REPS_MINUS_PLAIN] / ny - steered[o + REPS_MINUS_CONCEPT] / nc;
            loss += softplus(-deltaPlus) + softplus(-deltaMinus);
            // d softplus(−Δ)/dΔ = −σ(−Δ)
            double gPlus = -sigmoid(-deltaPlus) / b;
            double gMinus = -sigmoid(-deltaMinus) / b;
            grad[o + REPS_PLUS_CONCEPT] = gPlus * betaPlus / nc;
            grad[o + REPS_PLUS_PLAIN] = -gPlus / ny;
            grad[o + REPS_MINUS_PLAIN] = gMinus * betaMinus / ny;
            grad[o + REPS_MINUS_CONCEPT] = -gMinus / nc;
        }
        return new Value(loss / b, grad);
    }

    /**
     * BiPO (Cao et al. 2024), the DPO loss of the steered model against the unsteered one, mean over
     * the B examples:
     * {@code −log σ(β [(log p_s(w) − log p_ref(w)) − (log p_s(l) − log p_ref(l))])}, where w is the
     * response preferred under this example's steering and l the other one (summed, not
     * length-normalised, log-probabilities, as in DPO).
     *
     * @param steered   [B × 2]: per example log p_s(w), log p_s(l) under the steered model
     * @param reference [B × 2]: the same under the unsteered model
     * @param beta      DPO's β ({@code > 0})
     * @return the loss and its gradient
     */
    public static Value bipo(double[] steered, double[] reference, double beta) {
        check(steered.length % 2 == 0 && steered.length > 0 && reference.length == steered.length,
                "BiPO needs 2 steered and 2 reference log-probabilities per example");
        check(beta > 0 && Double.isFinite(beta), "BiPO's beta must be a positive number, got " + beta);
        int b = steered.length / 2;
        double loss = 0;
        double[] grad = new double[steered.length];
        for (int i = 0; i < b; i++) {
            double margin = beta * ((steered[2 * i] - reference[2 * i]) - (steered[2 * i + 1] - reference[2 * i + 1]));
            loss += softplus(-margin);
            double g = -sigmoid(-margin) * beta / b;
            grad[2 * i] = g;
            grad[2 * i + 1] = -g;
        }
        return new Value(loss / b, grad);
    }

    /**
     * Cross-entropy of the responses, token-mean over the minibatch: {@code −Σ logp / Σ length}
     * (LoReFT's language-modelling loss).
     *
     * @param steered per response, the sum of its tokens' log-probabilities
     * @param length per response, its token count
     * @return the loss and its gradient
     */
    public static Value crossEntropy(double[] steered, int[] length) {
        check(steered.length == length.length && steered.length > 0, "need one length per log-probability");
        double tokens = 0;
        for (int n : length) {
            tokens += length(n);
        }
        double sum = 0;
        double[] grad = new double[steered.length];
        for (int i = 0; i < steered.length; i++) {
            sum += steered[i];
            grad[i] = -1.0 / tokens;
        }
        return new Value(-sum / tokens, grad);
    }

    /** {@code log(1 + e^x)} without overflow. */
    static double softplus(double x) {
        return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
    }

    static double sigmoid(double x) {
        if (x >= 0) {
            return 1.0 / (1.0 + Math.exp(-x));
        }
        double e = Math.exp(x);
        return e / (1.0 + e);
    }

    private static double length(int n) {
        check(n >= 1, "a response must have at least one token, got " + n);
        return n;
    }

    private static void check(boolean ok, String message) {
        if (!ok) {
            throw new InvalidArgumentException(message);
        }
    }
}
