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
    Factors estimate(float[] w, int rank, List<ConceptPair> pairs);

    record Factors(double[] positive, double[] negative) {
        public Factors {
            positive = positive.clone();
            negative = negative.clone();
            if (positive.length != negative.length || positive.length == 0) {
                throw new InvalidArgumentException("one positive and one negative factor per row");
            }
        }

        @Override
        public double[] positive() {
            return positive.clone();
        }

        @Override
        public double[] negative() {
            return negative.clone();
        }
    }
}
