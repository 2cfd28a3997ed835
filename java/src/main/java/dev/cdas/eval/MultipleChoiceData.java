package dev.cdas.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cdas.data.DataFormatException;
import dev.cdas.data.TableRows;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Multiple-choice questions from the files users download, JSONL or Parquet:
 * <ul>
 *   <li>MMLU ({@code cais/mmlu}): {@code question}, {@code choices} (a list of strings),
 *       {@code answer} (the index, or the letter "A".."Z"), optional {@code subject};
 *   <li>TruthfulQA multiple choice ({@code truthful_qa}, config {@code multiple_choice}):
 *       {@code question} and {@code mc1_targets} or {@code mc2_targets}, each
 *       {@code {"choices": [...], "labels": [1, 0, ...]}}.
 * </ul>
 * The prompts are lm-evaluation-harness's (docs/evaluation.md): {@link #mmluContext} with
 * continuations " A", " B", ...; {@link #truthfulQaContext} with each choice after a space.
 * Other columns are ignored. A malformed row is a {@link DataFormatException} naming the file,
 * the line or row and the field.
 */
public final class MultipleChoiceData {
    private static final String LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

    private MultipleChoiceData() {}

    /**
     * The questions of {@code file} in {@code format}, each context preceded by {@code preamble}
     * (verbatim; "" for none, e.g. a few-shot block).
     *
     * @param file     a JSONL or Parquet file
     * @param format   the layout of its rows
     * @param preamble text put before every context
     * @return the questions, in file order
     * @throws DataFormatException when a row is malformed (the message names the file, row and field)
     * @throws IOException         when the file cannot be read
     */
    public static List<MultipleChoiceItem> read(Path file, MultipleChoiceFormat format, String preamble) throws IOException {
        String targets = targetsColumn(format);
        List<TableRows.Row> rows = format == MultipleChoiceFormat.MMLU
                ? TableRows.read(file, Set.of("question", "choices", "answer"), Set.of("subject"))
                : TableRows.read(file, Set.of("question", targets), Set.of());
        List<MultipleChoiceItem> items = new ArrayList<>(rows.size());
        for (TableRows.Row row : rows) {
            items.add(format == MultipleChoiceFormat.MMLU ? mmlu(row, file, preamble) : truthfulQa(row, targets, file, preamble));
        }
        return items;
    }

    /**
     * MMLU's zero-shot prompt: "The following are multiple choice questions (with answers) about
     * {subject}.\n\n" when there is a subject (underscores read as spaces), the question (stripped),
     * one line "X. choice" per choice, then "Answer:".
     *
     * @param subject  the subject, or null or blank for none
     * @param question the question
     * @param choices  the choices, at most 26
     * @return the context
     */
    public static String mmluContext(String subject, String question, List<String> choices) {
        StringBuilder sb = new StringBuilder();
        if (subject != null && !subject.isBlank()) {
            sb.append("The following are multiple choice questions (with answers) about ")
                    .append(subject.replace('_', ' ').strip()).append(".\n\n");
        }
        sb.append(question.strip()).append('\n');
        for (int i = 0; i < choices.size(); i++) {
            sb.append(LETTERS.charAt(i)).append(". ").append(choices.get(i)).append('\n');
        }
        return sb.append("Answer:").toString();
    }

    /**
     * MMLU's continuation for choice {@code i}: " A", " B", ...
     *
     * @param i the choice's index, 0 to 25
     * @return the continuation
     */
    public static String mmluContinuation(int i) {
        return " " + LETTERS.charAt(i);
    }

    /**
     * TruthfulQA's prompt: "Q: {question}\nA:"; each choice is scored as " {choice}".
     *
     * @param question the question
     * @return the context
     */
    public static String truthfulQaContext(String question) {
        return "Q: " + question + "\nA:";
    }

    private static String targetsColumn(MultipleChoiceFormat format) {
        return format == MultipleChoiceFormat.TRUTHFULQA_MC2 ? "mc2_targets" : "mc1_targets";
    }

    private static MultipleChoiceItem mmlu(TableRows.Row row, Path file, String preamble) throws DataFormatException {
        String where = row.location();
        JsonNode node = row.values();
        String question = text(required(node, "question", file, where), "question", file, where);
        List<String> choices = strings(required(node, "choices", file, where), "choices", file, where);
        if (choices.size() > LETTERS.length()) {
            throw new DataFormatException(file, where, "choices", "has " + choices.size() + " choices; at most "
                    + LETTERS.length() + " (A to Z) are supported");
        }
        int answer = mmluAnswer(required(node, "answer", file, where), choices.size(), file, where);
        JsonNode s = node.get("subject");
        String subject = null;
        if (s != null && !s.isNull()) {
            subject = text(s, "subject", file, where);
            subject = subject.isBlank() ? null : subject;
        }
        List<String> continuations = new ArrayList<>();
        for (int i = 0; i < choices.size(); i++) {
            continuations.add(mmluContinuation(i));
        }
        boolean[] correct = new boolean[choices.size()];
        correct[answer] = true;
        return new MultipleChoiceItem(preamble + mmluContext(subject, question, choices), continuations, correct, answer,
                subject, file.getFileName() + " " + where);
    }

    private static int mmluAnswer(JsonNode v, int n, Path file, String where) throws DataFormatException {
        int answer;
        if (v.isIntegralNumber() && v.canConvertToInt()) {
            answer = v.intValue();
        } else if (v.isTextual() && v.textValue().strip().length() == 1
                && LETTERS.indexOf(v.textValue().strip().toUpperCase(Locale.ROOT)) >= 0) {
            answer = LETTERS.indexOf(v.textValue().strip().toUpperCase(Locale.ROOT));
        } else {
            throw new DataFormatException(file, where, "answer", "expected the index of the right choice (0 = A) or its letter, found "
                    + describe(v));
        }
        if (answer < 0 || answer >= n) {
            throw new DataFormatException(file, where, "answer", "is " + answer + " but there are " + n + " choices (0.." + (n - 1) + ")");
        }
        return answer;
    }

    private static MultipleChoiceItem truthfulQa(TableRows.Row row, String targets, Path file, String preamble)
            throws DataFormatException {
        String where = row.location();
        JsonNode node = row.values();
        String question = text(required(node, "question", file, where), "question", file, where);
        JsonNode t = required(node, targets, file, where);
        if (!t.isObject()) {
            throw new DataFormatException(file, where, targets, "expected an object {\"choices\": [...], \"labels\": [...]}, found "
                    + describe(t));
        }
        List<String> choices = strings(required(t, "choices", file, where, targets + ".choices"), targets + ".choices", file, where);
        JsonNode labels = required(t, "labels", file, where, targets + ".labels");
        String labelsField = targets + ".labels";
        if (!labels.isArray()) {
            throw new DataFormatException(file, where, labelsField, "expected a list of 0/1, found " + describe(labels));
        }
        if (labels.size() != choices.size()) {
            throw new DataFormatException(file, where, labelsField, "has " + labels.size() + " labels for " + choices.size() + " choices");
        }
        boolean[] correct = new boolean[choices.size()];
        int first = -1;
        for (int i = 0; i < correct.length; i++) {
            JsonNode l = labels.get(i);
            if (l.isIntegralNumber() && (l.asLong() == 0 || l.asLong() == 1)) {
                correct[i] = l.asLong() == 1;
            } else if (l.isBoolean()) {
                correct[i] = l.booleanValue();
            } else {
                throw new DataFormatException(file, where, labelsField, "label " + i + " is " + describe(l) + "; expected 0 or 1");
            }
            if (correct[i] && first < 0) {
                first = i;
            }
        }
        if (first < 0) {
            throw new DataFormatException(file, where, labelsField, "no choice is labelled 1 (true)");
        }
        List<String> continuations = choices.stream().map(c -> " " + c).toList();
        return new MultipleChoiceItem(preamble + truthfulQaContext(question), continuations, correct, first, null,
                file.getFileName() + " " + where);
    }

    private static JsonNode required(JsonNode node, String name, Path file, String where) throws DataFormatException {
        return required(node, name, file, where, name);
    }

    private static JsonNode required(JsonNode node, String name, Path file, String where, String field) throws DataFormatException {
        JsonNode v = node.get(name);
        if (v == null) {
            throw new DataFormatException(file, where, field, "missing");
        }
        if (v.isNull()) {
            throw new DataFormatException(file, where, field, "is null");
        }
        return v;
    }

    private static String text(JsonNode v, String field, Path file, String where) throws DataFormatException {
        if (!v.isTextual()) {
            throw new DataFormatException(file, where, field, "expected a string, found " + describe(v));
        }
        return v.textValue();
    }

    private static List<String> strings(JsonNode v, String field, Path file, String where) throws DataFormatException {
        if (!v.isArray()) {
            throw new DataFormatException(file, where, field, "expected a list of strings, found " + describe(v));
        }
        if (v.size() < 2) {
            throw new DataFormatException(file, where, field, "has " + v.size() + " choice" + (v.size() == 1 ? "" : "s") + "; need at least 2");
        }
        List<String> out = new ArrayList<>(v.size());
        for (int i = 0; i < v.size(); i++) {
            JsonNode c = v.get(i);
            if (!c.isTextual()) {
                throw new DataFormatException(file, where, field, "choice " + i + " is " + describe(c) + "; expected a string");
            }
            out.add(c.textValue());
        }
        return out;
    }

    private static String describe(JsonNode v) {
        if (v.isNull()) {
            return "null";
        }
        String s = v.toString();
        return v.getNodeType().toString().toLowerCase(Locale.ROOT) + " " + (s.length() > 40 ? s.substring(0, 40) + "..." : s);
    }
}
