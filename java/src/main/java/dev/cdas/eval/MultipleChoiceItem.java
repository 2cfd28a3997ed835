package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import java.util.List;

/**
 * One question: the context the model reads, the continuations it is scored on, which of them are
 * true ({@code correct}: one for MMLU and MC1, one or more for MC2), the index counted as the
 * answer (MMLU's {@code answer}; TruthfulQA's first true choice), the subject when the row has one
 * (else null) and where the row is ("data.jsonl line 3").
 *
 * @param context       the text the model reads before each continuation
 * @param continuations the texts scored after the context, at least two
 * @param correct       per continuation, whether it is true; copied in and out
 * @param answer        the index counted as the answer, one of the true continuations
 * @param subject       the question's subject, or null
 * @param source        where the row is, for messages
 */
public record MultipleChoiceItem(String context, List<String> continuations, boolean[] correct, int answer,
        String subject, String source) {
    /**
     * Checks the question and copies its lists.
     *
     * @throws InvalidArgumentException when there are fewer than two continuations, the marks do not
     *         match them, or the answer is not a true continuation
     */
    public MultipleChoiceItem {
        continuations = List.copyOf(continuations);
        if (continuations.size() < 2 || correct.length != continuations.size()) {
            throw new InvalidArgumentException(source + ": needs at least two continuations, each marked true or not; got "
                    + continuations.size() + " continuations and " + correct.length + " marks");
        }
        if (answer < 0 || answer >= correct.length || !correct[answer]) {
            throw new InvalidArgumentException(source + ": answer " + answer + " is not one of the true continuations");
        }
        correct = correct.clone();
    }

    /** {@return a copy of the true/false mark of each continuation} */
    @Override
    public boolean[] correct() {
        return correct.clone();
    }
}
