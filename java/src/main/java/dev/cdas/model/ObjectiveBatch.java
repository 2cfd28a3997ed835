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
 *
 * @param base            the base sequences (the ones clamped), B rows
 * @param source          the source sequences a_b is read from, B rows; null with {@code sourceHidden}
 * @param target          the target sequences whose outputs the clamped base is compared with, B rows;
 *                        null with {@code teacherHidden}
 * @param prefixLen       per example, the real positions before which the base is not clamped
 * @param sourcePositions per example, the position of the source row whose h_L gives a_b
 * @param baseStart       per example, the first compared position of the base
 * @param targetStart     per example, the first compared position of the target
 * @param compareCount    per example, the number of compared positions
 * @param baseHidden      h_L of the base, B x T_base x d fp32, or null
 * @param sourceHidden    the source states s_b, B x d fp32, or null
 * @param teacherHidden   the target's final hidden states at the compared rows, (sum of compareCount) x d fp32, or null
 */
public record ObjectiveBatch(TokenBatch base, TokenBatch source, TokenBatch target, int[] prefixLen, int[] sourcePositions,
                             int[] baseStart, int[] targetStart, int[] compareCount, float[] baseHidden,
                             float[] sourceHidden, float[] teacherHidden) {
    /**
     * Without precomputed states.
     *
     * @param base            the base sequences (the ones clamped), B rows
     * @param source          the source sequences a_b is read from, B rows
     * @param target          the target sequences the clamped base is compared with, B rows
     * @param prefixLen       per example, the real positions before which the base is not clamped
     * @param sourcePositions per example, the position of the source row whose h_L gives a_b
     * @param baseStart       per example, the first compared position of the base
     * @param targetStart     per example, the first compared position of the target
     * @param compareCount    per example, the number of compared positions
     */
    public ObjectiveBatch(TokenBatch base, TokenBatch source, TokenBatch target, int[] prefixLen, int[] sourcePositions,
                          int[] baseStart, int[] targetStart, int[] compareCount) {
        this(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount, null, null, null);
    }

    /**
     * The same minibatch with the given states (each nullable).
     *
     * @param baseHidden    h_L of the base, B x T_base x d fp32, or null
     * @param sourceHidden  the source states s_b, B x d fp32, or null
     * @param teacherHidden the target's final hidden states at the compared rows, fp32, or null
     * @return a new batch; this one is unchanged
     */
    public ObjectiveBatch withStates(float[] baseHidden, float[] sourceHidden, float[] teacherHidden) {
        return new ObjectiveBatch(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount,
                baseHidden, sourceHidden, teacherHidden);
    }

    /**
     * Rows compared (the sum of compareCount).
     *
     * @return the number of compared (position) rows over all examples
     */
    public long comparedRows() {
        long n = 0;
        for (int c : compareCount) {
            n += c;
        }
        return n;
    }
}
