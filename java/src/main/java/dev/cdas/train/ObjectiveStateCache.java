package dev.cdas.train;

import dev.cdas.model.ForwardOutput;
import dev.cdas.model.ForwardOutputs;
import dev.cdas.model.Model;
import dev.cdas.model.ObjectiveBatch;
import dev.cdas.model.TokenBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parts of the CDAS objective that do not depend on {@code w}, kept per encoded example so
 * that every epoch after the first runs only the intervened pass above the layer and the loss
 * (docs/method.md section 1: the source state {@code s}, the target's final hidden states at the
 * compared rows, and the base's {@code h_L} are all computed without the intervention). Entries
 * are computed with {@link Model#forward} on the minibatch that first needs them, in fp32, and
 * given back to {@link Model#cdasObjective} through {@link ObjectiveBatch#withStates}; the
 * model's dtype round-trips through fp32, so a cached call computes what an uncached one would.
 * (Under longrope the rotary factors depend on the longest sequence of a call, so there the
 * states follow the batch that computed them.)
 *
 * <p>Bounded by {@code capacityBytes}: past it, states are still computed for the call but not
 * kept. Not thread-safe; one objective uses it from the training loop.
 */
public final class ObjectiveStateCache {
    /** One example's states: h_L of its real base tokens [len x d], s [d], teacher rows [count x d] (null under DAS). */
    private record States(float[] baseHidden, float[] source, float[] teacher) {
        long bytes() {
            return 4L * (baseHidden.length + source.length + (teacher == null ? 0 : teacher.length)) + 64;
        }
    }

    private final Model model;
    private final int layer;
    private final int pad;
    private final boolean withTeacher;
    private final long capacityBytes;
    private final Map<ExampleEncoder.EncodedExample, States> states = new IdentityHashMap<>();
    private long usedBytes;
    private long hits;
    private long misses;

    /**
     * A cache that computes states with {@code model} at {@code layer}, up to {@code capacityBytes}.
     *
     * @param pad         the padding token of the batches it builds
     * @param withTeacher false under DAS (cross-entropy needs no target)
     * @param model         the model the states come from
     * @param layer         the block whose output h_L is cached (0-based)
     * @param capacityBytes the most bytes of states kept; examples past it are recomputed every time
     */
    public ObjectiveStateCache(Model model, int layer, int pad, boolean withTeacher, long capacityBytes) {
        this.model = model;
        this.layer = layer;
        this.pad = pad;
        this.withTeacher = withTeacher;
        this.capacityBytes = capacityBytes;
    }

    /** {@return the bytes of states held now} */
    public long usedBytes() {
        return usedBytes;
    }

    /** {@return the examples whose states were found in the cache so far} */
    public long hits() {
        return hits;
    }

    /** {@return the examples whose states had to be computed so far} */
    public long misses() {
        return misses;
    }

    /**
     * {@code batch} (built from {@code examples}, in order) with every state given.
     *
     * @param examples the encoded examples, in batch order
     * @param batch    the minibatch built from them
     * @return the minibatch with its base, source and teacher states filled in
     */
    public synchronized ObjectiveBatch complete(List<ExampleEncoder.EncodedExample> examples, ObjectiveBatch batch) {
        List<ExampleEncoder.EncodedExample> missing = new ArrayList<>();
        for (ExampleEncoder.EncodedExample e : examples) {
            if (!states.containsKey(e)) {
                missing.add(e);
            }
        }
        hits += examples.size() - missing.size();
        misses += missing.size();
        Map<ExampleEncoder.EncodedExample, States> fresh = missing.isEmpty() ? Map.of() : compute(missing);
        for (var entry : fresh.entrySet()) {
            long bytes = entry.getValue().bytes();
            if (usedBytes + bytes <= capacityBytes) {
                states.put(entry.getKey(), entry.getValue());
                usedBytes += bytes;
            }
        }

        int d = model.config().hiddenSize();
        TokenBatch base = batch.base();
        float[] baseHidden = new float[base.batch() * base.seqLen() * d];
        float[] source = new float[examples.size() * d];
        float[] teacher = withTeacher ? new float[Math.toIntExact(batch.comparedRows() * d)] : null;
        int teacherAt = 0;
        for (int b = 0; b < examples.size(); b++) {
            ExampleEncoder.EncodedExample e = examples.get(b);
            States s = states.containsKey(e) ? states.get(e) : fresh.get(e);
            System.arraycopy(s.baseHidden(), 0, baseHidden, (b * base.seqLen() + base.firstReal(b)) * d, s.baseHidden().length);
            System.arraycopy(s.source(), 0, source, b * d, d);
            if (teacher != null) {
                System.arraycopy(s.teacher(), 0, teacher, teacherAt, s.teacher().length);
                teacherAt += s.teacher().length;
            }
        }
        return batch.withStates(baseHidden, source, teacher);
    }

    private Map<ExampleEncoder.EncodedExample, States> compute(List<ExampleEncoder.EncodedExample> examples) {
        int n = examples.size();
        int d = model.config().hiddenSize();
        int[][] baseRows = new int[n][];
        int[][] sourceRows = new int[n][];
        int[][] targetRows = new int[n][];
        boolean sourceInTarget = true;
        for (int i = 0; i < n; i++) {
            ExampleEncoder.EncodedExample e = examples.get(i);
            baseRows[i] = e.base();
            sourceRows[i] = e.source();
            targetRows[i] = e.target();
            sourceInTarget &= isPrefix(e.source(), e.target());
        }
        TokenBatch base = TokenBatch.leftPadded(pad, baseRows);
        float[] baseHidden = model.forward(base, null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();

        TokenBatch target = null;
        ForwardOutputs targetOut = null;
        if (withTeacher) {
            target = TokenBatch.leftPadded(pad, targetRows);
            targetOut = model.forward(target, null, layer,
                    sourceInTarget ? EnumSet.of(ForwardOutput.HIDDEN, ForwardOutput.FINAL_HIDDEN) : EnumSet.of(ForwardOutput.FINAL_HIDDEN));
        }
        TokenBatch sourceBatch = withTeacher && sourceInTarget ? target : TokenBatch.leftPadded(pad, sourceRows);
        float[] sourceHidden = withTeacher && sourceInTarget ? targetOut.hidden()
                : model.forward(sourceBatch, null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();

        Map<ExampleEncoder.EncodedExample, States> out = new IdentityHashMap<>();
        for (int i = 0; i < n; i++) {
            ExampleEncoder.EncodedExample e = examples.get(i);
            float[] h = slice(baseHidden, (base.firstReal(i) + (long) i * base.seqLen()) * d, e.base().length * d);
            float[] s = slice(sourceHidden, (sourceBatch.firstReal(i) + e.sourcePosition() + (long) i * sourceBatch.seqLen()) * d, d);
            float[] t = withTeacher
                    ? slice(targetOut.finalHidden(), (target.firstReal(i) + e.targetLossStart() + (long) i * target.seqLen()) * d,
                            e.responseLength() * d)
                    : null;
            out.put(e, new States(h, s, t));
        }
        return out;
    }

    private static boolean isPrefix(int[] a, int[] b) {
        return a.length <= b.length && Arrays.equals(a, 0, a.length, b, 0, a.length);
    }

    private static float[] slice(float[] a, long from, int length) {
        float[] s = new float[length];
        System.arraycopy(a, Math.toIntExact(from), s, 0, length);
        return s;
    }
}
