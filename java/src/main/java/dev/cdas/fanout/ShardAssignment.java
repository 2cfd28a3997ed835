package dev.cdas.fanout;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/**
 * Deterministic assignment of concepts to shards, balanced by pair count (the work of a concept
 * grows with its pairs): concepts by descending pair count (ties: ascending id), each onto the
 * shard with the fewest pairs so far (ties: the lowest index). The result depends only on the
 * concepts' ids and pair counts and the number of shards, not on the order they are given in.
 */
public final class ShardAssignment {
    private ShardAssignment() {}

    /** The shard index of each concept of {@code concepts}, in their order. */
    public static int[] assign(List<Concept> concepts, int shards) {
        return assignSizes(concepts.stream().mapToLong(Concept::id).toArray(),
                concepts.stream().mapToInt(c -> c.pairs().size()).toArray(), shards);
    }

    /** As {@link #assign} for concepts given as ids and pair counts. */
    public static int[] assignSizes(long[] ids, int[] pairs, int shards) {
        Integer[] order = new Integer[ids.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, Comparator.<Integer>comparingInt(i -> -pairs[i]).thenComparingLong(i -> ids[i]));
        long[] load = new long[shards];
        int[] shardOf = new int[ids.length];
        for (int i : order) {
            int best = 0;
            for (int s = 1; s < shards; s++) {
                if (load[s] < load[best]) {
                    best = s;
                }
            }
            shardOf[i] = best;
            load[best] += pairs[i];
        }
        return shardOf;
    }

    /** The concepts of {@code shard}, by ascending id. */
    public static List<Concept> of(List<Concept> concepts, Shard shard) {
        int[] shardOf = assign(concepts, shard.count());
        List<Concept> mine = new ArrayList<>();
        for (int i = 0; i < shardOf.length; i++) {
            if (shardOf[i] == shard.index()) {
                mine.add(concepts.get(i));
            }
        }
        mine.sort(Comparator.comparingLong(Concept::id));
        return mine;
    }
}
