package dev.cdas.train;

import dev.cdas.InvalidArgumentException;

/**
 * Linear decay from the base learning rate to 0 over {@code totalSteps}, no warm-up: step
 * {@code k} (0-based) uses {@code lr · (total − k) / total}, as transformers'
 * {@code get_linear_schedule_with_warmup(num_warmup_steps=0)}; the first step uses the full rate,
 * the last one {@code lr / total}.
 *
 * @param baseLr     the first step's learning rate, positive and finite
 * @param totalSteps the number of steps, at least 1
 */
public record LinearDecaySchedule(double baseLr, long totalSteps) {
    /**
     * Checks the rate and the step count.
     *
     * @throws InvalidArgumentException when the rate is not positive and finite or the steps are below 1
     */
    public LinearDecaySchedule {
        if (!(baseLr > 0) || Double.isInfinite(baseLr)) {
            throw new InvalidArgumentException("learning rate must be positive and finite: " + baseLr);
        }
        if (totalSteps < 1) {
            throw new InvalidArgumentException("total steps must be at least 1: " + totalSteps);
        }
    }

    /**
     * The learning rate of one step.
     *
     * @param step the step, 0-based
     * @return {@code baseLr * (totalSteps - step) / totalSteps}, 0 from {@code totalSteps} on
     * @throws InvalidArgumentException when {@code step} is negative
     */
    public double lr(long step) {
        if (step < 0) {
            throw new InvalidArgumentException("negative step " + step);
        }
        return baseLr * Math.max(0.0, (double) (totalSteps - step) / totalSteps);
    }
}
