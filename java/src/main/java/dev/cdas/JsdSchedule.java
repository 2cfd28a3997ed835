package dev.cdas;

import dev.cdas.bindings.cdas_h;

/** How the LM-head JSD walks the T x V logits (see cdas.h). */
public enum JsdSchedule {
    /** Let the library choose. */
    AUTO(cdas_h.CDAS_JSD_SCHEDULE_AUTO()),
    /** Token chunks whose fp32 logits live in a workspace: 3 head products. */
    CHUNKED(cdas_h.CDAS_JSD_SCHEDULE_CHUNKED()),
    /** Vocabulary tiles with online log-sum-exp, logits never stored: 6 head products. */
    FUSED(cdas_h.CDAS_JSD_SCHEDULE_FUSED());

    private final int code;

    JsdSchedule(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
