package dev.cdas.model;

/**
 * Mean loss over the compared rows and gradScale x dLoss/dW (null when not asked).
 *
 * @param loss           the mean loss over the compared rows, in nats
 * @param gradDirections gradScale x dLoss/dW, rank x d row-major, or null
 */
public record ObjectiveResult(float loss, float[] gradDirections) {
}
