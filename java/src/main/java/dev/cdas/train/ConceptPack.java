package dev.cdas.train;

import dev.cdas.CdasException;
import dev.cdas.InvalidArgumentException;
import dev.cdas.model.Model;
import dev.cdas.model.ObjectiveBatch;
import dev.cdas.model.ObjectiveResult;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Concept packing (docs/scale-out.md): up to K training runs of one model, layer, loss and rank
 * stepped in lockstep, their minibatches stacked into one native call per direction (D⁺, D⁻)
 * through {@link Model#cdasObjectivePacked}, each example clamped with its own run's directions.
 * Every run is a {@link Trainer.Session} with its own objective (encoding and state caches), random
 * stream, minibatch order, optimiser state and schedule, and gets its own loss and gradient, so it
 * takes the steps it would take alone: bit for bit with pack padding 0 (fp32 on the CPU: each run
 * goes through the layers in its own layout), within float rounding with more.
 *
 * <p>A run that finishes leaves the pack and the next one joins at once. A run that fails (its
 * minibatch cannot be encoded, a non-finite loss, ...) leaves alone: when the stacked call fails,
 * each run of that step is evaluated by itself, so the error is charged to the run it belongs to
 * and the others go on with their own results.
 */
public final class ConceptPack {

    /** One run in the pack. */
    public interface Member {
        /**
         * The run's objective (its model, layer, loss and state caches).
         *
         * @return the objective
         */
        CdasObjective objective();

        /**
         * The run's optimisation, stepped by the pack.
         *
         * @return the session
         */
        Trainer.Session session();
    }

    /**
     * Supplies the runs and takes them back.
     *
     * @param <M> the member type
     */
    public interface Source<M extends Member> {
        /**
         * The next run to join.
         *
         * @return the run, or null when there is none
         * @throws IOException when the run cannot be set up
         */
        M next() throws IOException;

        /**
         * {@code member}'s session has taken its last step.
         *
         * @param member the finished run
         * @throws IOException when its outputs cannot be written
         */
        void finished(M member) throws IOException;

        /**
         * {@code member} failed; it has left the pack.
         *
         * @param member the failed run
         * @param error why
         * @throws IOException when the failure cannot be recorded
         */
        void failed(M member, Exception error) throws IOException;
    }

    private ConceptPack() {}

    /**
     * Runs every member {@code source} gives, at most {@code k} at once, to its end.
     *
     * @param <M> the member type
     * @param k at most this many runs step together
     * @param packPadding how many padding tokens an example may get beyond its own run's longest so
     *        that runs of different lengths share a pass through the layers (0: every run's step is
     *        computed exactly as alone; {@link Model#cdasObjectivePacked})
     * @param source the runs
     * @param totalSteps the steps of all runs together, for progress ("train": steps taken by all runs)
     * @param progress progress reports, or null
     * @throws IOException when a run's outputs cannot be written
     */
    public static <M extends Member> void run(int k, int packPadding, Source<M> source, long totalSteps,
            ProgressListener progress) throws IOException {
        if (k < 1) {
            throw new InvalidArgumentException("a pack holds at least 1 concept, got " + k);
        }
        if (packPadding < 0) {
            throw new InvalidArgumentException("the pack padding must be >= 0, got " + packPadding);
        }
        List<M> active = new ArrayList<>();
        long steps = 0;
        long startNanos = System.nanoTime();
        try {
            fill(active, k, source);
            while (!active.isEmpty()) {
                List<M> stepping = new ArrayList<>();
                List<CdasObjective.Prepared> prepared = new ArrayList<>();
                for (M m : List.copyOf(active)) {
                    try {
                        prepared.add(m.objective().prepare(m.session().next()));
                        stepping.add(m);
                    } catch (RuntimeException e) {
                        active.remove(m);
                        m.session().close(); // no checkpoint of a failed concept on the way out
                        source.failed(m, e);
                    }
                }
                Object[] results = evaluate(stepping, prepared, packPadding);
                for (int i = 0; i < stepping.size(); i++) {
                    M m = stepping.get(i);
                    try {
                        if (results[i] instanceof Exception e) {
                            throw e;
                        }
                        m.session().apply((Objective.Result) results[i]);
                        steps++;
                    } catch (Exception e) {
                        active.remove(m);
                        m.session().close(); // no checkpoint of a failed concept on the way out
                        source.failed(m, e);
                        continue;
                    }
                    if (!m.session().hasNext()) {
                        active.remove(m);
                        source.finished(m);
                    }
                }
                fill(active, k, source);
                if (progress != null) {
                    double secs = (System.nanoTime() - startNanos) / 1e9;
                    progress.progress("train", steps, Math.max(steps, totalSteps), String.format(Locale.ROOT,
                            "%d in the pack, %.1f steps/s", active.size(), secs > 0 ? steps / secs : 0.0));
                }
            }
        } finally {
            if (progress != null) {
                progress.finished("train");
            }
        }
    }

    private static <M extends Member> void fill(List<M> active, int k, Source<M> source) throws IOException {
        while (active.size() < k) {
            M m = source.next();
            if (m == null) {
                return;
            }
            if (!active.isEmpty()) {
                requireCompatible(active.getFirst(), m);
            }
            if (m.session().hasNext()) {
                active.add(m);
            } else {
                source.finished(m);
            }
        }
    }

    private static void requireCompatible(Member a, Member b) {
        CdasObjective x = a.objective(), y = b.objective();
        if (x.model() != y.model() || x.layer() != y.layer() || x.lossKind() != y.lossKind() || x.pad() != y.pad()
                || a.session().rank() != b.session().rank()) {
            throw new InvalidArgumentException("runs packed together need one model, layer, loss, padding token and rank");
        }
    }

    /** Each member's {@link Objective.Result} or the exception its evaluation threw. */
    private static Object[] evaluate(List<? extends Member> members, List<CdasObjective.Prepared> prepared, int packPadding) {
        Object[] out = new Object[members.size()];
        if (members.size() > 1) {
            try {
                List<Objective.Result> packed = evaluatePacked(members, prepared, packPadding);
                for (int i = 0; i < out.length; i++) {
                    out[i] = packed.get(i);
                }
                return out;
            } catch (CdasException e) {
                // fall through: find whose step it was
            }
        }
        for (int i = 0; i < out.length; i++) {
            try {
                out[i] = evaluateAlone(members.get(i), prepared.get(i));
            } catch (RuntimeException e) {
                out[i] = e;
            }
        }
        return out;
    }

    private static Objective.Result evaluateAlone(Member m, CdasObjective.Prepared p) {
        CdasObjective o = m.objective();
        float[] w = m.session().directions();
        int rank = m.session().rank();
        ObjectiveResult plus = o.model().cdasObjective(o.layer(), rank, w, p.plus(), o.lossKind(), CdasObjective.GRAD_SCALE, true);
        ObjectiveResult minus = o.model().cdasObjective(o.layer(), rank, w, p.minus(), o.lossKind(), CdasObjective.GRAD_SCALE, true);
        return p.combine(plus, minus);
    }

    private static List<Objective.Result> evaluatePacked(List<? extends Member> members, List<CdasObjective.Prepared> prepared,
            int packPadding) {
        CdasObjective first = members.getFirst().objective();
        int sets = members.size();
        int rank = members.getFirst().session().rank();
        int d = first.dimension();
        float[] w = new float[sets * rank * d];
        for (int k = 0; k < sets; k++) {
            System.arraycopy(members.get(k).session().directions(), 0, w, k * rank * d, rank * d);
        }
        List<ObjectiveResult> plus = call(first, rank, sets, w, packPadding,
                prepared.stream().map(CdasObjective.Prepared::plus).toList());
        List<ObjectiveResult> minus = call(first, rank, sets, w, packPadding,
                prepared.stream().map(CdasObjective.Prepared::minus).toList());
        List<Objective.Result> out = new ArrayList<>(sets);
        for (int k = 0; k < sets; k++) {
            out.add(prepared.get(k).combine(plus.get(k), minus.get(k)));
        }
        return out;
    }

    private static List<ObjectiveResult> call(CdasObjective o, int rank, int sets, float[] w, int packPadding,
            List<ObjectiveBatch> parts) {
        int examples = 0;
        for (ObjectiveBatch p : parts) {
            examples += p.base().batch();
        }
        int[] index = new int[examples];
        int at = 0;
        for (int k = 0; k < sets; k++) {
            for (int b = 0; b < parts.get(k).base().batch(); b++) {
                index[at++] = k;
            }
        }
        ObjectiveBatch all = ObjectiveBatch.concat(parts, o.pad(), o.dimension());
        return o.model().cdasObjectivePacked(o.layer(), rank, sets, w, index, packPadding, all, o.lossKind(),
                CdasObjective.GRAD_SCALE, true);
    }
}
