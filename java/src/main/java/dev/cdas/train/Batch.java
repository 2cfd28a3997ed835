package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.util.Arrays;
import java.util.List;

/**
 * One minibatch of pairs. Both directions are built from the same pairs, so a step sees a D⁺
 * minibatch and a D⁻ minibatch of equal size, each token-pooled and weighted ½ (docs/method.md
 * section 1; the reference interleaves the two directions in one shuffled minibatch instead).
 *
 * @param step         the optimiser step this batch is for (0-based, over the whole run)
 * @param pairIndices  indices of the pairs in the training list
 * @param epoch        the epoch, 0-based
 * @param indexInEpoch the batch's place in its epoch, 0-based
 * @param pairs        the pairs, in {@code pairIndices} order
 */
public record Batch(long step, int epoch, int indexInEpoch, int[] pairIndices, List<ConceptPair> pairs) {
    /**
     * Copies the indices and pairs.
     *
     * @throws InvalidArgumentException when there is no pair or the counts differ
     */
    public Batch {
        pairIndices = pairIndices.clone();
        pairs = List.copyOf(pairs);
        if (pairIndices.length != pairs.size() || pairs.isEmpty()) {
            throw new InvalidArgumentException("a batch needs as many indices as pairs, and at least one");
        }
    }

    /** {@return a copy of the pair indices} */
    @Override
    public int[] pairIndices() {
        return pairIndices.clone();
    }

    /** {@return the number of pairs} */
    public int size() {
        return pairs.size();
    }

    /**
     * D⁺: base x ⊕ yᶜ, source xᶜ, target xᶜ ⊕ yᶜ.
     *
     * @return one example per pair, in order
     */
    public List<DirectionExample> inject() {
        return pairs.stream()
                .map(p -> new DirectionExample(p.negativeInput(), p.positiveInput(), p.positiveOutput(), p.origin()))
                .toList();
    }

    /**
     * D⁻: base xᶜ ⊕ y, source x, target x ⊕ y.
     *
     * @return one example per pair, in order
     */
    public List<DirectionExample> suppress() {
        return pairs.stream()
                .map(p -> new DirectionExample(p.positiveInput(), p.negativeInput(), p.negativeOutput(), p.origin()))
                .toList();
    }

    @Override
    public String toString() {
        return "Batch[step " + step + ", epoch " + epoch + ", #" + indexInEpoch + ", pairs " + Arrays.toString(pairIndices) + "]";
    }
}
