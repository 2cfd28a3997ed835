package dev.cdas.model;

/** What an intervention does to h_L on the positions it touches. */
public enum InterventionMode {
    /** {@code h + W^T (a_b - W h)}: the DII clamp of CDAS and DAS. */
    CLAMP,
    /** {@code h + W^T f_b}: additive steering (DiffMean); takes values only. */
    ADD
}
