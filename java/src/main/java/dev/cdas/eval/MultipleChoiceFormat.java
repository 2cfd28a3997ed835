package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import java.util.Arrays;
import java.util.Locale;

/** The multiple-choice benchmarks {@code mc} scores, each with its prompt and metric (docs/evaluation.md). */
public enum MultipleChoiceFormat {
    /** MMLU, zero-shot: continuations " A", " B", ...; accuracy of the argmax. */
    MMLU("mmlu"),
    /** TruthfulQA MC1: {@code mc1_targets}; correct when the argmax is the first true choice. */
    TRUTHFULQA_MC1("truthfulqa-mc1"),
    /** TruthfulQA MC2: {@code mc2_targets}; the probability mass of the true choices, normalised over all. */
    TRUTHFULQA_MC2("truthfulqa-mc2");

    private final String id;

    MultipleChoiceFormat(String id) {
        this.id = id;
    }

    /**
     * The name on the command line and in reports ("truthfulqa-mc1").
     *
     * @return the id
     */
    public String id() {
        return id;
    }

    /**
     * The format of a name: case-insensitive, underscores read as hyphens.
     *
     * @param name "mmlu", "truthfulqa-mc1" or "truthfulqa-mc2"
     * @return the format
     * @throws InvalidArgumentException when the name is none of those
     */
    public static MultipleChoiceFormat parse(String name) {
        String n = name == null ? "" : name.strip().toLowerCase(Locale.ROOT).replace('_', '-');
        for (MultipleChoiceFormat f : values()) {
            if (f.id.equals(n)) {
                return f;
            }
        }
        throw new InvalidArgumentException("unknown multiple-choice format \"" + name + "\"; expected one of "
                + Arrays.stream(values()).map(MultipleChoiceFormat::id).toList());
    }

    @Override
    public String toString() {
        return id;
    }
}
