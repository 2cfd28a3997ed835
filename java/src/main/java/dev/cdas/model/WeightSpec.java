package dev.cdas.model;

import java.util.Arrays;

/**
 * A tensor a checkpoint must (or may) hold for a given config: the canonical transformers name
 * and the shape the config implies. {@code optional} marks tensors a checkpoint may omit (a tied
 * {@code lm_head.weight}); {@code alternativeName} (nullable) is the name some hub files use
 * instead (GPT-2's without the "transformer." prefix).
 */
public record WeightSpec(String name, long[] shape, boolean optional, String alternativeName) {
    public WeightSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

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
