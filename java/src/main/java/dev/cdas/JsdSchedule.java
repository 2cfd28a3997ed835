package dev.cdas;

import dev.cdas.bindings.cdas_h;

/**
 * How the LM-head JSD walks the T x V logits (see cdas.h). There is one schedule today, token
 * chunks whose fp32 logits live in a bounded workspace (3 head products); AUTO lets the library
 * choose and names the same one. (A vocabulary-tiled schedule that never stored the logits was
 * removed: it needed 6-7 head products.)
 */
public enum JsdSchedule {
    /** Let the library choose. */
    AUTO(cdas_h.CDAS_JSD_SCHEDULE_AUTO()),
    /** Token chunks whose fp32 logits live in a workspace: 3 head products. */
    CHUNKED(cdas_h.CDAS_JSD_SCHEDULE_CHUNKED());

    private final int code;

    JsdSchedule(int code) {
        this.code = code;
    }

    /**
     * The schedule's value in the C ABI ({@code cdas_jsd_schedule}).
     *
     * @return the {@code CDAS_JSD_SCHEDULE_*} constant
     */
    public int code() {
        return code;
    }
}
