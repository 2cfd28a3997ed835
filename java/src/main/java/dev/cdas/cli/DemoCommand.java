package dev.cdas.cli;

import dev.cdas.Context;
import dev.cdas.DType;
import dev.cdas.Dii;
import dev.cdas.JsdSchedule;
import dev.cdas.LmHeadJsd;
import dev.cdas.NativeLibrary;
import dev.cdas.UnsupportedFeatureException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * Until the trainer exists, the command that shows the native path works on this machine: both
 * fused operations checked against the Java references, then timed at a realistic shape next to
 * the libtorch baseline.
 */
@Command(name = "demo", mixinStandardHelpOptions = true,
        header = "Checks and times the fused kernels on random data.",
        description = "Runs both fused operations on random data on the CPU: checks them against the Java"
                + " double-precision references at a small shape, then reports loss, gradient norms, median"
                + " timings, the libtorch baseline and the peak workspace at a realistic shape.")
final class DemoCommand implements Callable<Integer> {

    @Option(names = "--rows", defaultValue = "128", description = "LM-head tokens T (default: ${DEFAULT-VALUE})")
    long rows;

    @Option(names = "--dim", defaultValue = "768", description = "hidden width d (default: ${DEFAULT-VALUE})")
    long dim;

    @Option(names = "--vocab", defaultValue = "32000", description = "vocabulary V (default: ${DEFAULT-VALUE})")
    long vocab;

    @Option(names = "--softcap", defaultValue = "30", description = "logit soft-cap, 0 = off (default: ${DEFAULT-VALUE})")
    float softcap;

    @Option(names = "--dii-rows", defaultValue = "4096", description = "DII tokens (default: ${DEFAULT-VALUE})")
    long diiRows;

    @Option(names = "--dii-dim", defaultValue = "2304", description = "DII hidden width (default: ${DEFAULT-VALUE})")
    long diiDim;

    @Option(names = "--rank", defaultValue = "1", description = "DII rank r (default: ${DEFAULT-VALUE})")
    long rank;

    @Option(names = "--threads", defaultValue = "0", description = "CPU threads, 0 = all cores (default: ${DEFAULT-VALUE})")
    int threads;

    @Option(names = "--schedule", defaultValue = "AUTO",
            description = "JSD schedule: ${COMPLETION-CANDIDATES} (default: ${DEFAULT-VALUE})")
    JsdSchedule schedule;

    @Option(names = "--repeat", defaultValue = "3", description = "timed runs per measurement (default: ${DEFAULT-VALUE})")
    int repeat;

    @Option(names = "--seed", defaultValue = "42", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--no-baseline", description = "skip the libtorch baseline")
    boolean noBaseline;

    @Override
    public Integer call() {
        dev.cdas.Args.threads("--threads", threads);
        NativeLibrary.Info lib = NativeLibrary.load();
        print("cdas-native %s, features %s, loaded from %s", lib.versionString(), lib.features(), lib.path());
        try (Context context = Context.builder().threads(threads).jsdSchedule(schedule).build()) {
            print("context: %s", context);
            boolean correct = referenceCheck(context);
            lmHeadJsd(context);
            dii(context);
            print("");
            print(correct ? "demo finished: kernels match the references"
                    : "demo finished: KERNELS DISAGREE WITH THE REFERENCES (see above)");
            return correct ? 0 : 1;
        }
    }

    private boolean referenceCheck(Context context) {
        print("");
        print("== correctness against double-precision Java references (relative error, tolerance %.0e)",
                ReferenceCheck.TOLERANCE);
        List<ReferenceCheck.Comparison> results = ReferenceCheck.run(context, seed);
        boolean all = true;
        for (ReferenceCheck.Comparison c : results) {
            print("  %-60s %9.2e  %s", c.quantity(), c.relativeError(), c.passed() ? "ok" : "FAILED");
            all &= c.passed();
        }
        return all;
    }

    private void lmHeadJsd(Context context) {
        LmHeadJsd.Shape shape = new LmHeadJsd.Shape(rows, dim, vocab);
        print("");
        print("== LM head + soft-cap + JSD, forward and backward, %s, soft-cap %s", shape,
                softcap > 0 ? softcap : "off");
        RandomData random = new RandomData(seed + 1);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment xs = random.gaussian(arena, rows * dim, 1);
            MemorySegment xt = random.perturbed(arena, xs, 0.5);
            // Logits of a few units, like a trained model's: entries of W ~ N(0, 3^2 / d).
            MemorySegment head = random.gaussian(arena, vocab * dim, 3 / Math.sqrt(dim));
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment rowLoss = arena.allocate(ValueLayout.JAVA_FLOAT, rows);
            MemorySegment grad = arena.allocate(ValueLayout.JAVA_FLOAT, rows * dim);
            double fusedMs = Timer.medianMillis(repeat, () -> LmHeadJsd.compute(context, DType.F32, shape, xs, xt,
                    head, softcap, null, 1f, loss, rowLoss, grad));
            float fusedLoss = loss.get(ValueLayout.JAVA_FLOAT, 0);
            float[] fusedGrad = grad.toArray(ValueLayout.JAVA_FLOAT);
            double usefulFlops = 3.0 * 2 * rows * dim * vocab;
            print("  loss %.6f, |dloss/dx_student| %.4e", fusedLoss, norm(fusedGrad));
            print("  fused:    %9.2f ms  (%.1f GFLOP/s counting 3 head products)", fusedMs, usefulFlops / fusedMs / 1e6);
            long logitsBytes = 2 * rows * vocab * Float.BYTES;
            print("  peak workspace %s (student + teacher logits in full would be %s)",
                    bytes(context.peakWorkspaceBytes()), bytes(logitsBytes));
            if (noBaseline) {
                return;
            }
            MemorySegment baseGrad = arena.allocate(ValueLayout.JAVA_FLOAT, rows * dim);
            try {
                double baseMs = Timer.medianMillis(repeat, () -> LmHeadJsd.baselineTorch(shape, xs, xt, head,
                        softcap, null, 1f, loss, rowLoss, baseGrad));
                float[] bg = baseGrad.toArray(ValueLayout.JAVA_FLOAT);
                print("  libtorch: %9.2f ms  (same math as PyTorch users write it; fused speed-up %.2fx)", baseMs,
                        baseMs / fusedMs);
                print("  fused vs libtorch: |loss diff| %.2e, max |grad diff| / max |grad| %.2e",
                        Math.abs(loss.get(ValueLayout.JAVA_FLOAT, 0) - fusedLoss), relDiff(fusedGrad, bg));
            } catch (UnsupportedFeatureException e) {
                print("  libtorch baseline: not available (%s)", e.getMessage());
            }
        }
    }

    private void dii(Context context) {
        long examples = Math.max(1, diiRows / 128);
        Dii.Shape shape = new Dii.Shape(diiRows, diiDim, rank, examples);
        print("");
        print("== DII (rank %d interchange), forward and backward, %s, clamp from source", rank, shape);
        RandomData random = new RandomData(seed + 2);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment h = random.gaussian(arena, diiRows * diiDim, 1);
            MemorySegment w = arena.allocateFrom(ValueLayout.JAVA_FLOAT,
                    random.unitRows(Math.toIntExact(rank), Math.toIntExact(diiDim)));
            MemorySegment source = random.gaussian(arena, examples * diiDim, 1);
            MemorySegment index = arena.allocateFrom(ValueLayout.JAVA_INT,
                    random.exampleIndex(Math.toIntExact(diiRows), Math.toIntExact(examples)));
            MemorySegment g = random.gaussian(arena, diiRows * diiDim, 1);
            MemorySegment hOut = arena.allocate(ValueLayout.JAVA_FLOAT, diiRows * diiDim);
            MemorySegment a = arena.allocate(ValueLayout.JAVA_FLOAT, examples * rank);
            MemorySegment gh = arena.allocate(ValueLayout.JAVA_FLOAT, diiRows * diiDim);
            MemorySegment gw = arena.allocate(ValueLayout.JAVA_FLOAT, rank * diiDim);
            MemorySegment ga = arena.allocate(ValueLayout.JAVA_FLOAT, examples * rank);
            double fwdMs = Timer.medianMillis(repeat, () -> Dii.forward(context, DType.F32, shape, h, w, source, null,
                    index, null, hOut, a));
            double bwdMs = Timer.medianMillis(repeat, () -> Dii.backward(context, DType.F32, shape, h, w, source,
                    null, index, null, g, gh, gw, ga));
            double mb = 2.0 * diiRows * diiDim * Float.BYTES / 1e6;
            print("  forward:  %9.3f ms  (%.1f GB/s over one read of h and one write of h')", fwdMs, mb / fwdMs);
            print("  backward: %9.3f ms", bwdMs);
            float[] fusedGradW = gw.toArray(ValueLayout.JAVA_FLOAT);
            print("  |dL/dh| %.4e, |dL/dW| %.4e, |dL/da| %.4e", norm(gh.toArray(ValueLayout.JAVA_FLOAT)),
                    norm(fusedGradW), norm(ga.toArray(ValueLayout.JAVA_FLOAT)));
            if (noBaseline) {
                return;
            }
            try {
                double baseMs = Timer.medianMillis(repeat, () -> Dii.baselineTorch(shape, h, w, source, index, null, g,
                        hOut, gh, gw));
                print("  libtorch forward+backward: %9.3f ms (fused speed-up %.2fx), max |dL/dW diff| / max |dL/dW| %.2e",
                        baseMs, baseMs / (fwdMs + bwdMs), relDiff(fusedGradW, gw.toArray(ValueLayout.JAVA_FLOAT)));
            } catch (UnsupportedFeatureException e) {
                print("  libtorch baseline: not available (%s)", e.getMessage());
            }
        }
    }

    private static double norm(float[] v) {
        double s = 0;
        for (float x : v) {
            s += (double) x * x;
        }
        return Math.sqrt(s);
    }

    private static double relDiff(float[] a, float[] b) {
        double worst = 0, scale = 1e-30;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs(a[i] - b[i]));
            scale = Math.max(scale, Math.abs(b[i]));
        }
        return worst / scale;
    }

    private static String bytes(long n) {
        if (n < 1 << 20) {
            return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
        }
        return String.format(Locale.ROOT, "%.1f MiB", n / (1024.0 * 1024));
    }

    private static void print(String format, Object... args) {
        System.out.println(String.format(Locale.ROOT, format, args));
    }
}
