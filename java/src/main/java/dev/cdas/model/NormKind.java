package dev.cdas.model;

/** RMSNorm (weight only; Gemma scales by 1 + weight) or LayerNorm (weight and bias). */
public enum NormKind {
    /** RMSNorm: x / rms(x) times a weight, no bias or mean. */
    RMS,
    /** LayerNorm: (x - mean) / std times a weight plus a bias. */
    LAYER
}
