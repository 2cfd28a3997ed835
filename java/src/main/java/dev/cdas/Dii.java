package dev.cdas;

import dev.cdas.bindings.cdas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * The rank-r distributed interchange intervention {@code Phi(h; a) = h + W^T (a - W h)} and its
 * backward (cdas_dii_forward / cdas_dii_backward). Row t of h belongs to example
 * exampleIndex[t]; rows with mask 0 pass through unchanged. The clamp value a_e comes either from
 * a source hidden state (a_e = W s_e) or is given directly: exactly one of source and values.
 */
public final class Dii {
    private Dii() {
    }

    /**
     * T rows of width d, r directions, B examples.
     *
     * @param rows     T, the number of hidden-state rows (tokens of all examples together)
     * @param dim      d, the hidden width
     * @param rank     r, the number of directions (rows of W)
     * @param examples B, the number of examples the rows belong to
     */
    public record Shape(long rows, long dim, long rank, long examples) {
        /**
         * Checks the sizes.
         *
         * @throws InvalidArgumentException when a size is not positive or T x d or B x d elements of 4 bytes
         *         overflow a long
         */
        public Shape {
            Args.positive("rows", rows);
            Args.positive("dim", dim);
            Args.positive("rank", rank);
            Args.positive("examples", examples);
            Args.product("rows x dim", rows, dim, 4);
            Args.product("examples x dim", examples, dim, 4);
        }

        @Override
        public String toString() {
            return "T=" + rows + ", d=" + dim + ", r=" + rank + ", B=" + examples;
        }
    }

    /**
     * The forward outputs of the array API: h' [T x d] and the clamp values a [B x r].
     *
     * @param hOut        h', T x d, row-major
     * @param clampValues a, B x r, row-major (for a source: a_e = W s_e)
     */
    public record Forward(float[] hOut, float[] clampValues) {
    }

    /**
     * The backward outputs of the array API: dL/dh [T x d], dL/dW [r x d], dL/da [B x r].
     *
     * @param gradH          dL/dh, T x d, row-major
     * @param gradDirections dL/dW, r x d, row-major
     * @param gradValues     dL/da, B x r, row-major
     */
    public record Gradients(float[] gradH, float[] gradDirections, float[] gradValues) {
    }

    /**
     * Writes h' into hOut (may be h itself) and, when sourceValuesOut is given, a into it.
     * Nullable: one of source/values, mask, sourceValuesOut.
     *
     * @param context         the context whose device holds every buffer
     * @param dtype           the element type of h, source and hOut (directions, values are always fp32)
     * @param shape           T, d, r, B
     * @param h               the hidden states, T x d of {@code dtype}
     * @param directions      W, r x d fp32, rows orthonormal for the clamp to be a projection
     * @param source          the source hidden states s, B x d of {@code dtype}, or null when {@code values} is given
     * @param values          the clamp values a, B x r fp32, or null when {@code source} is given
     * @param exampleIndex    the example of each row, T int32 values in [0, B)
     * @param mask            one byte per row (0: the row passes through), or null for every row
     * @param hOut            where h' goes, T x d of {@code dtype}; may be {@code h} itself
     * @param sourceValuesOut where a goes, B x r fp32, or null
     * @throws InvalidArgumentException when a buffer is missing, too small or on another device, or an
     *         example index is out of range
     * @throws CdasException            when the native call fails (its status and message)
     */
    public static void forward(Context context, DType dtype, Shape shape,
                               MemorySegment h, MemorySegment directions, MemorySegment source, MemorySegment values,
                               MemorySegment exampleIndex, MemorySegment mask,
                               MemorySegment hOut, MemorySegment sourceValuesOut) {
        Args.notNull("context", context);
        Inputs in = Inputs.check(context, dtype, shape, h, directions, source, values, exampleIndex, mask);
        MemorySegment out = Args.required(context, "hOut", hOut, in.hiddenBytes);
        MemorySegment aOut = Args.optional(context, "sourceValuesOut", sourceValuesOut, in.valueBytes);
        Native.check(cdas_h.cdas_dii_forward(context.handle(), dtype.code(), shape.rows(), shape.dim(), shape.rank(),
                shape.examples(), in.h, in.directions, in.source, in.values, in.exampleIndex, in.mask, out, aOut));
    }

    /**
     * Given gradOut = dL/dh', writes whichever of gradH, gradDirections (overwritten) and
     * gradValues are given (each nullable).
     *
     * @param context        the context whose device holds every buffer
     * @param dtype          the element type of h, source, gradOut and gradH
     * @param shape          T, d, r, B
     * @param h              the forward's hidden states, T x d
     * @param directions     the forward's W, r x d fp32
     * @param source         the forward's source hidden states, B x d, or null when {@code values} is given
     * @param values         the forward's clamp values, B x r fp32, or null when {@code source} is given
     * @param exampleIndex   the example of each row, T int32 values in [0, B)
     * @param mask           one byte per row, or null for every row
     * @param gradOut        dL/dh', T x d of {@code dtype}
     * @param gradH          where dL/dh goes, T x d of {@code dtype}, or null
     * @param gradDirections where dL/dW goes, r x d fp32 (overwritten, not accumulated), or null
     * @param gradValues     where dL/da goes, B x r fp32, or null
     * @throws InvalidArgumentException when a buffer is missing, too small or on another device
     * @throws CdasException            when the native call fails (its status and message)
     */
    public static void backward(Context context, DType dtype, Shape shape,
                                MemorySegment h, MemorySegment directions, MemorySegment source, MemorySegment values,
                                MemorySegment exampleIndex, MemorySegment mask, MemorySegment gradOut,
                                MemorySegment gradH, MemorySegment gradDirections, MemorySegment gradValues) {
        Args.notNull("context", context);
        Inputs in = Inputs.check(context, dtype, shape, h, directions, source, values, exampleIndex, mask);
        MemorySegment g = Args.required(context, "gradOut", gradOut, in.hiddenBytes);
        MemorySegment gh = Args.optional(context, "gradH", gradH, in.hiddenBytes);
        MemorySegment gw = Args.optional(context, "gradDirections", gradDirections, in.directionBytes);
        MemorySegment ga = Args.optional(context, "gradValues", gradValues, in.valueBytes);
        Native.check(cdas_h.cdas_dii_backward(context.handle(), dtype.code(), shape.rows(), shape.dim(),
                shape.rank(), shape.examples(), in.h, in.directions, in.source, in.values, in.exampleIndex, in.mask,
                g, gh, gw, ga));
    }

    /**
     * The same forward and backward composed from libtorch operations (fp32, CPU, clamp from a
     * source): the baseline the fused kernels are measured against. Outputs are optional.
     * UnsupportedFeatureException without libtorch.
     *
     * @param shape          T, d, r, B
     * @param h              the hidden states, T x d fp32 host memory
     * @param directions     W, r x d fp32
     * @param source         the source hidden states, B x d fp32
     * @param exampleIndex   the example of each row, T int32 values in [0, B)
     * @param mask           one byte per row, or null for every row
     * @param gradOut        dL/dh', T x d fp32
     * @param hOut           where h' goes, or null
     * @param gradH          where dL/dh goes, or null
     * @param gradDirections where dL/dW goes, or null
     * @throws UnsupportedFeatureException when the library was built without libtorch
     * @throws InvalidArgumentException    when a buffer is missing or too small
     */
    public static void baselineTorch(Shape shape, MemorySegment h, MemorySegment directions, MemorySegment source,
                                     MemorySegment exampleIndex, MemorySegment mask, MemorySegment gradOut,
                                     MemorySegment hOut, MemorySegment gradH, MemorySegment gradDirections) {
        NativeLibrary.load();
        Inputs in = Inputs.check(null, DType.F32, shape, h, directions, Args.notNull("source", source), null,
                exampleIndex, mask);
        Native.check(cdas_h.cdas_baseline_dii_torch(shape.rows(), shape.dim(), shape.rank(), shape.examples(), in.h,
                in.directions, in.source, in.exampleIndex, in.mask,
                Args.required(null, "gradOut", gradOut, in.hiddenBytes),
                Args.optional(null, "hOut", hOut, in.hiddenBytes),
                Args.optional(null, "gradH", gradH, in.hiddenBytes),
                Args.optional(null, "gradDirections", gradDirections, in.directionBytes)));
    }

    /**
     * fp32 forward on Java arrays (CPU context). source or values is null; mask may be null.
     *
     * @param context      a CPU context
     * @param shape        T, d, r, B
     * @param h            the hidden states, T x d
     * @param directions   W, r x d
     * @param source       the source hidden states, B x d, or null when {@code values} is given
     * @param values       the clamp values, B x r, or null when {@code source} is given
     * @param exampleIndex the example of each row, T values in [0, B)
     * @param mask         true for each row to intervene on, or null for every row
     * @return h' and the clamp values a
     * @throws InvalidArgumentException when the context is not a CPU one, an array's length does not
     *         match the shape, both or neither of source and values are given, or an example index is
     *         out of range
     */
    public static Forward forward(Context context, Shape shape, float[] h, float[] directions, float[] source,
                                  float[] values, int[] exampleIndex, boolean[] mask) {
        Args.hostContext(context, "Dii.forward(float[])");
        checkArrays(shape, h, directions, source, values, exampleIndex, mask, null);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment hOut = arena.allocate(ValueLayout.JAVA_FLOAT, shape.rows() * shape.dim());
            MemorySegment aOut = arena.allocate(ValueLayout.JAVA_FLOAT, shape.examples() * shape.rank());
            forward(context, DType.F32, shape, Segments.of(arena, h), Segments.of(arena, directions),
                    Segments.of(arena, source), Segments.of(arena, values), Segments.of(arena, exampleIndex),
                    Segments.of(arena, mask), hOut, aOut);
            return new Forward(Segments.floats(hOut), Segments.floats(aOut));
        }
    }

    /**
     * fp32 backward on Java arrays (CPU context); computes all three gradients.
     *
     * @param context      a CPU context
     * @param shape        T, d, r, B
     * @param h            the forward's hidden states, T x d
     * @param directions   the forward's W, r x d
     * @param source       the forward's source hidden states, B x d, or null when {@code values} is given
     * @param values       the forward's clamp values, B x r, or null when {@code source} is given
     * @param exampleIndex the example of each row, T values in [0, B)
     * @param mask         true for each row intervened on, or null for every row
     * @param gradOut      dL/dh', T x d
     * @return dL/dh, dL/dW and dL/da
     * @throws InvalidArgumentException when the context is not a CPU one, an array's length does not
     *         match the shape, or an example index is out of range
     */
    public static Gradients backward(Context context, Shape shape, float[] h, float[] directions, float[] source,
                                     float[] values, int[] exampleIndex, boolean[] mask, float[] gradOut) {
        Args.hostContext(context, "Dii.backward(float[])");
        checkArrays(shape, h, directions, source, values, exampleIndex, mask, gradOut);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment gh = arena.allocate(ValueLayout.JAVA_FLOAT, shape.rows() * shape.dim());
            MemorySegment gw = arena.allocate(ValueLayout.JAVA_FLOAT, shape.rank() * shape.dim());
            MemorySegment ga = arena.allocate(ValueLayout.JAVA_FLOAT, shape.examples() * shape.rank());
            backward(context, DType.F32, shape, Segments.of(arena, h), Segments.of(arena, directions),
                    Segments.of(arena, source), Segments.of(arena, values), Segments.of(arena, exampleIndex),
                    Segments.of(arena, mask), Segments.of(arena, gradOut), gh, gw, ga);
            return new Gradients(Segments.floats(gh), Segments.floats(gw), Segments.floats(ga));
        }
    }

    private static void checkArrays(Shape shape, float[] h, float[] directions, float[] source, float[] values,
                                    int[] exampleIndex, boolean[] mask, float[] gradOut) {
        String s = "shape " + shape;
        Args.length("h", Args.notNull("h", h).length, shape.rows() * shape.dim(), s);
        Args.length("directions", Args.notNull("directions", directions).length, shape.rank() * shape.dim(), s);
        if ((source == null) == (values == null)) {
            throw new InvalidArgumentException("give exactly one of source (a = W s) and values (a given), not "
                    + (source == null ? "neither" : "both"));
        }
        if (source != null) {
            Args.length("source", source.length, shape.examples() * shape.dim(), s);
        } else {
            Args.length("values", values.length, shape.examples() * shape.rank(), s);
        }
        Args.length("exampleIndex", Args.notNull("exampleIndex", exampleIndex).length, shape.rows(), s);
        for (int t = 0; t < exampleIndex.length; t++) {
            if (exampleIndex[t] < 0 || exampleIndex[t] >= shape.examples()) {
                throw new InvalidArgumentException("exampleIndex[" + t + "] = " + exampleIndex[t] + " is outside [0, "
                        + shape.examples() + ")");
            }
        }
        if (mask != null) {
            Args.length("mask", mask.length, shape.rows(), s);
        }
        if (gradOut != null) {
            Args.length("gradOut", gradOut.length, shape.rows() * shape.dim(), s);
        }
    }

    /** The checked input buffers of one call and the byte sizes its outputs need. */
    private record Inputs(MemorySegment h, MemorySegment directions, MemorySegment source, MemorySegment values,
                          MemorySegment exampleIndex, MemorySegment mask,
                          long hiddenBytes, long directionBytes, long valueBytes) {

        /** context null: host buffers outside any context (the libtorch baselines). */
        static Inputs check(Context context, DType dtype, Shape shape, MemorySegment h, MemorySegment directions,
                            MemorySegment source, MemorySegment values, MemorySegment exampleIndex,
                            MemorySegment mask) {
            Args.notNull("dtype", dtype);
            Args.notNull("shape", shape);
            long hiddenBytes = Args.product("h bytes", shape.rows(), shape.dim(), dtype.byteSize());
            long directionBytes = Args.product("directions bytes", shape.rank(), shape.dim(), 4);
            long valueBytes = Args.product("values bytes", shape.examples(), shape.rank(), 4);
            if (Args.absent(source) == Args.absent(values)) {
                throw new InvalidArgumentException("give exactly one of source (a = W s) and values (a given), not "
                        + (Args.absent(source) ? "neither" : "both"));
            }
            return new Inputs(
                    Args.required(context, "h", h, hiddenBytes),
                    Args.required(context, "directions", directions, directionBytes),
                    Args.optional(context, "source", source,
                            Args.product("source bytes", shape.examples(), shape.dim(), dtype.byteSize())),
                    Args.optional(context, "values", values, valueBytes),
                    Args.required(context, "exampleIndex", exampleIndex, Args.product("exampleIndex bytes", shape.rows(), 4)),
                    Args.optional(context, "mask", mask, shape.rows()),
                    hiddenBytes, directionBytes, valueBytes);
        }
    }
}
