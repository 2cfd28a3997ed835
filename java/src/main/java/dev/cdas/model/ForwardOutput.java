package dev.cdas.model;

/** What a forward pass writes. */
public enum ForwardOutput {
    /** h_L after block {@code hiddenLayer} (after the clamp when it is at that layer), [B x T x d]. */
    HIDDEN,
    /** Hidden states after the final norm, [B x T x d]. */
    FINAL_HIDDEN,
    /** Logits after any final soft-cap, [B x T x V]. */
    LOGITS
}
