package dev.cdas.model;

/** Per-layer attention span: all earlier positions, or only the last {@code sliding_window}. */
public enum AttentionKind {
    FULL("full_attention"),
    SLIDING("sliding_attention");

    private final String configName;

    AttentionKind(String configName) {
        this.configName = configName;
    }

    /** The name config.json's layer_types uses. */
    public String configName() {
        return configName;
    }
}
