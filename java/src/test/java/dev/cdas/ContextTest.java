package dev.cdas;

import dev.cdas.bindings.cdas_context_options;
import dev.cdas.bindings.cdas_h;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ContextTest {

    @Test
    void closingTwiceIsFineAndUseAfterCloseFailsClearly() {
        Context context = Context.builder().threads(1).chunkRows(8).jsdSchedule(JsdSchedule.CHUNKED).build();
        assertFalse(context.isClosed());
        assertTrue(context.peakWorkspaceBytes() >= 0);
        context.synchronize();
        context.close();
        assertTrue(context.isClosed());
        assertDoesNotThrow(context::close);
        IllegalStateException e = assertThrows(IllegalStateException.class, context::handle);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalStateException.class, context::peakWorkspaceBytes);
        assertThrows(IllegalStateException.class, () -> LmHeadJsd.compute(context, new LmHeadJsd.Shape(1, 2, 3),
                new float[2], new float[2], new float[6], 0f, null, 1f, false));
    }

    @Test
    void cudaWithoutAGpuIsUnsupported() {
        Assumptions.assumeTrue(Cdas.cudaDeviceCount() == 0, "a GPU is present");
        UnsupportedFeatureException e = assertThrows(UnsupportedFeatureException.class,
                () -> Context.builder().device(Device.CUDA).build());
        assertEquals(Status.UNSUPPORTED, e.status());
        assertFalse(e.getMessage().isBlank());
    }

    @Test
    void builderRejectsNegativeSettings() {
        assertThrows(InvalidArgumentException.class, () -> Context.builder().threads(-1));
        assertThrows(InvalidArgumentException.class, () -> Context.builder().chunkRows(-8));
        assertThrows(InvalidArgumentException.class, () -> Context.builder().deviceIndex(-1));
        assertThrows(InvalidArgumentException.class, () -> Context.builder().device(null));
    }

    @Test
    void nativeRejectsABadScheduleInTheOptionsStruct() {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment options = cdas_context_options.allocate(arena);
            Native.check(cdas_h.cdas_context_options_default(options));
            assertEquals(cdas_h.CDAS_DEVICE_CPU(), cdas_context_options.device_type(options));
            cdas_context_options.jsd_schedule(options, 99);
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            int status = cdas_h.cdas_context_create(options, out);
            assertThrows(InvalidArgumentException.class, () -> Native.check(status));
        }
    }

    @Test
    void destroyAcceptsNull() {
        NativeLibrary.load();
        Native.check(cdas_h.cdas_context_destroy(MemorySegment.NULL));
    }

    @Test
    void manyContextsOpenAndCloseWithoutLeakingHandles() {
        for (int i = 0; i < 50; i++) {
            try (Context c = Context.builder().threads(1).build()) {
                assertTrue(c.peakWorkspaceBytes() >= 0);
            }
        }
    }
}
