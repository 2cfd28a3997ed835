package dev.cdas.model;

import dev.cdas.InvalidArgumentException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

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
     * The examples of {@code parts}, in order, as one minibatch: token rows re-padded on the left
     * with {@code pad} to the longest, and the given states with them ({@code baseHidden} re-padded
     * the same way; {@code hidden} = d). A state is kept only when every part gives it.
     *
     * @param parts the minibatches, in order
     * @param pad the padding token
     * @param hidden d
     * @return one minibatch of all their examples
     */
    public static ObjectiveBatch concat(List<ObjectiveBatch> parts, int pad, int hidden) {
        if (parts.isEmpty()) {
            throw new InvalidArgumentException("no minibatches to concatenate");
        }
        if (parts.size() == 1) {
            return parts.getFirst();
        }
        boolean withTarget = parts.stream().allMatch(p -> p.target() != null);
        boolean withBase = parts.stream().allMatch(p -> p.baseHidden() != null);
        boolean withSource = parts.stream().allMatch(p -> p.sourceHidden() != null);
        boolean withTeacher = parts.stream().allMatch(p -> p.teacherHidden() != null);
        List<int[]> base = new ArrayList<>(), source = new ArrayList<>(), target = new ArrayList<>();
        int n = 0;
        for (ObjectiveBatch p : parts) {
            n += p.base().batch();
            for (int b = 0; b < p.base().batch(); b++) {
                base.add(realTokens(p.base(), b));
                source.add(realTokens(p.source(), b));
                if (withTarget) {
                    target.add(realTokens(p.target(), b));
                }
            }
        }
        TokenBatch baseBatch = TokenBatch.leftPadded(pad, base.toArray(int[][]::new));
        int[] prefix = new int[n], sourcePos = new int[n], baseStart = new int[n], targetStart = new int[n], count = new int[n];
        float[] baseHidden = withBase ? new float[Math.multiplyExact(n * baseBatch.seqLen(), hidden)] : null;
        float[] sourceHidden = withSource ? new float[n * hidden] : null;
        long rows = 0;
        for (ObjectiveBatch p : parts) {
            rows += p.comparedRows();
        }
        float[] teacherHidden = withTeacher ? new float[Math.toIntExact(rows * hidden)] : null;
        int at = 0, teacherAt = 0;
        for (ObjectiveBatch p : parts) {
            int m = p.base().batch();
            System.arraycopy(p.prefixLen(), 0, prefix, at, m);
            System.arraycopy(p.sourcePositions(), 0, sourcePos, at, m);
            System.arraycopy(p.baseStart(), 0, baseStart, at, m);
            System.arraycopy(p.targetStart(), 0, targetStart, at, m);
            System.arraycopy(p.compareCount(), 0, count, at, m);
            for (int b = 0; b < m; b++) {
                if (withBase) {
                    int len = p.base().length(b);
                    System.arraycopy(p.baseHidden(), (b * p.base().seqLen() + p.base().firstReal(b)) * hidden, baseHidden,
                            ((at + b) * baseBatch.seqLen() + baseBatch.firstReal(at + b)) * hidden, len * hidden);
                }
            }
            if (withSource) {
                System.arraycopy(p.sourceHidden(), 0, sourceHidden, at * hidden, m * hidden);
            }
            if (withTeacher) {
                System.arraycopy(p.teacherHidden(), 0, teacherHidden, teacherAt, p.teacherHidden().length);
                teacherAt += p.teacherHidden().length;
            }
            at += m;
        }
        return new ObjectiveBatch(baseBatch, TokenBatch.leftPadded(pad, source.toArray(int[][]::new)),
                withTarget ? TokenBatch.leftPadded(pad, target.toArray(int[][]::new)) : null, prefix, sourcePos, baseStart,
                targetStart, count, baseHidden, sourceHidden, teacherHidden);
    }

    private static int[] realTokens(TokenBatch t, int b) {
        int first = t.firstReal(b);
        return Arrays.copyOfRange(t.tokens(), b * t.seqLen() + first, b * t.seqLen() + first + t.length(b));
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
