package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ResponseTruncation;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Everything that determines a training run apart from the model and the data. Defaults are the
 * reference ones (docs/method.md section 1) with Gemma-2-2B's batch/epochs/lr; see {@link TrainingPreset}.
 *
 * @param checkpointEvery steps between checkpoints (0: none)
 * @param epochs            passes over the pairs, at least 1
 * @param batchSize         pairs per optimiser step, at least 1
 * @param lr                the initial learning rate (decayed linearly to 0), positive
 * @param weightDecay       AdamW's decoupled weight decay, 0 or more
 * @param beta1             AdamW's first-moment decay, in [0, 1)
 * @param beta2             AdamW's second-moment decay, in [0, 1)
 * @param eps               AdamW's denominator term, 0 or more
 * @param maxGradNorm       the global gradient norm clipped to, positive
 * @param rank              the number of directions r, at least 1
 * @param seed              the seed of the initial directions and the batch order
 * @param maxResponseTokens the most response tokens per example, at least 1
 */
public record TrainingSettings(
        int epochs,
        int batchSize,
        double lr,
        double weightDecay,
        double beta1,
        double beta2,
        double eps,
        double maxGradNorm,
        int rank,
        long seed,
        int maxResponseTokens,
        int checkpointEvery) {

    /**
     * Checks every setting.
     *
     * @throws InvalidArgumentException when a setting is out of range
     */
    public TrainingSettings {
        if (epochs < 1) {
            throw new InvalidArgumentException("epochs must be at least 1, got " + epochs);
        }
        if (batchSize < 1) {
            throw new InvalidArgumentException("batch size must be at least 1, got " + batchSize);
        }
        if (!(lr > 0) || Double.isInfinite(lr)) {
            throw new InvalidArgumentException("learning rate must be positive, got " + lr);
        }
        if (!(maxGradNorm > 0)) {
            throw new InvalidArgumentException("max gradient norm must be positive, got " + maxGradNorm);
        }
        if (rank < 1) {
            throw new InvalidArgumentException("rank must be at least 1, got " + rank);
        }
        if (maxResponseTokens < 1) {
            throw new InvalidArgumentException("max response tokens must be at least 1, got " + maxResponseTokens);
        }
        if (checkpointEvery < 0) {
            throw new InvalidArgumentException("checkpoint interval must be >= 0, got " + checkpointEvery);
        }
        // AdamW's own constructor checks betas, eps and weight decay.
        new AdamW(0, beta1, beta2, eps, weightDecay);
    }

    /**
     * The reference settings with the Gemma-2-2B preset's epochs, batch size and learning rate, rank 1,
     * seed 42, no checkpoints.
     *
     * @return the default settings
     */
    public static TrainingSettings defaults() {
        return new TrainingSettings(TrainingPreset.GEMMA2_2B.epochs(), TrainingPreset.GEMMA2_2B.batchSize(),
                TrainingPreset.GEMMA2_2B.lr(), AdamW.DEFAULT_WEIGHT_DECAY, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2,
                AdamW.DEFAULT_EPS, GradientClipping.DEFAULT_MAX_NORM, 1, 42, ResponseTruncation.DEFAULT_MAX_TOKENS, 0);
    }

    /**
     * The same settings with another number of epochs.
     *
     * @param v passes over the pairs, at least 1
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withEpochs(int v) {
        return new TrainingSettings(v, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another batch size.
     *
     * @param v pairs per optimiser step, at least 1
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withBatchSize(int v) {
        return new TrainingSettings(epochs, v, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another learning rate.
     *
     * @param v the initial learning rate, positive and finite
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withLr(double v) {
        return new TrainingSettings(epochs, batchSize, v, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another weight decay.
     *
     * @param v AdamW's decoupled weight decay, 0 or more
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withWeightDecay(double v) {
        return new TrainingSettings(epochs, batchSize, lr, v, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another rank.
     *
     * @param v the number of directions, at least 1
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withRank(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, v, seed,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another seed.
     *
     * @param v the seed of the initial directions and the batch order
     * @return new settings
     */
    public TrainingSettings withSeed(long v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, v,
                maxResponseTokens, checkpointEvery);
    }

    /**
     * The same settings with another response length limit.
     *
     * @param v the most response tokens per example, at least 1
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is out of range
     */
    public TrainingSettings withMaxResponseTokens(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                v, checkpointEvery);
    }

    /**
     * The same settings with another checkpoint interval.
     *
     * @param v optimiser steps between checkpoints, 0 for none
     * @return new settings
     * @throws InvalidArgumentException when {@code v} is negative
     */
    public TrainingSettings withCheckpointEvery(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, v);
    }

    /**
     * Optimiser steps for {@code pairs} examples: ⌈pairs / batch⌉ per epoch (the last batch may be short).
     *
     * @param pairs the number of training pairs
     * @return epochs x batches per epoch
     */
    public long totalSteps(int pairs) {
        return (long) epochs * Batches.batchesPerEpoch(pairs, batchSize);
    }

    /**
     * The settings as string metadata for the result file and checkpoints. Doubles are written with
     * {@link Double#toString} so that they read back exactly.
     *
     * @return the settings by their metadata key, in a fixed order
     */
    public Map<String, String> toMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("epochs", Integer.toString(epochs));
        m.put("batch_size", Integer.toString(batchSize));
        m.put("lr", Double.toString(lr));
        m.put("lr_schedule", "linear_decay_no_warmup");
        m.put("optimizer", "adamw");
        m.put("weight_decay", Double.toString(weightDecay));
        m.put("beta1", Double.toString(beta1));
        m.put("beta2", Double.toString(beta2));
        m.put("eps", Double.toString(eps));
        m.put("max_grad_norm", Double.toString(maxGradNorm));
        m.put("rank", Integer.toString(rank));
        m.put("seed", Long.toString(seed));
        m.put("max_response_tokens", Integer.toString(maxResponseTokens));
        return m;
    }
}
