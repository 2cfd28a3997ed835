package dev.cdas.bench;

import dev.cdas.Dii;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_h;

import java.lang.foreign.MemorySegment;

/** The libtorch-composed DII baseline of cdas.h, which the library's Java API does not wrap. */
final class Baselines {
    private Baselines() {
    }

    static void dii(Dii.Shape s, MemorySegment h, MemorySegment w, MemorySegment source, MemorySegment exampleIndex,
                    MemorySegment mask, MemorySegment gradOut, MemorySegment hOut, MemorySegment gradH,
                    MemorySegment gradW) {
        NativeLibrary.load();
        Native.check(cdas_h.cdas_baseline_dii_torch(s.rows(), s.dim(), s.rank(), s.examples(), h, w, source,
                exampleIndex, mask, gradOut, hOut, gradH, gradW));
    }
}
