package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.OptionalInt;
import java.util.Random;

/**
 * The arithmetic of the steering score (AxBench's): each reply is rated on concept, instruction
 * and fluency (0, 1 or 2); its score is the harmonic mean of the three (0 when any is 0); a factor's
 * score is the mean of its replies' scores. Ratings are {@link #UNPARSEABLE} or {@link #FAILED}
 * when the judge gave none: such a rating is left out of its axis's mean and its reply out of the
 * harmonic mean, and both are counted, so they never pass for a 0.
 */
public final class SteeringScores {
    /** A rating the judge answered but not in the required form. */
    public static final int UNPARSEABLE = -1;
    /** A rating the judge did not answer (time limit, retries spent). */
    public static final int FAILED = -2;

    /** The axes of a steered reply, in report order. */
    public static final List<JudgeAxis> AXES = List.of(JudgeAxis.CONCEPT, JudgeAxis.INSTRUCTION, JudgeAxis.FLUENCY);

    private SteeringScores() {}

    /**
     * The harmonic mean of ratings in 0..2: 0 when any is 0.
     *
     * @param ratings the ratings, at least one, none negative
     * @return the harmonic mean, in [0, 2]
     * @throws InvalidArgumentException when there is no rating or one is negative
     */
    public static double harmonicMean(int... ratings) {
        if (ratings.length == 0) {
            throw new InvalidArgumentException("no ratings to average");
        }
        double inv = 0;
        for (int r : ratings) {
            if (r < 0) {
                throw new InvalidArgumentException("a harmonic mean of ratings needs every rating, got " + r);
            }
            if (r == 0) {
                return 0;
            }
            inv += 1.0 / r;
        }
        return ratings.length / inv;
    }

    /**
     * The harmonic mean of two shares in [0, 1] (0 when both are 0), as for the refusal study's score.
     *
     * @param a the first share
     * @param b the second share
     * @return 2ab / (a + b), or 0
     */
    public static double harmonicMean(double a, double b) {
        return a + b == 0 ? 0 : 2 * a * b / (a + b);
    }

    /**
     * One reply's ratings, in {@link #AXES} order.
     *
     * @param concept     the concept rating, 0 to 2, or a negative marker
     * @param instruction the instruction rating, 0 to 2, or a negative marker
     * @param fluency     the fluency rating, 0 to 2, or a negative marker
     */
    public record ReplyRatings(int concept, int instruction, int fluency) {
        /** {@return the three ratings, in {@link #AXES} order} */
        public int[] values() {
            return new int[] {concept, instruction, fluency};
        }

        /**
         * Whether all three were rated.
         *
         * @return true when no rating is negative
         */
        public boolean complete() {
            return concept >= 0 && instruction >= 0 && fluency >= 0;
        }

        /**
         * The reply's score, NaN when not {@link #complete}.
         *
         * @return the harmonic mean of the three, or NaN
         */
        public double harmonic() {
            return complete() ? harmonicMean(concept, instruction, fluency) : Double.NaN;
        }
    }

    /**
     * A factor's scores over some replies: each axis's mean over its parsed ratings and the mean
     * harmonic score over the replies rated on all three axes ({@code scored} of {@code replies});
     * NaN where nothing counts. {@code unparseable} and {@code failed} count ratings.
     *
     * @param factor      the multiplier m
     * @param replies     the replies summarised
     * @param concept     the mean concept rating, or NaN
     * @param instruction the mean instruction rating, or NaN
     * @param fluency     the mean fluency rating, or NaN
     * @param harmonic    the mean harmonic score over the complete replies, or NaN
     * @param scored      the replies rated on all three axes
     * @param unparseable the ratings the judge answered without the required form
     * @param failed      the ratings the judge gave no answer for
     */
    public record Summary(double factor, int replies, double concept, double instruction, double fluency, double harmonic,
            int scored, int unparseable, int failed) {}

    /**
     * Summarises one factor's replies.
     *
     * @param factor  the multiplier m
     * @param ratings the replies' ratings
     * @return the means and counts
     */
    public static Summary summarise(double factor, List<ReplyRatings> ratings) {
        double[] sum = new double[3];
        int[] n = new int[3];
        double h = 0;
        int scored = 0;
        int unparseable = 0;
        int failed = 0;
        for (ReplyRatings r : ratings) {
            int[] v = r.values();
            for (int a = 0; a < 3; a++) {
                if (v[a] >= 0) {
                    sum[a] += v[a];
                    n[a]++;
                } else if (v[a] == UNPARSEABLE) {
                    unparseable++;
                } else {
                    failed++;
                }
            }
            if (r.complete()) {
                h += r.harmonic();
                scored++;
            }
        }
        return new Summary(factor, ratings.size(), mean(sum[0], n[0]), mean(sum[1], n[1]), mean(sum[2], n[2]),
                mean(h, scored), scored, unparseable, failed);
    }

    private static double mean(double sum, int n) {
        return n == 0 ? Double.NaN : sum / n;
    }

    /**
     * Indices of a validation and a test split.
     *
     * @param validation the indices tuned on, sorted
     * @param test       the indices reported, sorted
     */
    public record Split(int[] validation, int[] test) {}

    /**
     * Splits {@code n} items by a shuffle seeded with {@code seed} (java.util.Random, so the same on
     * every JVM): the first round(n * validationFraction) shuffled indices (at least one, and at
     * least one left for the test) are the validation split; each split is sorted.
     *
     * @param n                  the number of items, at least 2
     * @param seed               the shuffle's seed
     * @param validationFraction the validation share, strictly between 0 and 1
     * @return the two splits
     * @throws InvalidArgumentException when n is below 2 or the fraction is outside (0, 1)
     */
    public static Split split(int n, long seed, double validationFraction) {
        if (n < 2) {
            throw new InvalidArgumentException("a validation/test split needs at least 2 instructions, got " + n);
        }
        if (!(validationFraction > 0 && validationFraction < 1)) {
            throw new InvalidArgumentException("the validation fraction must be between 0 and 1 (exclusive), got " + validationFraction);
        }
        List<Integer> idx = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            idx.add(i);
        }
        Collections.shuffle(idx, new Random(seed));
        int v = (int) Math.max(1, Math.min(n - 1, Math.round(n * validationFraction)));
        int[] val = idx.subList(0, v).stream().mapToInt(Integer::intValue).sorted().toArray();
        int[] test = idx.subList(v, n).stream().mapToInt(Integer::intValue).sorted().toArray();
        return new Split(val, test);
    }

    /**
     * The ratings at {@code indices}.
     *
     * @param all     every reply's ratings
     * @param indices the replies to keep
     * @return their ratings, in {@code indices} order
     */
    public static List<ReplyRatings> select(List<ReplyRatings> all, int[] indices) {
        return Arrays.stream(indices).mapToObj(all::get).toList();
    }

    /**
     * The index of the factor with the highest mean harmonic score on validation (the first of
     * equals, in grid order); empty when no factor has a scored reply.
     *
     * @param validation one summary per factor, in grid order
     * @return the index of the best factor, or empty
     */
    public static OptionalInt tune(List<Summary> validation) {
        int best = -1;
        for (int i = 0; i < validation.size(); i++) {
            double h = validation.get(i).harmonic();
            if (!Double.isNaN(h) && (best < 0 || h > validation.get(best).harmonic())) {
                best = i;
            }
        }
        return best < 0 ? OptionalInt.empty() : OptionalInt.of(best);
    }
}
