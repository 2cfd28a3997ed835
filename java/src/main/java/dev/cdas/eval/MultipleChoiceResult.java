package dev.cdas.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.InvalidArgumentException;
import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The scored questions of one run and their mean score: accuracy for MMLU and MC1 (1 when the
 * prediction is the answer, else 0), the mean MC2 score for MC2. {@link #write} saves the report
 * docs/evaluation.md describes.
 *
 * @param format how the questions were scored
 * @param items  the scored questions, at least one
 */
public record MultipleChoiceResult(MultipleChoiceFormat format, List<Scored> items) {
    /**
     * Copies the list.
     *
     * @throws InvalidArgumentException when there is no scored question
     */
    public MultipleChoiceResult {
        items = List.copyOf(items);
        if (items.isEmpty()) {
            throw new InvalidArgumentException("no scored questions");
        }
    }

    /**
     * One question's log-likelihoods, its prediction (the argmax, the first on a tie) and its score
     * (1 or 0 for accuracy; the MC2 mass for MC2).
     *
     * @param item           the question
     * @param loglikelihoods per continuation, the sum of its tokens' log-probabilities (nats); copied in and out
     * @param prediction     the index of the largest log-likelihood
     * @param score          the question's score
     */
    public record Scored(MultipleChoiceItem item, double[] loglikelihoods, int prediction, double score) {
        /** Copies the log-likelihoods. */
        public Scored {
            loglikelihoods = loglikelihoods.clone();
        }

        /** {@return a copy of the log-likelihoods, one per continuation} */
        @Override
        public double[] loglikelihoods() {
            return loglikelihoods.clone();
        }

        /**
         * The prediction and score of {@code loglikelihoods} (one per continuation of {@code item}).
         *
         * @param item           the question
         * @param loglikelihoods one per continuation
         * @param format         how to score (MC2: the true mass; else accuracy)
         * @return the scored question
         * @throws InvalidArgumentException when the counts differ, or (MC2) a log-likelihood is NaN or +infinity
         */
        public static Scored of(MultipleChoiceItem item, double[] loglikelihoods, MultipleChoiceFormat format) {
            if (loglikelihoods.length != item.continuations().size()) {
                throw new InvalidArgumentException(item.source() + ": " + loglikelihoods.length + " log-likelihoods for "
                        + item.continuations().size() + " continuations");
            }
            int prediction = argmax(loglikelihoods);
            double score = format == MultipleChoiceFormat.TRUTHFULQA_MC2
                    ? trueMass(loglikelihoods, item.correct())
                    : prediction == item.answer() ? 1 : 0;
            return new Scored(item, loglikelihoods, prediction, score);
        }
    }

    /**
     * The mean score over the items.
     *
     * @return the accuracy, or the mean MC2 score, in [0, 1]
     */
    public double accuracy() {
        return items.stream().mapToDouble(Scored::score).average().orElseThrow();
    }

    /**
     * The mean score per subject, for the items that have one (MMLU), in subject order.
     *
     * @return the mean score by subject; empty when no item has one
     */
    public Map<String, Double> accuracyBySubject() {
        Map<String, double[]> sums = new TreeMap<>();
        for (Scored s : items) {
            if (s.item().subject() != null) {
                double[] a = sums.computeIfAbsent(s.item().subject(), k -> new double[2]);
                a[0] += s.score();
                a[1]++;
            }
        }
        Map<String, Double> out = new TreeMap<>();
        sums.forEach((k, a) -> out.put(k, a[0] / a[1]));
        return out;
    }

    /**
     * The index of the largest value, the first of equal ones.
     *
     * @param values the values, at least one
     * @return the index
     */
    public static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) {
            if (values[i] > values[best]) {
                best = i;
            }
        }
        return best;
    }

    /**
     * MC2: the probability mass of the true choices normalised over all choices,
     * {@code sum_true exp(ll) / sum_all exp(ll)}, computed after subtracting the largest
     * log-likelihood so that long continuations (very negative sums) do not underflow to 0/0.
     *
     * @param loglikelihoods per choice, its log-likelihood
     * @param correct        per choice, whether it is true
     * @return the true mass, in [0, 1]
     * @throws InvalidArgumentException when the lengths differ or are 0, a value is NaN or +infinity,
     *         or every value is -infinity
     */
    public static double trueMass(double[] loglikelihoods, boolean[] correct) {
        if (loglikelihoods.length != correct.length || loglikelihoods.length == 0) {
            throw new InvalidArgumentException(loglikelihoods.length + " log-likelihoods for " + correct.length + " labels");
        }
        double max = Double.NEGATIVE_INFINITY;
        for (double ll : loglikelihoods) {
            if (Double.isNaN(ll) || ll == Double.POSITIVE_INFINITY) {
                throw new InvalidArgumentException("log-likelihood " + ll + " is not a log-probability");
            }
            max = Math.max(max, ll);
        }
        if (max == Double.NEGATIVE_INFINITY) {
            throw new InvalidArgumentException("every choice has probability 0");
        }
        double all = 0;
        double right = 0;
        for (int i = 0; i < loglikelihoods.length; i++) {
            double p = Math.exp(loglikelihoods[i] - max);
            all += p;
            if (correct[i]) {
                right += p;
            }
        }
        return right / all;
    }

    /**
     * The report as JSON: {@code accuracy}, {@code items} (each with {@code loglikelihoods},
     * {@code prediction}, {@code answer}, and for MC2 {@code labels} and {@code score}), then
     * {@code format}, {@code count}, {@code by_subject} when items have subjects, and the entries of
     * {@code about} (what was run: model, data, steering) under {@code run}.
     *
     * @param about what was run, as key/value pairs
     * @return the report
     */
    public ObjectNode toJson(Map<String, String> about) {
        ObjectMapper json = JsonMapper.builder().build();
        ObjectNode root = json.createObjectNode();
        root.put("accuracy", accuracy());
        ArrayNode list = root.putArray("items");
        for (Scored s : items) {
            ObjectNode o = list.addObject();
            ArrayNode ll = o.putArray("loglikelihoods");
            for (double d : s.loglikelihoods()) {
                ll.add(d);
            }
            o.put("prediction", s.prediction());
            o.put("answer", s.item().answer());
            if (format == MultipleChoiceFormat.TRUTHFULQA_MC2) {
                ArrayNode labels = o.putArray("labels");
                for (boolean b : s.item().correct()) {
                    labels.add(b ? 1 : 0);
                }
                o.put("score", s.score());
            }
            if (s.item().subject() != null) {
                o.put("subject", s.item().subject());
            }
            o.put("source", s.item().source());
        }
        root.put("format", format.id());
        root.put("count", items.size());
        Map<String, Double> bySubject = accuracyBySubject();
        if (!bySubject.isEmpty()) {
            ObjectNode subjects = root.putObject("by_subject");
            bySubject.forEach(subjects::put);
        }
        ObjectNode run = root.putObject("run");
        about.forEach(run::put);
        return root;
    }

    /**
     * Writes {@link #toJson} to {@code out} atomically (temporary file, then rename).
     *
     * @param out   the report file
     * @param about what was run, as key/value pairs
     * @throws IOException when the file cannot be written (the message names it)
     */
    public void write(Path out, Map<String, String> about) throws IOException {
        byte[] bytes = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build()
                .writeValueAsBytes(toJson(about));
        AtomicFiles.write(out, bytes);
    }
}
