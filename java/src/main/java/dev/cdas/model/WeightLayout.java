package dev.cdas.model;

import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_h;
import dev.cdas.bindings.cdas_weight_info;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * The transformers tensor names and shapes a config's checkpoint holds, as the native family
 * table says ({@code cdas_model_expected_weights}): the same list the runtime checks and binds.
 */
final class WeightLayout {
    private WeightLayout() {}

    static List<WeightSpec> expected(ModelConfig c) {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment config = NativeModelConfig.build(c, DType.F32, Device.CPU, 0, 0, arena);
            MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
            Native.check(cdas_h.cdas_model_expected_weights(config, MemorySegment.NULL, 0, count));
            long n = count.get(ValueLayout.JAVA_LONG, 0);
            MemorySegment infos = cdas_weight_info.allocateArray(n, arena);
            Native.check(cdas_h.cdas_model_expected_weights(config, infos, n, count));
            List<WeightSpec> out = new ArrayList<>((int) n);
            for (long i = 0; i < n; i++) {
                MemorySegment info = cdas_weight_info.asSlice(infos, i);
                long[] shape = new long[cdas_weight_info.ndim(info)];
                for (int k = 0; k < shape.length; k++) {
                    shape[k] = cdas_weight_info.shape(info).getAtIndex(ValueLayout.JAVA_LONG, k);
                }
                String alternative = cdas_weight_info.alternative_name(info).getString(0);
                out.add(new WeightSpec(cdas_weight_info.name(info).getString(0), shape, cdas_weight_info.optional(info) != 0,
                        alternative.isEmpty() ? null : alternative));
            }
            return List.copyOf(out);
        }
    }
}
