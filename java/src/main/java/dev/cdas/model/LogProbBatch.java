package dev.cdas.model;

import dev.cdas.InvalidArgumentException;

/**
 * Sequences whose responses {@link Model#sequenceLogProbs} scores (cdas.h {@code cdas_logprob_batch}):
 * row b scores {@code scoreCount[b]} tokens from position {@code scoreStart[b]} (counted from the
 * row's first real token, at least 1 when something is scored), each predicted by the row before
 * it; the intervention applies at positions {@code >= prefixLen[b]} (null = 0).
 *
 * @param tokens the token rows (left-padded)
 * @param prefixLen per row, the first position the intervention applies at; null for 0
 * @param scoreStart per row, the position of the first scored token
 * @param scoreCount per row, how many tokens are scored
 */
public record LogProbBatch(TokenBatch tokens, int[] prefixLen, int[] scoreStart, int[] scoreCount) {
    /** Checks that every array holds one entry per row (the ranges are checked by libcdas). */
    public LogProbBatch {
        if (tokens == null) {
            throw new InvalidArgumentException("tokens must not be null");
        }
        requireRows(scoreStart, "scoreStart", tokens.batch());
        requireRows(scoreCount, "scoreCount", tokens.batch());
        if (prefixLen != null) {
            requireRows(prefixLen, "prefixLen", tokens.batch());
        }
    }

    private static void requireRows(int[] a, String name, int batch) {
        if (a == null || a.length != batch) {
            throw new InvalidArgumentException(name + " must hold one entry per row (" + batch + "), got "
                    + (a == null ? "null" : a.length));
        }
    }
}
