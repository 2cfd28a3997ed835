package dev.cdas.train;

import dev.cdas.InternalException;
import dev.cdas.data.ConceptPair;
import java.util.List;

/**
 * The CDAS (or DAS) objective of a minibatch computed by all ranks of a {@link Collective} together
 * (docs/scale-out.md, "Data parallel"): rank r of W evaluates the contiguous slice
 * {@code [⌊rB/W⌋, ⌊(r+1)B/W⌋)} of the minibatch's B pairs (possibly empty: it still joins), and one
 * all-reduce sums every rank's token-weighted gradient, loss and token counts of D⁺ and D⁻
 * ({@link CdasObjective#tokenWeightedSums}). Each direction's token mean is then over the whole
 * minibatch, as in one process, and every rank returns the same loss, gradient and token count.
 * The bytes each step reduces: {@code 4 · (2·rank·d + 4)}.
 */
public final class DataParallelObjective implements Objective {
    private final CdasObjective local;
    private final Collective group;
    private long reduceNanos;
    private long reduceCalls;
    private long reducedBytes;

    /**
     * Shares {@code local}'s loss and gradient over {@code group}: each rank computes its slice of
     * the minibatch and the sums are all-reduced.
     *
     * @param local this rank's objective
     * @param group the ranks
     */
    public DataParallelObjective(CdasObjective local, Collective group) {
        this.local = local;
        this.group = group;
    }

    @Override
    public String compute() {
        return local.compute();
    }

    @Override
    public int dimension() {
        return local.dimension();
    }

    /**
     * Steps (all-reduces) so far, the seconds this rank spent in them and the bytes of the buffers reduced.
     *
     * @param allReduces how many all-reduces ran
     * @param seconds the seconds this rank spent in them
     * @param bytes the bytes reduced in all
     */
    public record Communication(long allReduces, double seconds, long bytes) {}

    /** {@return the communication so far} */
    public Communication communication() {
        return new Communication(reduceCalls, reduceNanos / 1e9, reducedBytes);
    }

    /**
     * This rank's pairs of a minibatch of {@code size}: {@code [from, to)}.
     *
     * @param size the minibatch size
     * @param rank this rank
     * @param worldSize the number of ranks
     * @return {start, end} of this rank's slice
     */
    public static int[] slice(int size, int rank, int worldSize) {
        return new int[] {(int) ((long) size * rank / worldSize), (int) ((long) size * (rank + 1) / worldSize)};
    }

    /**
     * Floats reduced per step for {@code n = rank · d} direction values.
     *
     * @param n the number of parameters
     * @return the floats of one all-reduce
     */
    public static int reducedFloats(int n) {
        return 2 * n + 4;
    }

    /** This rank's slice of {@code batch}, or null when it is empty. */
    private Batch part(Batch batch) {
        int[] range = slice(batch.size(), group.rank(), group.worldSize());
        List<ConceptPair> mine = batch.pairs().subList(range[0], range[1]);
        return mine.isEmpty() ? null : new Batch(batch.step(), batch.epoch(), batch.indexInEpoch(),
                java.util.Arrays.copyOfRange(batch.pairIndices(), range[0], range[1]), mine);
    }

    @Override
    public void warm(Batch batch) {
        Batch part = part(batch);
        if (part != null) {
            local.warm(part);
        }
    }

    @Override
    public Result lossAndGradient(float[] w, Batch batch) {
        Batch part = part(batch);
        int n = w.length;
        float[] sums = part == null ? new float[reducedFloats(n)]
                : local.tokenWeightedSums(w, part.inject(), part.suppress());
        if (sums.length != reducedFloats(n)) {
            throw new InternalException("token-weighted sums of " + sums.length + " floats, expected " + reducedFloats(n));
        }
        long t0 = System.nanoTime();
        group.allReduceSum(sums);
        reduceNanos += System.nanoTime() - t0;
        reduceCalls++;
        reducedBytes += 4L * sums.length;
        double tokensPlus = sums[2 * n + 2];
        double tokensMinus = sums[2 * n + 3];
        if (!(tokensPlus > 0) || !(tokensMinus > 0)) {
            throw new InternalException("the ranks' minibatch " + batch + " has no compared tokens in a direction ("
                    + tokensPlus + ", " + tokensMinus + ")");
        }
        float[] grad = new float[n];
        for (int i = 0; i < n; i++) {
            grad[i] = (float) (0.5 * sums[i] / tokensPlus + 0.5 * sums[n + i] / tokensMinus);
        }
        double loss = 0.5 * sums[2 * n] / tokensPlus + 0.5 * sums[2 * n + 1] / tokensMinus;
        return new Result(loss, grad, Math.round(tokensPlus + tokensMinus));
    }
}
