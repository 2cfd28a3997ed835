package dev.cdas;

import dev.cdas.bindings.cdas_h;

import java.util.EnumSet;
import java.util.Set;

/** Optional parts built into libcdas ({@code cdas_build_features()}). */
public enum Feature {
    /** The libtorch runtime (model runtime, torch baselines). */
    TORCH(cdas_h.CDAS_FEATURE_TORCH()),
    /** CUDA kernels; a GPU may still be absent at run time. */
    CUDA(cdas_h.CDAS_FEATURE_CUDA());

    private final int bit;

    Feature(int bit) {
        this.bit = bit;
    }

    static Set<Feature> fromBits(int bits) {
        EnumSet<Feature> set = EnumSet.noneOf(Feature.class);
        for (Feature f : values()) {
            if ((bits & f.bit) != 0) {
                set.add(f);
            }
        }
        return set;
    }
}
