package dev.cdas.bench;

import dev.cdas.Context;
import dev.cdas.DType;
import dev.cdas.Dii;
import dev.cdas.JsdSchedule;
import dev.cdas.LmHeadJsd;
import dev.cdas.Segments;
import dev.cdas.cli.RandomData;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Peak extra memory of one forward+backward call: the rise of the process's resident-set
 * high-water mark over its resident size just before the call, after all inputs and outputs are
 * allocated and touched. Linux only: writing 5 to /proc/self/clear_refs resets VmHWM. Run once
 * per (operation, implementation, shape) in a fresh JVM so nothing is cached from an earlier
 * call; prints one line "peak_extra_bytes=N workspace_bytes=M".
 *
 * usage: MemoryProbe lm-head|dii|train-step|train-step-cached IMPL SHAPE
 */
public final class MemoryProbe {
    private MemoryProbe() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 3) {
            System.err.println("usage: MemoryProbe lm-head|dii|train-step|train-step-cached IMPL SHAPE");
            System.exit(2);
        }
        String op = args[0];
        String impl = args[1];
        String shape = args[2];
        long[] result = switch (op) {
            case "lm-head" -> lmHead(impl, shape);
            case "dii" -> dii(impl, shape);
            case "train-step" -> trainStep(impl, shape, false);
            case "train-step-cached" -> trainStep(impl, shape, true);
            default -> throw new IllegalArgumentException("unknown operation " + op);
        };
        System.out.println("peak_extra_bytes=" + result[0] + " workspace_bytes=" + result[1]);
    }

    private static long[] lmHead(String impl, String shapeName) throws IOException {
        Shapes.Head s = Shapes.head(shapeName);
        LmHeadJsd.Shape dims = new LmHeadJsd.Shape(s.rows(), s.dim(), s.vocab());
        try (Arena arena = Arena.ofConfined()) {
            RandomData data = new RandomData(42);
            MemorySegment xs = data.gaussian(arena, s.rows() * s.dim(), 1.0);
            MemorySegment xt = data.perturbed(arena, xs, 0.3);
            MemorySegment head = data.gaussian(arena, s.vocab() * s.dim(), 1.0 / Math.sqrt(s.dim()));
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment grad = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
            grad.fill((byte) 0);
            if (impl.equals("torch-composed")) {
                // Load libtorch and warm its allocator paths on a tiny call before measuring.
                LmHeadJsd.baselineTorch(new LmHeadJsd.Shape(1, 1, 1), xs, xt, head, 0f, MemorySegment.NULL, 1f,
                        loss, MemorySegment.NULL, grad);
                long before = startMeasuring();
                LmHeadJsd.baselineTorch(dims, xs, xt, head, 0f, MemorySegment.NULL, 1f, loss, MemorySegment.NULL,
                        grad);
                return new long[] {peakSince(before), 0};
            }
            JsdSchedule schedule = switch (impl) {
                case "fused-chunked" -> JsdSchedule.CHUNKED;
                default -> throw new IllegalArgumentException("unknown impl " + impl);
            };
            try (Context context = Context.builder().jsdSchedule(schedule).build()) {
                long before = startMeasuring();
                LmHeadJsd.compute(context, DType.F32, dims, xs, xt, head, 0f, MemorySegment.NULL, 1f, loss,
                        MemorySegment.NULL, grad);
                return new long[] {peakSince(before), context.peakWorkspaceBytes()};
            }
        }
    }

    private static long[] dii(String impl, String shapeName) throws IOException {
        Shapes.Intervention s = Shapes.intervention(shapeName);
        Dii.Shape dims = new Dii.Shape(s.rows(), s.dim(), s.rank(), s.examples());
        try (Arena arena = Arena.ofConfined()) {
            RandomData data = new RandomData(7);
            MemorySegment h = data.gaussian(arena, s.rows() * s.dim(), 1.0);
            MemorySegment w = Segments.of(arena, data.unitRows((int) s.rank(), (int) s.dim()));
            MemorySegment source = data.gaussian(arena, s.examples() * s.dim(), 1.0);
            MemorySegment index = BenchData.exampleIndex(arena, s.rows(), s.examples());
            MemorySegment mask = BenchData.mask(arena, s.rows(), 16);
            MemorySegment g = data.gaussian(arena, s.rows() * s.dim(), 1.0);
            MemorySegment hOut = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
            MemorySegment gradH = arena.allocate(ValueLayout.JAVA_FLOAT, s.rows() * s.dim());
            MemorySegment gradW = arena.allocate(ValueLayout.JAVA_FLOAT, s.rank() * s.dim());
            hOut.fill((byte) 0);
            gradH.fill((byte) 0);
            if (impl.equals("torch-composed")) {
                Dii.Shape tiny = new Dii.Shape(1, 1, 1, 1);
                Dii.baselineTorch(tiny, h, w, source, index, mask, g, hOut, gradH, gradW);
                long before = startMeasuring();
                Dii.baselineTorch(dims, h, w, source, index, mask, g, hOut, gradH, gradW);
                return new long[] {peakSince(before), 0};
            }
            try (Context context = Context.cpu()) {
                long before = startMeasuring();
                Dii.forward(context, DType.F32, dims, h, w, source, MemorySegment.NULL, index, mask, hOut,
                        MemorySegment.NULL);
                Dii.backward(context, DType.F32, dims, h, w, source, MemorySegment.NULL, index, mask, g, gradH, gradW,
                        MemorySegment.NULL);
                return new long[] {peakSince(before), context.peakWorkspaceBytes()};
            }
        }
    }

    /**
     * One training step after a tiny warm-up step that loads libtorch and touches every weight page
     * (the memory-mapped checkpoint counts in the resident set once read). With the cache, the
     * states it holds (filled before measuring, as by the first epoch) are reported as the
     * second number, "workspace_bytes".
     */
    private static long[] trainStep(String impl, String shapeName, boolean cached) throws IOException {
        try (TrainingStep step = new TrainingStep(TrainingStep.shape(shapeName), TrainingStep.loss(impl), cached, 0)) {
            step.warmUp();
            long before = startMeasuring();
            step.step();
            return new long[] {peakSince(before), step.stateCacheBytes()};
        }
    }

    /** Resets the high-water mark and returns the resident size it starts from. */
    private static long startMeasuring() throws IOException {
        System.gc();
        Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        return statusKb("VmRSS:") * 1024;
    }

    private static long peakSince(long residentBefore) throws IOException {
        return Math.max(0, statusKb("VmHWM:") * 1024 - residentBefore);
    }

    private static long statusKb(String field) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith(field)) {
                return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
            }
        }
        throw new IOException("/proc/self/status has no " + field);
    }
}
