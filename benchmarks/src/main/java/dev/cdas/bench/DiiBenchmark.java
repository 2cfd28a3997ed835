package dev.cdas.bench;

import dev.cdas.Context;
import dev.cdas.DType;
import dev.cdas.Dii;
import dev.cdas.Segments;
import dev.cdas.cli.RandomData;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.TimeUnit;

/**
 * The rank-1 interchange intervention, forward then backward (h', dL/dh, dL/dw), fp32 on the
 * CPU: the fused kernels against the same math composed from libtorch operations.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class DiiBenchmark {
    @Param({"small", "gpt2", "gemma2b"})
    public String shape;

    @Param({"fused", "torch-composed"})
    public String impl;

    private Arena arena;
    private Context context;
    private Dii.Shape dims;
    private MemorySegment h;
    private MemorySegment w;
    private MemorySegment source;
    private MemorySegment exampleIndex;
    private MemorySegment mask;
    private MemorySegment gradOut;
    private MemorySegment hOut;
    private MemorySegment gradH;
    private MemorySegment gradW;

    @Setup(Level.Trial)
    public void setUp() {
        Shapes.Intervention s = Shapes.intervention(shape);
        dims = new Dii.Shape(s.rows(), s.dim(), s.rank(), s.examples());
        arena = Arena.ofShared();
        RandomData data = new RandomData(7);
        h = data.gaussian(arena, s.rows() * s.dim(), 1.0);
        w = Segments.of(arena, data.unitRows((int) s.rank(), (int) s.dim()));
        source = data.gaussian(arena, s.examples() * s.dim(), 1.0);
        exampleIndex = BenchData.exampleIndex(arena, s.rows(), s.examples());
        mask = BenchData.mask(arena, s.rows(), 16);
        gradOut = data.gaussian(arena, s.rows() * s.dim(), 1.0);
        hOut = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
        gradH = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
        gradW = arena.allocate(ValueLayout.JAVA_FLOAT, s.rank() * s.dim());
        context = switch (impl) {
            case "fused" -> Context.cpu();
            case "torch-composed" -> null;
            default -> throw new IllegalArgumentException("unknown impl " + impl);
        };
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        if (context != null) {
            context.close();
        }
        arena.close();
    }

    @Benchmark
    public float forwardBackward() {
        if (context == null) {
            Dii.baselineTorch(dims, h, w, source, exampleIndex, mask, gradOut, hOut, gradH, gradW);
        } else {
            Dii.forward(context, DType.F32, dims, h, w, source, MemorySegment.NULL, exampleIndex, mask, hOut,
                    MemorySegment.NULL);
            Dii.backward(context, DType.F32, dims, h, w, source, MemorySegment.NULL, exampleIndex, mask, gradOut,
                    gradH, gradW, MemorySegment.NULL);
        }
        return gradW.get(ValueLayout.JAVA_FLOAT, 0);
    }
}
