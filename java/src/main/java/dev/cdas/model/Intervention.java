package dev.cdas.model;

import dev.cdas.InvalidArgumentException;

/**
 * An intervention at the output of block {@code layer}, at real positions
 * {@code t >= prefixLen[b]} (counted from the row's first real token), W [rank x d] fp32
 * row-major. {@link InterventionMode#CLAMP}: {@code h <- h + W^T (a_b - W h)}, a_b is
 * {@code values} [B x rank] or, with {@code sourcePositions}, {@code W h_L} at that position of
 * the same row (un-clamped). {@link InterventionMode#ADD}: {@code h <- h + W^T f_b} with
 * f = {@code values}. prefixLen null = 0.
 *
 * @param layer           the block whose output is changed (0-based)
 * @param rank            the number of directions r
 * @param directions      W, r x d fp32 row-major
 * @param values          the clamp values or the amounts, B x r; null with {@code sourcePositions}
 * @param sourcePositions per row, the real position whose h_L gives a_b (clamp only); null with {@code values}
 * @param prefixLen       per row, the real positions left unchanged; null for none
 * @param mode            clamp or add
 */
public record Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions,
                           int[] prefixLen, InterventionMode mode) {
    /**
     * Checks that the arguments make one intervention.
     *
     * @throws InvalidArgumentException when rank is not positive, directions is not r x d, both or neither
     *         of values and sourcePositions are given, the mode is null, or an addition has no values
     */
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

    /**
     * A clamp ({@link InterventionMode#CLAMP}).
     *
     * @param layer           the block whose output is clamped (0-based)
     * @param rank            the number of directions r
     * @param directions      W, r x d fp32 row-major
     * @param values          the clamp values a, B x r; null with {@code sourcePositions}
     * @param sourcePositions per row, the real position whose h_L gives a_b; null with {@code values}
     * @param prefixLen       per row, the real positions left unchanged; null for none
     * @throws InvalidArgumentException as the canonical constructor
     */
    public Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions, int[] prefixLen) {
        this(layer, rank, directions, values, sourcePositions, prefixLen, InterventionMode.CLAMP);
    }

    /**
     * h + W^T f_b with amounts f [B x rank].
     *
     * @param layer      the block whose output is changed (0-based)
     * @param rank       the number of directions r
     * @param directions W, r x d fp32 row-major
     * @param amounts    f, B x r
     * @param prefixLen  per row, the real positions left unchanged; null for none
     * @return the intervention
     * @throws InvalidArgumentException as the canonical constructor
     */
    public static Intervention add(int layer, int rank, float[] directions, float[] amounts, int[] prefixLen) {
        return new Intervention(layer, rank, directions, amounts, null, prefixLen, InterventionMode.ADD);
    }

    /**
     * Clamp values given per example: values [B x rank].
     *
     * @param layer      the block whose output is clamped (0-based)
     * @param rank       the number of directions r
     * @param directions W, r x d fp32 row-major
     * @param values     a, B x r
     * @param prefixLen  per row, the real positions left unchanged; null for none
     * @return the intervention
     * @throws InvalidArgumentException as the canonical constructor
     */
    public static Intervention clamp(int layer, int rank, float[] directions, float[] values, int[] prefixLen) {
        return new Intervention(layer, rank, directions, values, null, prefixLen);
    }

    /**
     * a = W h_L at each row's source position.
     *
     * @param layer           the block whose output is clamped (0-based)
     * @param rank            the number of directions r
     * @param directions      W, r x d fp32 row-major
     * @param sourcePositions per row, the real position whose h_L (before any clamp) gives a_b
     * @param prefixLen       per row, the real positions left unchanged; null for none
     * @return the intervention
     * @throws InvalidArgumentException as the canonical constructor
     */
    public static Intervention fromSource(int layer, int rank, float[] directions, int[] sourcePositions,
                                          int[] prefixLen) {
        return new Intervention(layer, rank, directions, null, sourcePositions, prefixLen);
    }
}
