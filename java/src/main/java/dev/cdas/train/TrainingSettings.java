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

    public static TrainingSettings defaults() {
        return new TrainingSettings(TrainingPreset.GEMMA2_2B.epochs(), TrainingPreset.GEMMA2_2B.batchSize(),
                TrainingPreset.GEMMA2_2B.lr(), AdamW.DEFAULT_WEIGHT_DECAY, AdamW.DEFAULT_BETA1, AdamW.DEFAULT_BETA2,
                AdamW.DEFAULT_EPS, GradientClipping.DEFAULT_MAX_NORM, 1, 42, ResponseTruncation.DEFAULT_MAX_TOKENS, 0);
    }

    public TrainingSettings withEpochs(int v) {
        return new TrainingSettings(v, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withBatchSize(int v) {
        return new TrainingSettings(epochs, v, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withLr(double v) {
        return new TrainingSettings(epochs, batchSize, v, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withWeightDecay(double v) {
        return new TrainingSettings(epochs, batchSize, lr, v, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withRank(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, v, seed,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withSeed(long v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, v,
                maxResponseTokens, checkpointEvery);
    }

    public TrainingSettings withMaxResponseTokens(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                v, checkpointEvery);
    }

    public TrainingSettings withCheckpointEvery(int v) {
        return new TrainingSettings(epochs, batchSize, lr, weightDecay, beta1, beta2, eps, maxGradNorm, rank, seed,
                maxResponseTokens, v);
    }

    /** Optimiser steps for {@code pairs} examples: ⌈pairs / batch⌉ per epoch (the last batch may be short). */
    public long totalSteps(int pairs) {
        return (long) epochs * Batches.batchesPerEpoch(pairs, batchSize);
    }

    /**
     * The settings as string metadata for the result file and checkpoints. Doubles are written with
     * {@link Double#toString} so that they read back exactly.
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
