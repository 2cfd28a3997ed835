package dev.cdas.model;

/** Flat fp32 outputs of a forward pass; null for what was not asked. */
public record ForwardOutputs(float[] hidden, float[] finalHidden, float[] logits) {
}
