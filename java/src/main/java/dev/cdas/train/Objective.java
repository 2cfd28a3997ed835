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
     * The loss and gradient of one minibatch.
     *
     * @param loss     the differentiated loss (not halved for logging, unlike the reference)
     * @param gradient ∂loss/∂w, same layout as {@code w}
     * @param tokens   response tokens the loss was pooled over (both directions), for tokens/s
     */
    record Result(double loss, float[] gradient, long tokens) {}
}
