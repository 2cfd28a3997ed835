package dev.cdas.model;

import dev.cdas.InvalidArgumentException;

/**
 * An intervention at the output of block {@code layer}, at real positions
 * {@code t >= prefixLen[b]} (counted from the row's first real token), W [rank x d] fp32
 * row-major. {@link InterventionMode#CLAMP}: {@code h <- h + W^T (a_b - W h)}, a_b is
 * {@code values} [B x rank] or, with {@code sourcePositions}, {@code W h_L} at that position of
 * the same row (un-clamped). {@link InterventionMode#ADD}: {@code h <- h + W^T f_b} with
 * f = {@code values}. prefixLen null = 0.
 */
public record Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions,
                           int[] prefixLen, InterventionMode mode) {
    public Intervention {
        if (rank <= 0 || directions == null || directions.length % rank != 0) {
            throw new InvalidArgumentException("directions must hold rank x d floats with rank > 0, got rank " + rank
                    + " and " + (directions == null ? "null" : directions.length + " floats"));
        }
        if ((values == null) == (sourcePositions == null)) {
            throw new InvalidArgumentException("give exactly one of values and sourcePositions, got "
                    + (values == null ? "neither" : "both"));
        }
        if (mode == null) {
            throw new InvalidArgumentException("intervention mode must not be null");
        }
        if (mode == InterventionMode.ADD && values == null) {
            throw new InvalidArgumentException("an additive intervention takes values (the amounts f), not sourcePositions");
        }
    }

    /** A clamp ({@link InterventionMode#CLAMP}). */
    public Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions, int[] prefixLen) {
        this(layer, rank, directions, values, sourcePositions, prefixLen, InterventionMode.CLAMP);
    }

    /** h + W^T f_b with amounts f [B x rank]. */
    public static Intervention add(int layer, int rank, float[] directions, float[] amounts, int[] prefixLen) {
        return new Intervention(layer, rank, directions, amounts, null, prefixLen, InterventionMode.ADD);
    }

    /** Clamp values given per example: values [B x rank]. */
    public static Intervention clamp(int layer, int rank, float[] directions, float[] values, int[] prefixLen) {
        return new Intervention(layer, rank, directions, values, null, prefixLen);
    }

    /** a = W h_L at each row's source position. */
    public static Intervention fromSource(int layer, int rank, float[] directions, int[] sourcePositions,
                                          int[] prefixLen) {
        return new Intervention(layer, rank, directions, null, sourcePositions, prefixLen);
    }
}
