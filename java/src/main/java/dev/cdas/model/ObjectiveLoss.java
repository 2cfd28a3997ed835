package dev.cdas.model;

/** The loss of {@link Model#cdasObjective}. */
public enum ObjectiveLoss {
    /** CDAS: JSD against the target over the vocabulary, by the fused LM-head + JSD kernel. */
    JSD,
    /** The same JSD composed from libtorch operations (the [rows x V] logits materialised): a baseline. */
    JSD_COMPOSED,
    /** DAS: mean cross-entropy of the base row's own next token at each compared row; the target is not read. */
    CROSS_ENTROPY
}
