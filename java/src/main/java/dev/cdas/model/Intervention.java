package dev.cdas.model;

import dev.cdas.InvalidArgumentException;

/**
 * An intervention at the output of block {@code layer}, at real positions
 * {@code t >= prefixLen[b]} (counted from the row's first real token), W [rank x d] fp32
 * row-major. {@link InterventionMode#CLAMP}: {@code h <- h + W^T (a_b - W h)}, a_b is
 * {@code values} [B x rank] or, with {@code sourcePositions}, {@code W h_L} at that position of
 * the same row (un-clamped). {@link InterventionMode#ADD}: {@code h <- h + W^T f_b} with
 * f = {@code values}. {@link InterventionMode#LOREFT}: {@code h <- h + R^T (M h + b - R h)} with
 * R = {@code directions}, M = {@code loreftWeight} [rank x d], b = {@code loreftBias} [rank].
 * {@link InterventionMode#NULL_OUT}: {@code h <- h - sum_k ReLU(w_k . h) / |w_k|^2 w_k}.
 * prefixLen null = 0; loreftWeight and loreftBias are null except under LOREFT.
 *
 * @param layer           the block whose output is changed (0-based)
 * @param rank            the number of directions r
 * @param directions      W (or LoReFT's R), r x d fp32 row-major
 * @param values          the clamp values or the amounts, B x r; null with {@code sourcePositions},
 *                        under LOREFT and under NULL_OUT
 * @param sourcePositions per row, the real position whose h_L gives a_b (clamp only); null with {@code values}
 * @param prefixLen       per row, the real positions left unchanged; null for none
 * @param mode            clamp, add, LoReFT or null-out
 * @param loreftWeight    LoReFT's M, r x d fp32 row-major; null except under LOREFT
 * @param loreftBias      LoReFT's b, r floats; null except under LOREFT
 */
public record Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions,
                           int[] prefixLen, InterventionMode mode, float[] loreftWeight, float[] loreftBias) {
    /**
     * Checks that the fields a mode takes are there, and only those.
     *
     * @throws InvalidArgumentException when rank is not positive, directions is not r x d, the mode is
     *         null, or the values, source positions and LoReFT parameters do not match the mode
     */
    public Intervention {
        if (rank <= 0 || directions == null || directions.length % rank != 0) {
            throw new InvalidArgumentException("directions must hold rank x d floats with rank > 0, got rank " + rank
                    + " and " + (directions == null ? "null" : directions.length + " floats"));
        }
        if (mode == null) {
            throw new InvalidArgumentException("intervention mode must not be null");
        }
        switch (mode) {
            case CLAMP, ADD -> {
                if ((values == null) == (sourcePositions == null)) {
                    throw new InvalidArgumentException("give exactly one of values and sourcePositions, got "
                            + (values == null ? "neither" : "both"));
                }
                if (mode == InterventionMode.ADD && values == null) {
                    throw new InvalidArgumentException("an additive intervention takes values (the amounts f), not sourcePositions");
                }
            }
            case LOREFT, NULL_OUT -> {
                if (values != null || sourcePositions != null) {
                    throw new InvalidArgumentException("a " + mode + " intervention takes neither values nor sourcePositions");
                }
            }
        }
        if (mode == InterventionMode.LOREFT) {
            if (loreftWeight == null || loreftWeight.length != directions.length) {
                throw new InvalidArgumentException("loreftWeight (M) must hold rank x d = " + directions.length + " floats, got "
                        + (loreftWeight == null ? "null" : loreftWeight.length));
            }
            if (loreftBias == null || loreftBias.length != rank) {
                throw new InvalidArgumentException("loreftBias (b) must hold rank = " + rank + " floats, got "
                        + (loreftBias == null ? "null" : loreftBias.length));
            }
        } else if (loreftWeight != null || loreftBias != null) {
            throw new InvalidArgumentException("loreftWeight and loreftBias belong to a LOREFT intervention, not " + mode);
        }
    }

    /**
     * A CLAMP or ADD intervention (no LoReFT parameters).
     *
     * @param layer the block whose output is changed (0-based)
     * @param rank the number of directions
     * @param directions W, rank x d row-major
     * @param values per row of the batch, rank values (clamp values or added amounts)
     * @param sourcePositions per row, the position whose values are used; null for none
     * @param prefixLen per row, the first position the intervention applies at
     * @param mode CLAMP or ADD
     */
    public Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions, int[] prefixLen,
                        InterventionMode mode) {
        this(layer, rank, directions, values, sourcePositions, prefixLen, mode, null, null);
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

    /**
     * LoReFT, {@code h + R^T (M h + b - R h)}: r = R [rank x d], w = M [rank x d], b [rank]
     * (the same for every row).
     *
     * @param layer the block whose output is changed (0-based)
     * @param r R, rank x d row-major
     * @param w M, rank x d row-major
     * @param b b, rank floats
     * @param rank the rank of the edit
     * @param prefixLen per row, the first position the edit applies at
     * @return the intervention
     */
    public static Intervention loreft(int layer, float[] r, float[] w, float[] b, int rank, int[] prefixLen) {
        return new Intervention(layer, rank, r, null, null, prefixLen, InterventionMode.LOREFT, w, b);
    }

    /**
     * RePS's suppression, {@code h - sum_k ReLU(w_k . h) / |w_k|^2 w_k}, W [rank x d] with nonzero rows.
     *
     * @param layer the block whose output is changed (0-based)
     * @param rank the number of directions
     * @param directions W, rank x d row-major
     * @param prefixLen per row, the first position the null-out applies at
     * @return the intervention
     */
    public static Intervention nullOut(int layer, int rank, float[] directions, int[] prefixLen) {
        return new Intervention(layer, rank, directions, null, null, prefixLen, InterventionMode.NULL_OUT);
    }

    /**
     * Floats in the gradient {@link Model#sequenceLogProbs} returns for this intervention: rank x d
     * (the directions), and under LOREFT 2 rank x d + rank (R, then M, then b).
     *
     * @return the number of parameters
     */
    public int parameterCount() {
        return directions.length + (loreftWeight == null ? 0 : loreftWeight.length + loreftBias.length);
    }
}
