package dev.cdas;

import dev.cdas.bindings.cdas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * LM head (+ optional soft-cap) + Jensen-Shannon divergence over the vocabulary, fused
 * (cdas_lm_head_jsd): z = x W^T, z = c tanh(z / c) when softcap c > 0, Q = softmax(z_student),
 * P = softmax(z_teacher) (detached), loss = mean over unmasked rows of JSD(P || Q), and
 * gradStudent = gradScale * dloss/dx_student. The T x V logits never exist in full.
 */
public final class LmHeadJsd {
    private LmHeadJsd() {
    }

    /**
     * T rows of hidden width d, vocabulary V.
     *
     * @param rows  T, the number of token rows
     * @param dim   d, the hidden width
     * @param vocab V, the vocabulary size (rows of the head)
     */
    public record Shape(long rows, long dim, long vocab) {
        /**
         * Checks the sizes.
         *
         * @throws InvalidArgumentException when a size is not positive or T x d or V x d elements of 4 bytes
         *         overflow a 64-bit size
         */
        public Shape {
            Args.positive("rows", rows);
            Args.positive("dim", dim);
            Args.positive("vocab", vocab);
            Args.product("rows x dim", rows, dim, 4);
            Args.product("vocab x dim", vocab, dim, 4);
        }

        @Override
        public String toString() {
            return "T=" + rows + ", d=" + dim + ", V=" + vocab;
        }
    }

    /**
     * Array-API result: the mean loss, the per-row JSD [T] and, when asked, dloss/dx_student [T x d].
     *
     * @param loss        the mean JSD over the unmasked rows, in nats
     * @param rowLoss     the JSD of each row, T values (0 for masked rows)
     * @param gradStudent gradScale * dloss/dx_student, T x d row-major, or null when not asked for
     */
    public record Result(float loss, float[] rowLoss, float[] gradStudent) {
    }

    /**
     * The segment API. lossOut (one float) is required; mask, rowLossOut and gradStudentOut
     * (null: forward only) are optional.
     *
     * @param context        the context whose device holds every buffer
     * @param dtype          the element type of xStudent, xTeacher and head
     * @param shape          T, d, V
     * @param xStudent       the student's final hidden states, T x d of {@code dtype}
     * @param xTeacher       the teacher's final hidden states, T x d of {@code dtype} (no gradient)
     * @param head           the LM head W, V x d of {@code dtype}
     * @param softcap        the logit soft-cap c; 0 or less for none
     * @param mask           one byte per row (0: left out of the mean), or null for every row
     * @param gradScale      the factor on the gradient (the upstream dL/dloss)
     * @param lossOut        where the mean loss goes, one fp32
     * @param rowLossOut     where each row's JSD goes, T fp32, or null
     * @param gradStudentOut where the gradient goes, T x d fp32, or null for the forward only
     * @throws InvalidArgumentException when a buffer is missing, too small or not native
     * @throws CdasException            when the native call fails (its status and message)
     */
    public static void compute(Context context, DType dtype, Shape shape, MemorySegment xStudent,
                               MemorySegment xTeacher, MemorySegment head, float softcap, MemorySegment mask,
                               float gradScale, MemorySegment lossOut, MemorySegment rowLossOut,
                               MemorySegment gradStudentOut) {
        Args.notNull("context", context);
        Args.notNull("dtype", dtype);
        Buffers b = Buffers.check(context, dtype, shape, xStudent, xTeacher, head, mask, lossOut, rowLossOut,
                gradStudentOut);
        Native.check(cdas_h.cdas_lm_head_jsd(context.handle(), dtype.code(), shape.rows(), shape.dim(),
                shape.vocab(), b.xStudent, b.xTeacher, b.head, softcap, b.mask, gradScale, b.lossOut, b.rowLossOut,
                b.gradStudentOut));
    }

    /**
     * fp32 on Java arrays (CPU context); mask may be null (every row).
     *
     * @param context      a CPU context
     * @param shape        T, d, V
     * @param xStudent     the student's final hidden states, T x d
     * @param xTeacher     the teacher's final hidden states, T x d
     * @param head         the LM head, V x d
     * @param softcap      the logit soft-cap c; 0 or less for none
     * @param mask         true for each row in the mean, or null for every row
     * @param gradScale    the factor on the gradient
     * @param withGradient whether to compute the gradient
     * @return the loss, the per-row losses and, when asked, the gradient
     * @throws InvalidArgumentException when the context is not a CPU one or an array's length does not
     *         match the shape
     */
    public static Result compute(Context context, Shape shape, float[] xStudent, float[] xTeacher, float[] head,
                                 float softcap, boolean[] mask, float gradScale, boolean withGradient) {
        Args.hostContext(context, "LmHeadJsd.compute(float[])");
        return onArrays(shape, xStudent, xTeacher, head, mask, withGradient, (s, xs, xt, w, m, loss, rows, grad) ->
                compute(context, DType.F32, s, xs, xt, w, softcap, m, gradScale, loss, rows, grad));
    }

    /**
     * The same math composed from libtorch operations the way PyTorch users write it (fp32, CPU):
     * the baseline the fused kernel is measured against. UnsupportedFeatureException without libtorch.
     *
     * @param shape          T, d, V
     * @param xStudent       the student's final hidden states, T x d fp32 host memory
     * @param xTeacher       the teacher's final hidden states, T x d fp32
     * @param head           the LM head, V x d fp32
     * @param softcap        the logit soft-cap c; 0 or less for none
     * @param mask           one byte per row, or null for every row
     * @param gradScale      the factor on the gradient
     * @param lossOut        where the mean loss goes, one fp32
     * @param rowLossOut     where each row's JSD goes, T fp32, or null
     * @param gradStudentOut where the gradient goes, T x d fp32, or null
     * @throws UnsupportedFeatureException when the library was built without libtorch
     * @throws InvalidArgumentException    when a buffer is missing or too small
     */
    public static void baselineTorch(Shape shape, MemorySegment xStudent, MemorySegment xTeacher, MemorySegment head,
                                     float softcap, MemorySegment mask, float gradScale, MemorySegment lossOut,
                                     MemorySegment rowLossOut, MemorySegment gradStudentOut) {
        NativeLibrary.load();
        Buffers b = Buffers.check(null, DType.F32, shape, xStudent, xTeacher, head, mask, lossOut, rowLossOut,
                gradStudentOut);
        Native.check(cdas_h.cdas_baseline_lm_head_jsd_torch(shape.rows(), shape.dim(), shape.vocab(), b.xStudent,
                b.xTeacher, b.head, softcap, b.mask, gradScale, b.lossOut, b.rowLossOut, b.gradStudentOut));
    }

    /**
     * {@link #baselineTorch(Shape, MemorySegment, MemorySegment, MemorySegment, float, MemorySegment, float, MemorySegment, MemorySegment, MemorySegment)} on Java arrays.
     *
     * @param shape        T, d, V
     * @param xStudent     the student's final hidden states, T x d
     * @param xTeacher     the teacher's final hidden states, T x d
     * @param head         the LM head, V x d
     * @param softcap      the logit soft-cap c; 0 or less for none
     * @param mask         true for each row in the mean, or null for every row
     * @param gradScale    the factor on the gradient
     * @param withGradient whether to compute the gradient
     * @return the loss, the per-row losses and, when asked, the gradient
     * @throws UnsupportedFeatureException when the library was built without libtorch
     * @throws InvalidArgumentException    when an array's length does not match the shape
     */
    public static Result baselineTorch(Shape shape, float[] xStudent, float[] xTeacher, float[] head, float softcap,
                                       boolean[] mask, float gradScale, boolean withGradient) {
        return onArrays(shape, xStudent, xTeacher, head, mask, withGradient, (s, xs, xt, w, m, loss, rows, grad) ->
                baselineTorch(s, xs, xt, w, softcap, m, gradScale, loss, rows, grad));
    }

    private interface SegmentCall {
        void run(Shape shape, MemorySegment xs, MemorySegment xt, MemorySegment head, MemorySegment mask,
                 MemorySegment loss, MemorySegment rowLoss, MemorySegment grad);
    }

    private static Result onArrays(Shape shape, float[] xStudent, float[] xTeacher, float[] head, boolean[] mask,
                                   boolean withGradient, SegmentCall call) {
        Args.notNull("shape", shape);
        String s = "shape " + shape;
        Args.length("xStudent", Args.notNull("xStudent", xStudent).length, shape.rows() * shape.dim(), s);
        Args.length("xTeacher", Args.notNull("xTeacher", xTeacher).length, shape.rows() * shape.dim(), s);
        Args.length("head", Args.notNull("head", head).length, shape.vocab() * shape.dim(), s);
        if (mask != null) {
            Args.length("mask", mask.length, shape.rows(), s);
        }
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment loss = arena.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment rowLoss = arena.allocate(ValueLayout.JAVA_FLOAT, shape.rows());
            MemorySegment grad = withGradient
                    ? arena.allocate(ValueLayout.JAVA_FLOAT, shape.rows() * shape.dim())
                    : MemorySegment.NULL;
            call.run(shape, Segments.of(arena, xStudent), Segments.of(arena, xTeacher), Segments.of(arena, head),
                    Segments.of(arena, mask), loss, rowLoss, grad);
            return new Result(loss.get(ValueLayout.JAVA_FLOAT, 0), Segments.floats(rowLoss),
                    withGradient ? Segments.floats(grad) : null);
        }
    }

    private record Buffers(MemorySegment xStudent, MemorySegment xTeacher, MemorySegment head, MemorySegment mask,
                           MemorySegment lossOut, MemorySegment rowLossOut, MemorySegment gradStudentOut) {

        static Buffers check(Context context, DType dtype, Shape shape, MemorySegment xStudent,
                             MemorySegment xTeacher, MemorySegment head, MemorySegment mask, MemorySegment lossOut,
                             MemorySegment rowLossOut, MemorySegment gradStudentOut) {
            Args.notNull("shape", shape);
            long hiddenBytes = Args.product("x bytes", shape.rows(), shape.dim(), dtype.byteSize());
            return new Buffers(
                    Args.required(context, "xStudent", xStudent, hiddenBytes),
                    Args.required(context, "xTeacher", xTeacher, hiddenBytes),
                    Args.required(context, "head", head,
                            Args.product("head bytes", shape.vocab(), shape.dim(), dtype.byteSize())),
                    Args.optional(context, "mask", mask, shape.rows()),
                    Args.required(context, "lossOut", lossOut, 4),
                    Args.optional(context, "rowLossOut", rowLossOut, Args.product("rowLoss bytes", shape.rows(), 4)),
                    Args.optional(context, "gradStudentOut", gradStudentOut,
                            Args.product("grad bytes", shape.rows(), shape.dim(), 4)));
        }
    }
}
