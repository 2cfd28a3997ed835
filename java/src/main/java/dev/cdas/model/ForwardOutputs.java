package dev.cdas.model;

/**
 * Flat fp32 outputs of a forward pass; null for what was not asked.
 *
 * @param hidden      h_L, the output of the asked block, B x T x d row-major, or null
 * @param finalHidden the final hidden states (after the last norm), B x T x d, or null
 * @param logits      the logits, B x T x V, or null
 */
public record ForwardOutputs(float[] hidden, float[] finalHidden, float[] logits) {
}
