package dev.cdas;

import dev.cdas.reference.DiiReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static dev.cdas.TestData.assertClose;
import static dev.cdas.TestData.toDouble;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** The DII kernels through the bindings against the double-precision reference. */
class DiiTest {
    private static final double RTOL = 1e-5;
    private static Context context;

    @BeforeAll
    static void open() {
        context = Context.cpu();
    }

    @AfterAll
    static void close() {
        context.close();
    }

    @ParameterizedTest(name = "T={0} d={1} r={2} B={3} source={4} masked={5}")
    @CsvSource({
        "41, 67, 1, 5, true, true",
        "41, 67, 1, 5, false, false",
        "41, 67, 3, 5, true, false",
        "41, 67, 3, 5, false, true",
        "1, 67, 1, 1, true, false",
        "1, 5, 3, 1, false, false",
        "200, 13, 2, 9, true, true",
    })
    void matchesReference(int rows, int dim, int rank, int examples, boolean withSource, boolean masked) {
        TestData data = new TestData();
        float[] h = data.gaussian(rows * dim, 1);
        float[] w = data.orthonormalRows(rank, dim);
        float[] source = withSource ? data.gaussian(examples * dim, 1) : null;
        float[] values = withSource ? null : data.gaussian(examples * rank, 2);
        int[] index = data.exampleIndex(rows, examples);
        boolean[] mask = masked ? data.mask(rows, 0.7) : null;
        float[] g = data.gaussian(rows * dim, 1);
        DiiReference.Forward rf = DiiReference.forward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), toDouble(values), index, mask);
        DiiReference.Gradients rg = DiiReference.backward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), toDouble(values), index, mask, toDouble(g));
        Dii.Shape shape = new Dii.Shape(rows, dim, rank, examples);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment hs = TestData.segment(arena, h);
            MemorySegment ws = TestData.segment(arena, w);
            MemorySegment ss = TestData.segment(arena, source);
            MemorySegment vs = TestData.segment(arena, values);
            MemorySegment is = arena.allocateFrom(ValueLayout.JAVA_INT, index);
            MemorySegment ms = Segments.of(arena, mask);
            MemorySegment hOut = TestData.poisoned(arena, (long) rows * dim);
            MemorySegment aOut = TestData.poisoned(arena, (long) examples * rank);
            Dii.forward(context, DType.F32, shape, hs, ws, ss, vs, is, ms, hOut, aOut);
            assertClose("h'", hOut.toArray(ValueLayout.JAVA_FLOAT), rf.hOut(), RTOL, 1e-7, data.seed);
            assertClose("a", aOut.toArray(ValueLayout.JAVA_FLOAT), rf.clampValues(), RTOL, 1e-7, data.seed);

            MemorySegment gh = TestData.poisoned(arena, (long) rows * dim);
            MemorySegment gw = TestData.poisoned(arena, (long) rank * dim);
            MemorySegment ga = TestData.poisoned(arena, (long) examples * rank);
            Dii.backward(context, DType.F32, shape, hs, ws, ss, vs, is, ms, TestData.segment(arena, g), gh, gw, ga);
            assertClose("dL/dh", gh.toArray(ValueLayout.JAVA_FLOAT), rg.gradH(), RTOL, 1e-7, data.seed);
            assertClose("dL/dW", gw.toArray(ValueLayout.JAVA_FLOAT), rg.gradDirections(), RTOL, 1e-6, data.seed);
            assertClose("dL/da", ga.toArray(ValueLayout.JAVA_FLOAT), rg.gradValues(), RTOL, 1e-7, data.seed);

            // Each gradient is optional; asking for one alone gives the same numbers.
            MemorySegment gwOnly = TestData.poisoned(arena, (long) rank * dim);
            Dii.backward(context, DType.F32, shape, hs, ws, ss, vs, is, ms, TestData.segment(arena, g), null, gwOnly,
                    null);
            assertArrayEquals(gw.toArray(ValueLayout.JAVA_FLOAT), gwOnly.toArray(ValueLayout.JAVA_FLOAT),
                    "dL/dW alone must match dL/dW with the others (deterministic reduction)");
        }
    }

    @Test
    void torchBaselineMatchesReference() {
        org.junit.jupiter.api.Assumptions.assumeTrue(Cdas.features().contains(Feature.TORCH), "built without libtorch");
        TestData data = new TestData();
        int rows = 29, dim = 17, rank = 2, examples = 3;
        float[] h = data.gaussian(rows * dim, 1);
        float[] w = data.orthonormalRows(rank, dim);
        float[] source = data.gaussian(examples * dim, 1);
        int[] index = data.exampleIndex(rows, examples);
        boolean[] mask = data.mask(rows, 0.7);
        float[] g = data.gaussian(rows * dim, 1);
        DiiReference.Forward rf = DiiReference.forward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), null, index, mask);
        DiiReference.Gradients rg = DiiReference.backward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), null, index, mask, toDouble(g));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment hOut = TestData.poisoned(arena, (long) rows * dim);
            MemorySegment gh = TestData.poisoned(arena, (long) rows * dim);
            MemorySegment gw = TestData.poisoned(arena, (long) rank * dim);
            Dii.baselineTorch(new Dii.Shape(rows, dim, rank, examples), TestData.segment(arena, h),
                    TestData.segment(arena, w), TestData.segment(arena, source),
                    arena.allocateFrom(ValueLayout.JAVA_INT, index), Segments.of(arena, mask),
                    TestData.segment(arena, g), hOut, gh, gw);
            assertClose("torch h'", hOut.toArray(ValueLayout.JAVA_FLOAT), rf.hOut(), RTOL, 1e-7, data.seed);
            assertClose("torch dL/dh", gh.toArray(ValueLayout.JAVA_FLOAT), rg.gradH(), RTOL, 1e-7, data.seed);
            assertClose("torch dL/dW", gw.toArray(ValueLayout.JAVA_FLOAT), rg.gradDirections(), RTOL, 1e-6, data.seed);
        }
    }

    @Test
    void forwardInPlaceEqualsOutOfPlace() {
        TestData data = new TestData();
        int rows = 23, dim = 19, rank = 2, examples = 4;
        float[] h = data.gaussian(rows * dim, 1);
        float[] w = data.orthonormalRows(rank, dim);
        float[] source = data.gaussian(examples * dim, 1);
        int[] index = data.exampleIndex(rows, examples);
        boolean[] mask = data.mask(rows, 0.5);
        Dii.Shape shape = new Dii.Shape(rows, dim, rank, examples);
        Dii.Forward outOfPlace = Dii.forward(context, shape, h, w, source, null, index, mask);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment hs = TestData.segment(arena, h);
            Dii.forward(context, DType.F32, shape, hs, TestData.segment(arena, w), TestData.segment(arena, source),
                    null, arena.allocateFrom(ValueLayout.JAVA_INT, index), Segments.of(arena, mask), hs, null);
            assertArrayEquals(outOfPlace.hOut(), hs.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    @ParameterizedTest(name = "rank {0}")
    @CsvSource({"1", "3"})
    void setsTheSubspaceToAAndLeavesTheComplement(int rank) {
        TestData data = new TestData();
        int rows = 31, dim = 45, examples = 3;
        float[] h = data.gaussian(rows * dim, 1);
        float[] w = data.orthonormalRows(rank, dim);
        float[] values = data.gaussian(examples * rank, 2);
        int[] index = data.exampleIndex(rows, examples);
        boolean[] mask = data.mask(rows, 0.7);
        Dii.Forward f = Dii.forward(context, new Dii.Shape(rows, dim, rank, examples), h, w, null, values, index,
                mask);
        for (int t = 0; t < rows; t++) {
            if (!mask[t]) {
                for (int j = 0; j < dim; j++) {
                    assertEquals(h[t * dim + j], f.hOut()[t * dim + j], "masked-off row " + t + " passes through");
                }
                continue;
            }
            double[] delta = new double[dim];
            for (int j = 0; j < dim; j++) {
                delta[j] = f.hOut()[t * dim + j] - h[t * dim + j];
            }
            for (int k = 0; k < rank; k++) {
                double whOut = 0, c = 0;
                for (int j = 0; j < dim; j++) {
                    whOut += w[k * dim + j] * f.hOut()[t * dim + j];
                    c += w[k * dim + j] * delta[j];
                }
                assertEquals(values[index[t] * rank + k], whOut, 1e-4, "W h' = a at row " + t + " (seed " + data.seed + ")");
                for (int j = 0; j < dim; j++) {
                    delta[j] -= c * w[k * dim + j];
                }
            }
            for (int j = 0; j < dim; j++) {
                assertEquals(0, delta[j], 1e-5, "orthogonal complement changed at row " + t + " (seed " + data.seed + ")");
            }
        }
    }
}
