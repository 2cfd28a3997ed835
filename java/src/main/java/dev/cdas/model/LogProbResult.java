package dev.cdas.model;

/**
 * What {@link Model#sequenceLogProbs} returns: per row, the sum of the scored tokens' log-probabilities
 * (natural log); and with an upstream, the gradient of {@code sum_b upstream[b] logProbs[b]} with
 * respect to the intervention's parameters ({@link Intervention#parameterCount()} floats), null without.
 *
 * @param logProbs per row, the sum of the scored tokens' log-probabilities
 * @param gradient the gradient with respect to the intervention's parameters; null without an upstream
 */
public record LogProbResult(float[] logProbs, float[] gradient) {
}
