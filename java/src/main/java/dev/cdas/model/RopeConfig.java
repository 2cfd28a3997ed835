package dev.cdas.model;

import java.util.Arrays;

/**
 * Rotary position embedding parameters, normalised from either transformers 5's
 * {@code rope_parameters} or the older top-level {@code rope_theta} + {@code rope_scaling}.
 *
 * @param type "default", "linear", "dynamic", "llama3", "longrope" or "yarn"
 * @param theta base frequency
 * @param factor scaling factor (1 for default)
 * @param lowFreqFactor llama3 only (else NaN)
 * @param highFreqFactor llama3 only (else NaN)
 * @param originalMaxPositions llama3/longrope/yarn: the pre-scaling context length (else 0)
 * @param partialRotaryFactor fraction of head_dim that is rotated (1 unless the config says)
 * @param shortFactor longrope only (else null)
 * @param longFactor longrope only (else null)
 */
public record RopeConfig(String type, double theta, double factor, double lowFreqFactor, double highFreqFactor,
        int originalMaxPositions, double partialRotaryFactor, double[] shortFactor, double[] longFactor) {

    public static final java.util.List<String> SUPPORTED_TYPES =
            java.util.List.of("default", "linear", "dynamic", "llama3", "longrope", "yarn");

    /** {@return whether the positions are scaled (every type but "default")} */
    public boolean isScaled() {
        return !type.equals("default");
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("rope(").append(type).append(", theta=").append(theta);
        if (isScaled()) {
            sb.append(", factor=").append(factor);
        }
        if (type.equals("llama3")) {
            sb.append(", low=").append(lowFreqFactor).append(", high=").append(highFreqFactor)
                    .append(", original_max=").append(originalMaxPositions);
        }
        if (partialRotaryFactor != 1.0) {
            sb.append(", partial=").append(partialRotaryFactor);
        }
        if (shortFactor != null) {
            sb.append(", short/long factors of ").append(shortFactor.length);
        }
        return sb.append(')').toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RopeConfig r && r.type.equals(type) && r.theta == theta && r.factor == factor
                && Double.compare(r.lowFreqFactor, lowFreqFactor) == 0 && Double.compare(r.highFreqFactor, highFreqFactor) == 0
                && r.originalMaxPositions == originalMaxPositions && r.partialRotaryFactor == partialRotaryFactor
                && Arrays.equals(r.shortFactor, shortFactor) && Arrays.equals(r.longFactor, longFactor);
    }

    @Override
    public int hashCode() {
        return type.hashCode() * 31 + Double.hashCode(theta);
    }
}
