package dev.cdas.model;

/** What an intervention does to h_L on the positions it touches (cdas.h {@code cdas_intervention_mode}). */
public enum InterventionMode {
    /** {@code h + W^T (a_b - W h)}: the DII clamp of CDAS and DAS. */
    CLAMP,
    /** {@code h + W^T f_b}: additive steering (DiffMean, BiPO, RePS); takes values only. */
    ADD,
    /**
     * {@code h + R^T (M h + b - R h)}: LoReFT (Wu et al. 2024), R the directions, M and b the
     * intervention's {@code loreftWeight} and {@code loreftBias}; takes neither values nor source positions.
     */
    LOREFT,
    /**
     * {@code h - sum_k ReLU(w_k . h) / |w_k|^2 w_k}: RePS's suppression (Wu et al. 2025), the positive
     * component of h along each direction removed; takes neither values nor source positions.
     */
    NULL_OUT
}
