package dev.cdas.bench;

import dev.cdas.Context;
import dev.cdas.DType;
import dev.cdas.JsdSchedule;
import dev.cdas.LmHeadJsd;
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
 * LM head + JSD, forward and backward (loss and dL/dx_student), fp32 on the CPU: the fused
 * kernel (the chunked schedule) against the same math composed from libtorch operations, through the
 * bindings, in the same JVM. Mode.SampleTime so the report carries the median.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 5, time = 3)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class LmHeadJsdBenchmark {
    @Param({"small", "gpt2"})
    public String shape;

    @Param({"fused-chunked", "torch-composed"})
    public String impl;

    /** Gemma-2 style soft-cap (30) or none (0). */
    @Param({"0"})
    public float softcap;

    private Arena arena;
    private Context context;
    private LmHeadJsd.Shape dims;
    private MemorySegment xStudent;
    private MemorySegment xTeacher;
    private MemorySegment head;
    private MemorySegment loss;
    private MemorySegment grad;

    @Setup(Level.Trial)
    public void setUp() {
        Shapes.Head s = Shapes.head(shape);
        dims = new LmHeadJsd.Shape(s.rows(), s.dim(), s.vocab());
        arena = Arena.ofShared();
        RandomData data = new RandomData(42);
        xStudent = data.gaussian(arena, s.rows() * s.dim(), 1.0);
        xTeacher = data.perturbed(arena, xStudent, 0.3);
        head = data.gaussian(arena, s.vocab() * s.dim(), 1.0 / Math.sqrt(s.dim()));
        loss = arena.allocate(ValueLayout.JAVA_FLOAT);
        grad = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
        context = switch (impl) {
            case "fused-chunked" -> Context.builder().jsdSchedule(JsdSchedule.CHUNKED).build();
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
            LmHeadJsd.baselineTorch(dims, xStudent, xTeacher, head, softcap, MemorySegment.NULL, 1f, loss,
                    MemorySegment.NULL, grad);
        } else {
            LmHeadJsd.compute(context, DType.F32, dims, xStudent, xTeacher, head, softcap, MemorySegment.NULL, 1f,
                    loss, MemorySegment.NULL, grad);
        }
        return loss.get(ValueLayout.JAVA_FLOAT, 0);
    }
}
