package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * The reference settings of docs/method.md section 1 (the published CDAS runs), to start from.
 * The paper gives no epoch count for Gemma-2-9B; it uses the Gemma-2-2B count (18), an
 * assumption stated here so nobody mistakes it for a published number.
 */
public enum TrainingPreset {
    /** Gemma-2-2B, layers 10 or 20: batch 8, 18 epochs, lr 0.04. */
    GEMMA2_2B("gemma-2-2b", 8, 18, 0.04),
    /** Gemma-2-9B, layers 20 or 31: batch 6, lr 0.06 (epochs assumed as for 2B). */
    GEMMA2_9B("gemma-2-9b", 6, 18, 0.06),
    /** Llama-3.1-8B refusal, layer 16: batch 16, 50 epochs, lr 0.08. */
    LLAMA31_8B_REFUSAL("llama-3.1-8b-refusal", 16, 50, 0.08),
    /** The bundled demo model: small data, so more epochs; lr as for Gemma-2-2B. */
    DEMO("demo", 8, 6, 0.04);

    private final String id;
    private final int batchSize;
    private final int epochs;
    private final double lr;

    TrainingPreset(String id, int batchSize, int epochs, double lr) {
        this.id = id;
        this.batchSize = batchSize;
        this.epochs = epochs;
        this.lr = lr;
    }

    /** {@return the preset's name for {@link #byId}, for example "gemma-2-2b"} */
    public String id() {
        return id;
    }

    /** {@return the pairs per optimiser step} */
    public int batchSize() {
        return batchSize;
    }

    /** {@return the passes over the pairs} */
    public int epochs() {
        return epochs;
    }

    /** {@return the initial learning rate} */
    public double lr() {
        return lr;
    }

    /** {@return the default settings with this preset's batch size, epochs and learning rate} */
    public TrainingSettings settings() {
        return TrainingSettings.defaults().withBatchSize(batchSize).withEpochs(epochs).withLr(lr);
    }

    /**
     * The preset of a name or constant name, case-insensitive.
     *
     * @param id for example "gemma-2-9b" or "GEMMA2_9B"
     * @return the preset
     * @throws InvalidArgumentException when no preset has that name
     */
    public static TrainingPreset byId(String id) {
        for (TrainingPreset p : values()) {
            if (p.id.equalsIgnoreCase(id) || p.name().equalsIgnoreCase(id)) {
                return p;
            }
        }
        throw new InvalidArgumentException("unknown preset \"" + id + "\"; known: "
                + java.util.Arrays.stream(values()).map(TrainingPreset::id).toList());
    }
}
