package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import java.util.List;

/**
 * One question: the context the model reads, the continuations it is scored on, which of them are
 * true ({@code correct}: one for MMLU and MC1, one or more for MC2), the index counted as the
 * answer (MMLU's {@code answer}; TruthfulQA's first true choice), the subject when the row has one
 * (else null) and where the row is ("data.jsonl line 3").
 */
public record MultipleChoiceItem(String context, List<String> continuations, boolean[] correct, int answer,
        String subject, String source) {
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

    @Override
    public boolean[] correct() {
        return correct.clone();
    }
}
