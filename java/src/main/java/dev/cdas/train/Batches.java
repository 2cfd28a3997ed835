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

    public static int batchesPerEpoch(int pairs, int batchSize) {
        if (pairs < 1 || batchSize < 1) {
            throw new InvalidArgumentException("need at least one pair and a positive batch size, got " + pairs + ", " + batchSize);
        }
        return (pairs + batchSize - 1) / batchSize;
    }

    /** Draws the epoch's permutation from {@code rng} (advancing it) and returns its batches. */
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
