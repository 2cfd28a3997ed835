package dev.cdas.model;

/**
 * One CDAS minibatch (docs/method.md section 1): row {@code k < compareCount[b]} compares position
 * baseStart[b] + k of the clamped base with targetStart[b] + k of the unmodified target
 * (positions from each row's first real token); a_b = W h_L(source row b, sourcePositions[b]).
 *
 * <p>The optional states (fp32, null = computed in the call) do not depend on W, so a trainer
 * may compute them once and reuse them: {@code baseHidden} [B x T_base x d] = h_L of the base
 * (padded like {@code base}); {@code sourceHidden} [B x d] = the source states s_b;
 * {@code teacherHidden} [compared rows x d] = the target's final hidden states at the compared
 * rows, example by example (given, the target is not read).
 */
public record ObjectiveBatch(TokenBatch base, TokenBatch source, TokenBatch target, int[] prefixLen, int[] sourcePositions,
                             int[] baseStart, int[] targetStart, int[] compareCount, float[] baseHidden,
                             float[] sourceHidden, float[] teacherHidden) {
    /** Without precomputed states. */
    public ObjectiveBatch(TokenBatch base, TokenBatch source, TokenBatch target, int[] prefixLen, int[] sourcePositions,
                          int[] baseStart, int[] targetStart, int[] compareCount) {
        this(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount, null, null, null);
    }

    /** The same minibatch with the given states (each nullable). */
    public ObjectiveBatch withStates(float[] baseHidden, float[] sourceHidden, float[] teacherHidden) {
        return new ObjectiveBatch(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount,
                baseHidden, sourceHidden, teacherHidden);
    }

    /** Rows compared (the sum of compareCount). */
    public long comparedRows() {
        long n = 0;
        for (int c : compareCount) {
            n += c;
        }
        return n;
    }
}
