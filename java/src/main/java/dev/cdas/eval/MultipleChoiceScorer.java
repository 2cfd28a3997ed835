package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.TokenBatch;
import dev.cdas.model.Tokenizer;
import dev.cdas.train.ProgressListener;
import dev.cdas.train.SteeringVectorFile;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Scores multiple-choice questions by the log-likelihood of each continuation after the context,
 * as lm-evaluation-harness does (docs/evaluation.md):
 * <ul>
 *   <li>whitespace at the end of the context moves to the start of the continuation;
 *   <li>the context's tokens are {@code encode(context)}; the continuation's are those of
 *       {@code encode(context + continuation)} after its first {@code len(encode(context))}, where
 *       encode is the tokenizer's encoding with the special tokens its post-processor puts before
 *       the text (a BOS, or none), and none after;
 *   <li>a continuation's log-likelihood is the sum, over its tokens, of the log-softmax of the
 *       logits at the position before the token, computed in double precision;
 *   <li>with a steering vector, it acts at its layer on every position from prefix_len on, as in
 *       {@code steer} for a raw prompt: prefix_len is the number of those leading special tokens
 *       (1 with a BOS, else 0).
 * </ul>
 * Continuations whose model inputs coincide (MMLU's one-token " A" ... " D" all read just the
 * context) share one forward pass; the others of a question go through in left-padded batches of
 * at most {@link #MAX_LOGIT_FLOATS} logits.
 */
public final class MultipleChoiceScorer {
    /** The most logits (batch x tokens x vocabulary floats) one forward pass may return: 256 MiB. */
    public static final long MAX_LOGIT_FLOATS = 1L << 26;

    private final Model model;
    private final Tokenizer tokenizer;
    private final SteeringVectorFile vector;
    private final double[] values;
    private final int[] leadingSpecials;

    /**
     * Scores with {@code model} and {@code tokenizer}, steered by {@code vector} with {@code values}
     * (one per row of w, usually {@link SteeringVectorFile#values}), or unsteered when
     * {@code vector} is null.
     *
     * @param model     the model that scores
     * @param tokenizer its tokenizer
     * @param vector    the steering vector, or null for unsteered scoring
     * @param values    one value per row of w (null exactly when {@code vector} is)
     * @throws InvalidArgumentException when the model or tokenizer is missing, values are given without a
     *         vector or the other way round, their count is not the vector's rank, or the vector's
     *         dimension is not the model's hidden size
     */
    public MultipleChoiceScorer(Model model, Tokenizer tokenizer, SteeringVectorFile vector, double[] values) {
        if (model == null || tokenizer == null) {
            throw new InvalidArgumentException("a model and its tokenizer are needed");
        }
        if ((vector == null) != (values == null)) {
            throw new InvalidArgumentException("a steering vector goes with its values (one per row of w)");
        }
        if (vector != null && values.length != vector.rank()) {
            throw new InvalidArgumentException("the vector has " + vector.rank() + " rows but " + values.length + " values were given");
        }
        if (vector != null && !vector.steersByPrompt() && vector.dimension() != model.config().hiddenSize()) {
            throw new InvalidArgumentException("the vector has dimension " + vector.dimension() + " but the model's hidden size is "
                    + model.config().hiddenSize());
        }
        this.model = model;
        this.tokenizer = tokenizer;
        this.vector = vector;
        this.values = values == null ? null : values.clone();
        this.leadingSpecials = tokenizer.prependedSpecialTokens();
    }

    /**
     * Where steering starts in every sequence: the number of leading special tokens (a BOS: 1).
     *
     * @return 0 or more tokens
     */
    public int prefixLen() {
        return leadingSpecials.length;
    }

    /**
     * The tokenizer's encoding of {@code text} with its leading special tokens (a BOS) and none after.
     *
     * @param text the text
     * @return the ids, leading special tokens first
     */
    public int[] encode(String text) {
        int[] body = tokenizer.encode(text, false);
        int[] ids = Arrays.copyOf(leadingSpecials, leadingSpecials.length + body.length);
        System.arraycopy(body, 0, ids, leadingSpecials.length, body.length);
        return ids;
    }

    /**
     * The context's tokens and the continuation's, as the harness splits them.
     *
     * @param context      the context's ids, leading special tokens included
     * @param continuation the continuation's ids, at least one
     */
    public record Encoded(int[] context, int[] continuation) {}

    /**
     * Splits a (context, continuation) pair into tokens as described above.
     *
     * @param context      the context (trailing whitespace moves to the continuation)
     * @param continuation the continuation
     * @return the context's and the continuation's ids
     * @throws InvalidArgumentException when the context encodes to nothing or the continuation adds no token
     */
    public Encoded encode(String context, String continuation) {
        int stripped = context.length();
        while (stripped > 0 && Character.isWhitespace(context.charAt(stripped - 1))) {
            stripped--;
        }
        String ctx = context.substring(0, stripped);
        String cont = context.substring(stripped) + continuation;
        int[] ctxIds = encode(ctx);
        int[] whole = encode(ctx + cont);
        if (ctxIds.length == 0) {
            throw new InvalidArgumentException("the context is empty and the tokenizer adds no BOS: nothing to predict the continuation from");
        }
        if (whole.length <= ctxIds.length) {
            throw new InvalidArgumentException("the continuation \"" + continuation + "\" adds no tokens to the context");
        }
        return new Encoded(ctxIds, Arrays.copyOfRange(whole, ctxIds.length, whole.length));
    }

    /**
     * The log-likelihood of each continuation of {@code item} after its context.
     *
     * @param item the question
     * @return per continuation, the sum of its tokens' log-probabilities in nats
     * @throws InvalidArgumentException when a pair cannot be encoded or is longer than the model's context
     */
    public double[] loglikelihoods(MultipleChoiceItem item) {
        List<String> conts = item.continuations();
        int k = conts.size();
        Encoded[] enc = new Encoded[k];
        // The model reads context + continuation without its last token; identical inputs are run once.
        List<int[]> inputs = new ArrayList<>();
        Map<List<Integer>, Integer> inputIndex = new HashMap<>();
        int[] inputOf = new int[k];
        for (int c = 0; c < k; c++) {
            try {
                enc[c] = encode(context(item), conts.get(c));
            } catch (InvalidArgumentException e) {
                throw new InvalidArgumentException(item.source() + ": " + e.getMessage(), e);
            }
            int[] in = Arrays.copyOf(enc[c].context(), enc[c].context().length + enc[c].continuation().length - 1);
            System.arraycopy(enc[c].continuation(), 0, in, enc[c].context().length, enc[c].continuation().length - 1);
            List<Integer> key = Arrays.stream(in).boxed().toList();
            Integer at = inputIndex.get(key);
            if (at == null) {
                at = inputs.size();
                inputIndex.put(key, at);
                inputs.add(in);
            }
            inputOf[c] = at;
        }
        float[][] logits = new float[inputs.size()][];
        int[] padOf = new int[inputs.size()];
        int[] rowOf = new int[inputs.size()];
        long vocab = model.config().vocabSize();
        for (int start = 0; start < inputs.size(); ) {
            int end = start + 1;
            int longest = inputs.get(start).length;
            while (end < inputs.size()) {
                int t = Math.max(longest, inputs.get(end).length);
                if ((long) (end - start + 1) * t * vocab > MAX_LOGIT_FLOATS) {
                    break;
                }
                longest = t;
                end++;
            }
            float[] out = forward(inputs.subList(start, end), item);
            for (int i = start; i < end; i++) {
                logits[i] = out;
                rowOf[i] = i - start;
                padOf[i] = longest - inputs.get(i).length;
            }
            start = end;
        }
        double[] ll = new double[k];
        int v = (int) vocab;
        for (int c = 0; c < k; c++) {
            int in = inputOf[c];
            int t = inputs.get(in).length + padOf[in];
            int[] cont = enc[c].continuation();
            double sum = 0;
            for (int j = 0; j < cont.length; j++) {
                int position = padOf[in] + enc[c].context().length + j - 1;
                sum += logSoftmax(logits[in], ((long) rowOf[in] * t + position) * v, v, cont[j]);
            }
            ll[c] = sum;
        }
        return ll;
    }

    /**
     * The item's context as the model reads it: unchanged, or with a prompt file's instruction and a
     * blank line before it (there is no chat template here: the instruction starts the raw text,
     * before any preamble).
     */
    String context(MultipleChoiceItem item) {
        return vector == null ? item.context() : vector.message(item.context(), values);
    }

    private float[] forward(List<int[]> rows, MultipleChoiceItem item) {
        int pad = tokenizer.padTokenId().orElse(0);
        Intervention iv = null;
        if (vector != null) {
            int[] prefix = new int[rows.size()];
            Arrays.fill(prefix, prefixLen());
            iv = vector.intervention(values, prefix);
        }
        try {
            return model.forward(TokenBatch.leftPadded(pad, rows.toArray(int[][]::new)), iv, 0,
                    EnumSet.of(ForwardOutput.LOGITS)).logits();
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException(item.source() + ": " + e.getMessage(), e);
        }
    }

    /** log softmax(logits[offset, offset + v))[token], in double precision. */
    static double logSoftmax(float[] logits, long offset, int v, int token) {
        int o = Math.toIntExact(offset);
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, logits[o + i]);
        }
        double sum = 0;
        for (int i = 0; i < v; i++) {
            sum += Math.exp(logits[o + i] - max);
        }
        return logits[o + token] - max - Math.log(sum);
    }

    /**
     * Scores every item in order (the listener, nullable, hears task "mc" after each) and returns
     * the items' log-likelihoods, predictions and scores with the mean score.
     *
     * @param items    the questions, at least one
     * @param format   how to score them
     * @param listener progress reports, or null
     * @return the scored questions and their mean score
     * @throws InvalidArgumentException when there is no question or one cannot be scored
     */
    public MultipleChoiceResult score(List<MultipleChoiceItem> items, MultipleChoiceFormat format, ProgressListener listener) {
        if (items.isEmpty()) {
            throw new InvalidArgumentException("no questions to score");
        }
        List<MultipleChoiceResult.Scored> scored = new ArrayList<>(items.size());
        double total = 0;
        try {
            for (MultipleChoiceItem item : items) {
                MultipleChoiceResult.Scored s = MultipleChoiceResult.Scored.of(item, loglikelihoods(item), format);
                scored.add(s);
                total += s.score();
                if (listener != null) {
                    listener.progress("mc", scored.size(), items.size(),
                            String.format(java.util.Locale.ROOT, "%s %.4f", format == MultipleChoiceFormat.TRUTHFULQA_MC2 ? "mc2" : "acc",
                                    total / scored.size()));
                }
            }
        } finally {
            if (listener != null) {
                listener.finished("mc");
            }
        }
        return new MultipleChoiceResult(format, scored);
    }
}
