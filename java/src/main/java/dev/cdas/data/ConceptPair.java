package dev.cdas.data;

import java.util.Objects;

/**
 * One contrastive training example (docs/method.md section 1): {@code (x, y)} without the concept and
 * {@code (xᶜ, yᶜ)} with it, under the public datasets' field names. {@code origin} says where it
 * came from ("pairs.jsonl line 12", "data.parquet row 3") for messages about it later on.
 *
 * @param negativeInput  the prompt without the concept (x)
 * @param negativeOutput the reply without the concept (y)
 * @param positiveInput  the prompt with the concept (xᶜ)
 * @param positiveOutput the reply with the concept (yᶜ)
 * @param concept        the concept's name
 * @param conceptId      the concept's number (0 when the file gives none)
 * @param origin         where the pair came from, for messages
 */
public record ConceptPair(
        String negativeInput,
        String negativeOutput,
        String positiveInput,
        String positiveOutput,
        String concept,
        long conceptId,
        String origin) {

    /** The field name of {@link #negativeInput()} in pairs files. */
    public static final String NEGATIVE_INPUT = "negative_input";
    /** The field name of {@link #negativeOutput()} in pairs files. */
    public static final String NEGATIVE_OUTPUT = "negative_output";
    /** The field name of {@link #positiveInput()} in pairs files. */
    public static final String POSITIVE_INPUT = "positive_input";
    /** The field name of {@link #positiveOutput()} in pairs files. */
    public static final String POSITIVE_OUTPUT = "positive_output";
    /** The field name of {@link #concept()} in pairs files. */
    public static final String CONCEPT = "concept";
    /** The field name of {@link #conceptId()} in pairs files. */
    public static final String CONCEPT_ID = "concept_id";

    /**
     * Checks that every text, the concept and the origin are present.
     *
     * @throws NullPointerException when one of them is null
     */
    public ConceptPair {
        Objects.requireNonNull(negativeInput, NEGATIVE_INPUT);
        Objects.requireNonNull(negativeOutput, NEGATIVE_OUTPUT);
        Objects.requireNonNull(positiveInput, POSITIVE_INPUT);
        Objects.requireNonNull(positiveOutput, POSITIVE_OUTPUT);
        Objects.requireNonNull(concept, CONCEPT);
        Objects.requireNonNull(origin, "origin");
    }
}
