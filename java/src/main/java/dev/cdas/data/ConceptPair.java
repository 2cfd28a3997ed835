package dev.cdas.data;

import java.util.Objects;

/**
 * One contrastive training example (docs/method.md section 1): {@code (x, y)} without the concept and
 * {@code (xᶜ, yᶜ)} with it, under the public datasets' field names. {@code origin} says where it
 * came from ("pairs.jsonl line 12", "data.parquet row 3") for messages about it later on.
 */
public record ConceptPair(
        String negativeInput,
        String negativeOutput,
        String positiveInput,
        String positiveOutput,
        String concept,
        long conceptId,
        String origin) {

    public static final String NEGATIVE_INPUT = "negative_input";
    public static final String NEGATIVE_OUTPUT = "negative_output";
    public static final String POSITIVE_INPUT = "positive_input";
    public static final String POSITIVE_OUTPUT = "positive_output";
    public static final String CONCEPT = "concept";
    public static final String CONCEPT_ID = "concept_id";

    public ConceptPair {
        Objects.requireNonNull(negativeInput, NEGATIVE_INPUT);
        Objects.requireNonNull(negativeOutput, NEGATIVE_OUTPUT);
        Objects.requireNonNull(positiveInput, POSITIVE_INPUT);
        Objects.requireNonNull(positiveOutput, POSITIVE_OUTPUT);
        Objects.requireNonNull(concept, CONCEPT);
        Objects.requireNonNull(origin, "origin");
    }
}
