package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.util.List;

/**
 * Hook for the model runtime: the steering factors of docs/method.md section 1, computed after
 * training on the training prompts cut after the source token, {@code a⁺ = mean wᵀh_L} over the
 * {@code xᶜ} prompts and {@code a⁻ = mean wᵀh_L} over the {@code x} prompts, one value per row of
 * {@code w}.
 */
public interface SteeringFactorEstimator {
    /**
     * The factors of trained directions.
     *
     * @param w     the directions, rank x d row-major
     * @param rank  the number of rows
     * @param pairs the training pairs (their prompts)
     * @return a+ and a-, one value per row
     */
    Factors estimate(float[] w, int rank, List<ConceptPair> pairs);

    /**
     * The clamp values that inject ({@code positive}) and suppress ({@code negative}) the concept.
     *
     * @param positive a+, one value per row of w; copied in and out
     * @param negative a-, one value per row of w; copied in and out
     */
    record Factors(double[] positive, double[] negative) {
        /**
         * Copies the arrays.
         *
         * @throws InvalidArgumentException when they are empty or of different lengths
         */
        public Factors {
            positive = positive.clone();
            negative = negative.clone();
            if (positive.length != negative.length || positive.length == 0) {
                throw new InvalidArgumentException("one positive and one negative factor per row");
            }
        }

        /** {@return a copy of a+} */
        @Override
        public double[] positive() {
            return positive.clone();
        }

        /** {@return a copy of a-} */
        @Override
        public double[] negative() {
            return negative.clone();
        }
    }
}
