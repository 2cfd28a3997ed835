package dev.cdas;

import dev.cdas.bindings.cdas_h;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad arguments become typed exceptions with useful messages, whether Java or native catches
 * them, and never take the JVM down.
 */
class ErrorHandlingTest {
    private static final int T = 6, D = 5, V = 11;
    private static Context context;

    @BeforeAll
    static void open() {
        context = Context.cpu();
    }

    @AfterAll
    static void close() {
        context.close();
    }

    // ---- the one status -> exception mapping ----

    @ParameterizedTest
    @EnumSource(value = Status.class, names = "OK", mode = EnumSource.Mode.EXCLUDE)
    void everyStatusMapsToItsOwnException(Status status) {
        CdasException e = Native.exception(status, status.code(), "native says why");
        assertEquals(status, e.status());
        assertEquals("native says why", e.getMessage());
        Class<? extends CdasException> expected = switch (status) {
            case INVALID_ARGUMENT -> InvalidArgumentException.class;
            case NON_FINITE -> NonFiniteException.class;
            case OUT_OF_MEMORY -> OutOfMemoryException.class;
            case UNSUPPORTED -> UnsupportedFeatureException.class;
            case DEVICE_ERROR -> DeviceException.class;
            case IO_ERROR -> NativeIOException.class;
            case INTERNAL -> InternalException.class;
            case OK -> throw new AssertionError();
        };
        assertInstanceOf(expected, e);
    }

    @Test
    void unknownStatusIsInternalAndNamesTheCode() {
        CdasException e = assertThrows(InternalException.class, () -> Native.check(4242));
        assertTrue(e.getMessage().contains("4242"), e.getMessage());
    }

    @Test
    void okDoesNotThrowAndLeavesNoMessage() {
        NativeLibrary.load();
        Native.check(cdas_h.CDAS_STATUS_OK());
        context.peakWorkspaceBytes();
        assertEquals("", Native.lastError());
    }

    // ---- caught in Java before any native call ----

    @Test
    void nonPositiveSizesAreRejected() {
        assertThrows(InvalidArgumentException.class, () -> new LmHeadJsd.Shape(0, D, V));
        assertThrows(InvalidArgumentException.class, () -> new LmHeadJsd.Shape(T, -1, V));
        assertThrows(InvalidArgumentException.class, () -> new Dii.Shape(T, D, 0, 1));
        assertThrows(InvalidArgumentException.class, () -> new Dii.Shape(T, D, 1, -3));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> new LmHeadJsd.Shape(1L << 40, 1L << 40, V));
        assertTrue(e.getMessage().contains("overflows"), e.getMessage());
    }

    @Test
    void mismatchedArrayLengthsNameTheArray() {
        LmHeadJsd.Shape shape = new LmHeadJsd.Shape(T, D, V);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(context,
                shape, new float[T * D], new float[T * D - 1], new float[V * D], 0f, null, 1f, true));
        assertTrue(e.getMessage().contains("xTeacher"), e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(context, shape, new float[T * D],
                new float[T * D], new float[V * D], 0f, new boolean[T + 1], 1f, true));
        assertTrue(e.getMessage().contains("mask"), e.getMessage());
        Dii.Shape dii = new Dii.Shape(T, D, 1, 2);
        e = assertThrows(InvalidArgumentException.class, () -> Dii.forward(context, dii, new float[T * D],
                new float[D], new float[2 * D], null, new int[T - 1], null));
        assertTrue(e.getMessage().contains("exampleIndex"), e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> Dii.forward(context, dii, new float[T * D],
                new float[D], new float[2 * D], new float[2], new int[T], null));
        assertTrue(e.getMessage().contains("exactly one"), e.getMessage());
        e = assertThrows(InvalidArgumentException.class, () -> Dii.forward(context, dii, new float[T * D],
                new float[D], null, new float[2], new int[] {0, 1, 2, 0, 1, 0}, null));
        assertTrue(e.getMessage().contains("exampleIndex[2]"), e.getMessage());
    }

    @Test
    void nullAndUndersizedSegmentsAreRejected() {
        LmHeadJsd.Shape shape = new LmHeadJsd.Shape(T, D, V);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(ValueLayout.JAVA_FLOAT, T * D);
            MemorySegment head = arena.allocate(ValueLayout.JAVA_FLOAT, V * D);
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(context,
                    DType.F32, shape, null, x, head, 0f, null, 1f, loss, null, null));
            assertTrue(e.getMessage().contains("xStudent"), e.getMessage());
            e = assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(context, DType.F32, shape, x, x,
                    head.asSlice(0, 8), 0f, null, 1f, loss, null, null));
            assertTrue(e.getMessage().contains("head"), e.getMessage());
            e = assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(context, DType.F32, shape, x, x,
                    head, 0f, null, 1f, MemorySegment.ofArray(new float[1]), null, null));
            assertTrue(e.getMessage().contains("heap"), e.getMessage());
            assertThrows(InvalidArgumentException.class, () -> LmHeadJsd.compute(null, shape, new float[T * D],
                    new float[T * D], new float[V * D], 0f, null, 1f, true));
        }
    }

    // ---- caught by native: the status and cdas_last_error() come through ----

    @Test
    void nativeRejectsNullPointersAndBadSizesWithAMessage() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment x = arena.allocate(ValueLayout.JAVA_FLOAT, T * D);
            MemorySegment head = arena.allocate(ValueLayout.JAVA_FLOAT, V * D);
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment ctx = context.handle();
            int status = cdas_h.cdas_lm_head_jsd(ctx, DType.F32.code(), T, D, V, MemorySegment.NULL, x, head, 0f,
                    MemorySegment.NULL, 1f, loss, MemorySegment.NULL, MemorySegment.NULL);
            assertNativeFailure(InvalidArgumentException.class, status);
            status = cdas_h.cdas_lm_head_jsd(ctx, DType.F32.code(), 0, D, V, x, x, head, 0f, MemorySegment.NULL, 1f,
                    loss, MemorySegment.NULL, MemorySegment.NULL);
            assertNativeFailure(InvalidArgumentException.class, status);
            status = cdas_h.cdas_lm_head_jsd(ctx, 99, T, D, V, x, x, head, 0f, MemorySegment.NULL, 1f, loss,
                    MemorySegment.NULL, MemorySegment.NULL);
            assertNativeFailure(InvalidArgumentException.class, status);
            status = cdas_h.cdas_lm_head_jsd(MemorySegment.NULL, DType.F32.code(), T, D, V, x, x, head, 0f,
                    MemorySegment.NULL, 1f, loss, MemorySegment.NULL, MemorySegment.NULL);
            assertNativeFailure(InvalidArgumentException.class, status);
            status = cdas_h.cdas_dii_forward(ctx, DType.F32.code(), T, D, -1, 1, x, head, x, MemorySegment.NULL,
                    arena.allocate(ValueLayout.JAVA_INT, T), MemorySegment.NULL, x, MemorySegment.NULL);
            assertNativeFailure(InvalidArgumentException.class, status);
        }
    }

    @Test
    void exampleIndexOutOfRangeIsRejectedByNative() {
        Dii.Shape shape = new Dii.Shape(T, D, 1, 2);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment h = arena.allocate(ValueLayout.JAVA_FLOAT, T * D);
            MemorySegment w = arena.allocateFrom(ValueLayout.JAVA_FLOAT, 1, 0, 0, 0, 0);
            MemorySegment values = arena.allocate(ValueLayout.JAVA_FLOAT, 2);
            MemorySegment index = arena.allocateFrom(ValueLayout.JAVA_INT, 0, 1, 7, 0, 1, 0);
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> Dii.forward(context,
                    DType.F32, shape, h, w, null, values, index, null, h, null));
            assertFalse(e.getMessage().isBlank());
        }
    }

    @Test
    void nanInputsRaiseNonFiniteWithTheNativeMessage() {
        TestData data = new TestData();
        float[] xs = data.gaussian(T * D, 1);
        xs[7] = Float.NaN;
        NonFiniteException e = assertThrows(NonFiniteException.class, () -> LmHeadJsd.compute(context,
                new LmHeadJsd.Shape(T, D, V), xs, data.gaussian(T * D, 1), data.gaussian(V * D, 1), 0f, null, 1f,
                true));
        assertEquals(Status.NON_FINITE, e.status());
        assertFalse(e.getMessage().isBlank());
        assertFalse(e.getMessage().contains("no message"), "the message must come from cdas_last_error()");

        float[] h = data.gaussian(T * D, 1);
        h[3] = Float.POSITIVE_INFINITY;
        e = assertThrows(NonFiniteException.class, () -> Dii.forward(context, new Dii.Shape(T, D, 1, 1), h,
                data.orthonormalRows(1, D), null, new float[] {1f}, new int[T], null));
        assertFalse(e.getMessage().contains("no message"), e.getMessage());
        // The context stays usable after a failed call.
        Dii.forward(context, new Dii.Shape(T, D, 1, 1), data.gaussian(T * D, 1), data.orthonormalRows(1, D), null,
                new float[] {1f}, new int[T], null);
        assertEquals("", Native.lastError());
    }

    private static void assertNativeFailure(Class<? extends CdasException> type, int status) {
        assertTrue(status != cdas_h.CDAS_STATUS_OK(), "native accepted a bad argument");
        CdasException e = assertThrows(type, () -> Native.check(status));
        assertFalse(e.getMessage().isBlank());
        assertFalse(e.getMessage().contains("no message"), "cdas_last_error() was empty after status " + status);
    }
}
