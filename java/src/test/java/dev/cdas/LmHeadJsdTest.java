package dev.cdas;

import dev.cdas.reference.JsdReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static dev.cdas.TestData.assertClose;
import static dev.cdas.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The fused LM-head JSD through the bindings against the double-precision reference. */
class LmHeadJsdTest {
    private static final double RTOL = 1e-4;
    private static final Map<JsdSchedule, Context> CONTEXTS = new EnumMap<>(JsdSchedule.class);

    @BeforeAll
    static void openContexts() {
        for (JsdSchedule s : JsdSchedule.values()) {
            // Small chunks so the chunked schedule crosses chunk boundaries even at T = 41.
            CONTEXTS.put(s, Context.builder().jsdSchedule(s).chunkRows(s == JsdSchedule.CHUNKED ? 16 : 0).build());
        }
    }

    @AfterAll
    static void closeContexts() {
        CONTEXTS.values().forEach(Context::close);
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        for (JsdSchedule s : JsdSchedule.values()) {
            cases.add(Arguments.of(s, 41, 67, 1271, 0f, false, 1f));
            cases.add(Arguments.of(s, 41, 67, 1271, 2.5f, true, 0.37f));
            cases.add(Arguments.of(s, 41, 67, 1271, 30f, true, -1.5f));
            cases.add(Arguments.of(s, 1, 67, 1271, 2.5f, false, 3f));
            cases.add(Arguments.of(s, 7, 5, 3, 0f, true, 1f));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}: T={1} d={2} V={3} softcap={4} masked={5} gradScale={6}")
    @MethodSource("cases")
    void matchesReference(JsdSchedule schedule, int rows, int dim, int vocab, float softcap, boolean masked,
                          float gradScale) {
        TestData data = new TestData();
        float[] xs = data.gaussian(rows * dim, 1);
        float[] xt = data.gaussian(rows * dim, 1);
        // Logits of a few units so the soft-cap at 2.5 actually bends them.
        float[] head = data.gaussian(vocab * dim, 3 / Math.sqrt(dim));
        boolean[] mask = masked ? data.mask(rows, 0.7) : null;
        Context context = CONTEXTS.get(schedule);
        JsdReference.Result ref = JsdReference.compute(rows, dim, vocab, toDouble(xs), toDouble(xt), toDouble(head),
                softcap, mask, gradScale);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment loss = TestData.poisoned(arena, 1);
            MemorySegment rowLoss = TestData.poisoned(arena, rows);
            MemorySegment grad = TestData.poisoned(arena, (long) rows * dim);
            MemorySegment maskBytes = Segments.of(arena, mask);
            LmHeadJsd.compute(context, DType.F32, new LmHeadJsd.Shape(rows, dim, vocab),
                    TestData.segment(arena, xs), TestData.segment(arena, xt), TestData.segment(arena, head), softcap,
                    maskBytes, gradScale, loss, rowLoss, grad);
            assertClose("loss", new float[] {loss.get(ValueLayout.JAVA_FLOAT, 0)}, new double[] {ref.loss()}, RTOL,
                    1e-7, data.seed);
            assertClose("rowLoss", rowLoss.toArray(ValueLayout.JAVA_FLOAT), ref.rowLoss(), RTOL, 1e-7, data.seed);
            assertClose("gradStudent", grad.toArray(ValueLayout.JAVA_FLOAT), ref.gradStudent(), RTOL, 1e-9,
                    data.seed);

            // Forward only: the loss is the same and nothing else is needed.
            MemorySegment lossOnly = TestData.poisoned(arena, 1);
            LmHeadJsd.compute(context, DType.F32, new LmHeadJsd.Shape(rows, dim, vocab),
                    TestData.segment(arena, xs), TestData.segment(arena, xt), TestData.segment(arena, head), softcap,
                    maskBytes, gradScale, lossOnly, null, null);
            assertEquals(loss.get(ValueLayout.JAVA_FLOAT, 0), lossOnly.get(ValueLayout.JAVA_FLOAT, 0),
                    1e-6 * Math.max(1e-3, Math.abs(ref.loss())));
        }
    }

    @Test
    void arrayApiMatchesReferenceAndTorchBaseline() {
        TestData data = new TestData();
        int rows = 13, dim = 33, vocab = 517;
        float[] xs = data.gaussian(rows * dim, 1);
        float[] xt = data.gaussian(rows * dim, 1);
        float[] head = data.gaussian(vocab * dim, 0.5);
        boolean[] mask = data.mask(rows, 0.6);
        LmHeadJsd.Shape shape = new LmHeadJsd.Shape(rows, dim, vocab);
        LmHeadJsd.Result fused = LmHeadJsd.compute(CONTEXTS.get(JsdSchedule.AUTO), shape, xs, xt, head, 5f, mask,
                0.5f, true);
        JsdReference.Result ref = JsdReference.compute(rows, dim, vocab, toDouble(xs), toDouble(xt), toDouble(head),
                5f, mask, 0.5f);
        assertClose("loss", new float[] {fused.loss()}, new double[] {ref.loss()}, RTOL, 1e-7, data.seed);
        assertClose("gradStudent", fused.gradStudent(), ref.gradStudent(), RTOL, 1e-9, data.seed);
        if (Cdas.features().contains(Feature.TORCH)) {
            LmHeadJsd.Result torch = LmHeadJsd.baselineTorch(shape, xs, xt, head, 5f, mask, 0.5f, true);
            assertClose("torch loss", new float[] {torch.loss()}, new double[] {ref.loss()}, RTOL, 1e-7, data.seed);
            assertClose("torch rowLoss", torch.rowLoss(), ref.rowLoss(), RTOL, 1e-7, data.seed);
            assertClose("torch gradStudent", torch.gradStudent(), ref.gradStudent(), RTOL, 1e-9, data.seed);
        }
    }

    @Test
    void identicalInputsGiveZeroLossAndGradient() {
        TestData data = new TestData();
        int rows = 9, dim = 21, vocab = 301;
        float[] x = data.gaussian(rows * dim, 1);
        float[] head = data.gaussian(vocab * dim, 1);
        LmHeadJsd.Result r = LmHeadJsd.compute(CONTEXTS.get(JsdSchedule.AUTO), new LmHeadJsd.Shape(rows, dim, vocab),
                x, x.clone(), head, 0f, null, 1f, true);
        assertEquals(0, r.loss(), 1e-6);
        for (float g : r.gradStudent()) {
            assertEquals(0, g, 1e-6);
        }
    }

    @Test
    void lossIsSymmetricAndEveryRowWithinZeroAndLn2() {
        TestData data = new TestData();
        int rows = 17, dim = 12, vocab = 257;
        float[] a = data.gaussian(rows * dim, 1);
        float[] b = data.gaussian(rows * dim, 1);
        float[] head = data.gaussian(vocab * dim, 20); // near-one-hot distributions push JSD toward ln 2
        LmHeadJsd.Shape shape = new LmHeadJsd.Shape(rows, dim, vocab);
        for (JsdSchedule s : JsdSchedule.values()) {
            LmHeadJsd.Result ab = LmHeadJsd.compute(CONTEXTS.get(s), shape, a, b, head, 0f, null, 1f, false);
            LmHeadJsd.Result ba = LmHeadJsd.compute(CONTEXTS.get(s), shape, b, a, head, 0f, null, 1f, false);
            assertEquals(ab.loss(), ba.loss(), 1e-5, s + ": JSD symmetry (seed " + data.seed + ")");
            for (float row : ab.rowLoss()) {
                assertTrue(row >= -1e-6 && row <= Math.log(2) + 1e-5,
                        s + ": row JSD " + row + " outside [0, ln 2] (seed " + data.seed + ")");
            }
        }
    }

    @Test
    void everyRowMaskedGivesZeroLossAndZeroGradient() {
        TestData data = new TestData();
        int rows = 5, dim = 8, vocab = 40;
        LmHeadJsd.Result r = LmHeadJsd.compute(CONTEXTS.get(JsdSchedule.AUTO), new LmHeadJsd.Shape(rows, dim, vocab),
                data.gaussian(rows * dim, 1), data.gaussian(rows * dim, 1), data.gaussian(vocab * dim, 1), 0f,
                new boolean[rows], 1f, true);
        assertEquals(0, r.loss());
        for (float g : r.gradStudent()) {
            assertEquals(0, g);
        }
    }

    @Test
    void workspaceStaysFarBelowTheFullLogits() {
        TestData data = new TestData();
        int rows = 64, dim = 16, vocab = 4099;
        try (Context context = Context.builder().chunkRows(8).build()) {
            LmHeadJsd.compute(context, new LmHeadJsd.Shape(rows, dim, vocab), data.gaussian(rows * dim, 1),
                    data.gaussian(rows * dim, 1), data.gaussian(vocab * dim, 1), 0f, null, 1f, true);
            long fullLogits = 2L * rows * vocab * Float.BYTES;
            long peak = context.peakWorkspaceBytes();
            assertTrue(peak >= 0 && peak < fullLogits,
                    "peak workspace " + peak + " B should stay below the full logits' " + fullLogits + " B");
        }
    }
}
