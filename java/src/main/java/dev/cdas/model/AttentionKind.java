package dev.cdas.model;

/** Per-layer attention span: all earlier positions, or only the last {@code sliding_window}. */
public enum AttentionKind {
    /** Every earlier position. */
    FULL("full_attention"),
    /** The last {@code sliding_window} positions only. */
    SLIDING("sliding_attention");

    private final String configName;

    AttentionKind(String configName) {
        this.configName = configName;
    }

    /**
     * The name config.json's layer_types uses.
     *
     * @return "full_attention" or "sliding_attention"
     */
    public String configName() {
        return configName;
    }
}
