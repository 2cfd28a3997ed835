package dev.cdas.model;

/** RMSNorm (weight only; Gemma scales by 1 + weight) or LayerNorm (weight and bias). */
public enum NormKind {
    RMS,
    LAYER
}
