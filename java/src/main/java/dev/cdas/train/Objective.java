package dev.cdas.train;

/**
 * The training objective as the loop sees it: loss and gradient with respect to the directions
 * {@code w} (row-major {@code [rank × dimension]}) on one minibatch. The model runtime implements
 * the CDAS objective (docs/method.md section 1: D⁺ and D⁻ each token-pooled JSD, weighted ½; the
 * runtime tokenises and renders the {@link DirectionExample}s, truncating responses with
 * {@link dev.cdas.data.ResponseTruncation}); DAS (cross-entropy) is another implementation.
 * The loop owns the optimiser, clipping and re-normalisation; an objective must not change
 * {@code w}.
 */
public interface Objective {
    /**
     * {@code d}, the width of the residual stream the directions live in.
     *
     * @return d
     */
    int dimension();

    /**
     * The loss of one minibatch at directions {@code w} and its gradient.
     *
     * @param w     the directions, rank x d row-major; not to be changed
     * @param batch the minibatch's pairs
     * @return the loss, dloss/dw and the tokens pooled
     */
    Result lossAndGradient(float[] w, Batch batch);

    /**
     * How many parameters the trainer optimises for {@code rank}: by default the directions
     * {@code [rank × d]}; LoReFT's (R, W, b) has more ({@link LogProbObjective}).
     *
     * @param rank the number of directions (rows)
     * @return the length of the parameter vector
     */
    default int parameterCount(int rank) {
        return rank * dimension();
    }

    /**
     * The parameters a fresh run starts from; by default seeded random orthonormal unit rows.
     *
     * @param rank the number of directions (rows)
     * @param rng  the run's random stream
     * @return {@link #parameterCount} parameters
     */
    default float[] initialParameters(int rank, Rng rng) {
        return Directions.randomUnit(rank, dimension(), rng);
    }

    /**
     * Puts the parameters back on their constraint set after an optimiser step, in place; by default
     * each row is re-normalised to unit length (docs/method.md section 1).
     *
     * @param parameters the parameters, changed in place
     * @param rank       the number of directions (rows)
     */
    default void afterStep(float[] parameters, int rank) {
        Directions.renormalizeRows(parameters, rank);
    }

    /**
     * What besides the settings and data a checkpoint must match to be resumed by this objective
     * (e.g. the method and its own constants); empty for the CDAS/DAS objective.
     *
     * @return names and values that must match
     */
    default java.util.Map<String, String> identity() {
        return java.util.Map.of();
    }

    /**
     * What the objective computes on, {@code "cpu f32"} ({@link dev.cdas.model.Model#computeKind}):
     * a checkpoint records it and resuming elsewhere is refused (Trainer). Empty when the objective
     * runs no model (tests' objectives).
     *
     * @return the device kind and dtype, or ""
     */
    default String compute() {
        return "";
    }

    /**
     * Computes and keeps what this objective caches for {@code batch}'s examples (the states that do
     * not depend on w, {@link ObjectiveStateCache}; the reference log-probabilities of RePS and
     * BiPO), exactly as the step on that batch would, without the step. A resumed run replays every
     * minibatch taken before its checkpoint with this, in order (Trainer), so that every cached value
     * comes from the same minibatch as in the run that was interrupted: values computed beside other
     * examples round differently (padding, the shapes of the products), and a resumed run would
     * otherwise drift from the uninterrupted one by about 1e-8 in fp32 and 1e-4 in bf16. No-op for
     * objectives that cache nothing; cheap for minibatches whose values are all cached.
     *
     * @param batch a minibatch taken before the checkpoint
     */
    default void warm(Batch batch) {
    }

    /**
     * The loss and gradient of one minibatch.
     *
     * @param loss     the differentiated loss (not halved for logging, unlike the reference)
     * @param gradient ∂loss/∂w, same layout as {@code w}
     * @param tokens   response tokens the loss was pooled over (both directions), for tokens/s
     */
    record Result(double loss, float[] gradient, long tokens) {}
}
