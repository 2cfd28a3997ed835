package dev.cdas.model;

/** Mean loss over the compared rows and gradScale x dLoss/dW (null when not asked). */
public record ObjectiveResult(float loss, float[] gradDirections) {
}
