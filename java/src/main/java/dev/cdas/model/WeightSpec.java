package dev.cdas.model;

import java.util.Arrays;

/**
 * A tensor a checkpoint must (or may) hold for a given config: the canonical transformers name
 * and the shape the config implies. {@code optional} marks tensors a checkpoint may omit (a tied
 * {@code lm_head.weight}); {@code alternativeName} (nullable) is the name some hub files use
 * instead (GPT-2's without the "transformer." prefix).
 *
 * @param name            the canonical transformers name, for example {@code model.layers.0.mlp.up_proj.weight}
 * @param shape           the shape the config implies; copied in and out
 * @param optional        whether a checkpoint may leave the tensor out
 * @param alternativeName another name hub files use for it, or null
 */
public record WeightSpec(String name, long[] shape, boolean optional, String alternativeName) {
    /** Copies {@code shape}, so later changes to the caller's array do not reach the spec. */
    public WeightSpec {
        shape = shape.clone();
    }

    /** {@return a copy of the expected shape} */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** {@return the expected shape as text, for example {@code [2304, 9216]}} */
    public String shapeString() {
        return Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof WeightSpec w && w.name.equals(name) && Arrays.equals(w.shape, shape) && w.optional == optional
                && java.util.Objects.equals(w.alternativeName, alternativeName);
    }

    @Override
    public int hashCode() {
        return name.hashCode();
    }

    @Override
    public String toString() {
        return name + " " + shapeString() + (optional ? " (optional)" : "");
    }
}
