package dev.cdas.cli;

import dev.cdas.Context;
import dev.cdas.Dii;
import dev.cdas.LmHeadJsd;
import dev.cdas.reference.DiiReference;
import dev.cdas.reference.JsdReference;

import java.util.ArrayList;
import java.util.List;

/**
 * Both fused operations against the double-precision Java references at a small, awkward shape:
 * the demo checks correctness before it reports speed.
 */
final class ReferenceCheck {
    /** fp32 kernels against double references, relative to the largest reference magnitude. */
    static final double TOLERANCE = 2e-4;

    record Comparison(String quantity, double relativeError) {
        boolean passed() {
            return relativeError <= TOLERANCE;
        }
    }

    private ReferenceCheck() {
    }

    static List<Comparison> run(Context context, long seed) {
        List<Comparison> results = new ArrayList<>();
        RandomData random = new RandomData(seed);
        checkJsd(context, random, results);
        checkDii(context, random, results);
        return results;
    }

    private static void checkJsd(Context context, RandomData random, List<Comparison> results) {
        int rows = 41, dim = 67, vocab = 1271;
        float softcap = 30, gradScale = 0.5f;
        float[] xs = random.gaussian((long) rows * dim, 1);
        float[] xt = random.gaussian((long) rows * dim, 1);
        float[] head = random.gaussian((long) vocab * dim, 1);
        boolean[] mask = random.mask(rows, 0.8);
        LmHeadJsd.Result fused = LmHeadJsd.compute(context, new LmHeadJsd.Shape(rows, dim, vocab), xs, xt, head,
                softcap, mask, gradScale, true);
        JsdReference.Result ref = JsdReference.compute(rows, dim, vocab, toDouble(xs), toDouble(xt), toDouble(head),
                softcap, mask, gradScale);
        String shape = " (T=41, d=67, V=1271, soft-cap 30, masked rows)";
        results.add(new Comparison("JSD loss" + shape, relError(new float[] {fused.loss()}, new double[] {ref.loss()})));
        results.add(new Comparison("JSD row losses", relError(fused.rowLoss(), ref.rowLoss())));
        results.add(new Comparison("JSD dloss/dx_student", relError(fused.gradStudent(), ref.gradStudent())));
    }

    private static void checkDii(Context context, RandomData random, List<Comparison> results) {
        int rows = 41, dim = 67, rank = 3, examples = 5;
        float[] h = random.gaussian((long) rows * dim, 1);
        float[] w = random.unitRows(rank, dim);
        float[] source = random.gaussian((long) examples * dim, 1);
        int[] index = random.exampleIndex(rows, examples);
        boolean[] mask = random.mask(rows, 0.8);
        float[] g = random.gaussian((long) rows * dim, 1);
        Dii.Shape shape = new Dii.Shape(rows, dim, rank, examples);
        Dii.Forward fwd = Dii.forward(context, shape, h, w, source, null, index, mask);
        Dii.Gradients grads = Dii.backward(context, shape, h, w, source, null, index, mask, g);
        DiiReference.Forward rf = DiiReference.forward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), null, index, mask);
        DiiReference.Gradients rg = DiiReference.backward(rows, dim, rank, examples, toDouble(h), toDouble(w),
                toDouble(source), null, index, mask, toDouble(g));
        results.add(new Comparison("DII h' (T=41, d=67, r=3, B=5, source, masked rows)", relError(fwd.hOut(), rf.hOut())));
        results.add(new Comparison("DII a = W s", relError(fwd.clampValues(), rf.clampValues())));
        results.add(new Comparison("DII dL/dh", relError(grads.gradH(), rg.gradH())));
        results.add(new Comparison("DII dL/dW", relError(grads.gradDirections(), rg.gradDirections())));
        results.add(new Comparison("DII dL/da", relError(grads.gradValues(), rg.gradValues())));
    }

    /** max |actual - expected| / max |expected|; NaN anywhere makes it infinite. */
    static double relError(float[] actual, double[] expected) {
        double worst = 0, scale = 1e-12;
        for (int i = 0; i < expected.length; i++) {
            double d = Math.abs(actual[i] - expected[i]);
            if (Double.isNaN(d)) {
                return Double.POSITIVE_INFINITY;
            }
            worst = Math.max(worst, d);
            scale = Math.max(scale, Math.abs(expected[i]));
        }
        return worst / scale;
    }

    static double[] toDouble(float[] a) {
        double[] d = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            d[i] = a[i];
        }
        return d;
    }
}
