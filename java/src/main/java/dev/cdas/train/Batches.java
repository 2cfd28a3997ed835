package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Minibatches for one epoch: the pair indices shuffled with the run's {@link Rng} (one
 * permutation per epoch, drawn at its start), cut into batches of {@code batchSize}; the last
 * batch of an epoch may be shorter (the reference's DataLoader does not drop it).
 */
public final class Batches {
    private Batches() {}

    /**
     * The number of batches in one epoch: the pairs divided by the batch size, rounded up.
     *
     * @param pairs     the number of pairs, at least 1
     * @param batchSize the pairs per batch, at least 1
     * @return the batches per epoch
     * @throws InvalidArgumentException when either is below 1
     */
    public static int batchesPerEpoch(int pairs, int batchSize) {
        if (pairs < 1 || batchSize < 1) {
            throw new InvalidArgumentException("need at least one pair and a positive batch size, got " + pairs + ", " + batchSize);
        }
        return (pairs + batchSize - 1) / batchSize;
    }

    /**
     * Draws the epoch's permutation from {@code rng} (advancing it) and returns its batches.
     *
     * @param pairs     the training pairs, at least one
     * @param batchSize the pairs per batch
     * @param epoch     the epoch, 0-based (it numbers the batches' steps)
     * @param rng       the run's generator
     * @return the epoch's batches, in order
     * @throws InvalidArgumentException when there is no pair or the batch size is below 1
     */
    public static List<Batch> epoch(List<ConceptPair> pairs, int batchSize, int epoch, Rng rng) {
        int n = pairs.size();
        int perEpoch = batchesPerEpoch(n, batchSize);
        int[] order = new int[n];
        Arrays.setAll(order, i -> i);
        rng.shuffle(order);
        List<Batch> out = new ArrayList<>(perEpoch);
        for (int b = 0; b < perEpoch; b++) {
            int[] idx = Arrays.copyOfRange(order, b * batchSize, Math.min(n, (b + 1) * batchSize));
            List<ConceptPair> chosen = new ArrayList<>(idx.length);
            for (int i : idx) {
                chosen.add(pairs.get(i));
            }
            out.add(new Batch((long) epoch * perEpoch + b, epoch, b, idx, chosen));
        }
        return out;
    }
}
