package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.TokenBatch;
import dev.cdas.train.ProgressListener;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A local judge that always gives a rating: instead of generating an answer, it scores each
 * possible answer {@code "Rating: 0"}, {@code "Rating: 1"}, ... (up to the axis's highest rating)
 * by its log-likelihood as the judge's reply, and the most likely one is the rating, as
 * lm-evaluation-harness scores multiple-choice questions (docs/evaluation.md):
 * <ul>
 *   <li>the context is the judge prompt as one user turn in the folder's chat template with the
 *       generation prompt (the tokens the generating {@link LocalJudge} starts from); with no chat
 *       template, the raw prompt with the tokenizer's special tokens;
 *   <li>a candidate's tokens are those of {@code encode(context + candidate)} after the first
 *       {@code len(encode(context))}, encode being the same encoding of the text; its
 *       log-likelihood is the sum of their log-softmax values (double precision) at the positions
 *       before them, unsteered;
 *   <li>the rating is the argmax (the lowest rating on a tie); the candidates' probabilities
 *       normalised over the candidates, {@code exp(ll_k) / Σ_j exp(ll_j)}, are recorded.
 * </ul>
 * The verdict's text is one line with the normalised probabilities and log-likelihoods, then the
 * line {@code Rating: N}, so the strict parser reads it like a generated answer and the reports keep
 * the probabilities in the judge's raw answer. A prompt the model cannot take (longer than its
 * context) is a failed verdict naming the reason. The folder and model stay the caller's to close.
 */
public final class LoglikJudge implements Judge {
    private final ModelFolder folder;
    private final Model model;
    private final int batchSize;

    /**
     * A judge that scores the rating answers with a local model.
     *
     * @param folder    the judge model's folder (tokenizer and chat template)
     * @param model     the judge model, loaded from {@code folder}
     * @param batchSize the prompts scored in one forward pass at most, at least 1 (fewer when their logits would
     *                  exceed {@link MultipleChoiceScorer#MAX_LOGIT_FLOATS})
     * @throws InvalidArgumentException when batchSize is below 1
     */
    public LoglikJudge(ModelFolder folder, Model model, int batchSize) {
        if (batchSize < 1) {
            throw new InvalidArgumentException("the log-likelihood judge's batch size must be at least 1");
        }
        this.folder = folder;
        this.model = model;
        this.batchSize = batchSize;
    }

    /**
     * The candidate answers for ratings 0 to {@code maxRating}.
     *
     * @param maxRating the highest rating, at least 1
     * @return {@code "Rating: 0"} ... {@code "Rating: maxRating"}
     * @throws InvalidArgumentException when maxRating is below 1 or above 9
     */
    public static List<String> candidates(int maxRating) {
        if (maxRating < 1 || maxRating > 9) {
            throw new InvalidArgumentException("ratings must run from 0 to a maximum of 1 to 9, got " + maxRating);
        }
        List<String> out = new ArrayList<>();
        for (int r = 0; r <= maxRating; r++) {
            out.add("Rating: " + r);
        }
        return out;
    }

    @Override
    public String id() {
        return id(2);
    }

    @Override
    public String id(int maxRating) {
        return "local:" + folder.folder().toAbsolutePath().normalize() + ":loglik:ratings=0.." + maxRating + ":dtype=" + model.dtype();
    }

    @Override
    public List<Verdict> judge(List<String> prompts, ProgressListener listener) {
        return judge(prompts, 2, listener);
    }

    /**
     * One prompt's scoring: the candidates' log-likelihoods, the rating and the verdict text.
     *
     * @param loglikelihoods per candidate, in nats
     * @param probabilities  per candidate, normalised over the candidates
     * @param rating         the argmax (the lowest on a tie)
     */
    public record Scores(double[] loglikelihoods, double[] probabilities, int rating) {
        /**
         * Normalises the log-likelihoods and picks the rating.
         *
         * @param loglikelihoods per candidate, at least one, finite
         * @return the scores
         */
        public static Scores of(double[] loglikelihoods) {
            double max = Double.NEGATIVE_INFINITY;
            int best = 0;
            for (int k = 0; k < loglikelihoods.length; k++) {
                if (loglikelihoods[k] > max) {
                    max = loglikelihoods[k];
                    best = k;
                }
            }
            double z = 0;
            for (double ll : loglikelihoods) {
                z += Math.exp(ll - max);
            }
            double[] p = new double[loglikelihoods.length];
            for (int k = 0; k < p.length; k++) {
                p[k] = Math.exp(loglikelihoods[k] - max) / z;
            }
            return new Scores(loglikelihoods.clone(), p, best);
        }

        /** {@return the verdict text: the probabilities and log-likelihoods on one line, then {@code Rating: N}} */
        public String text() {
            StringBuilder sb = new StringBuilder("loglik");
            for (int k = 0; k < probabilities.length; k++) {
                sb.append(String.format(Locale.ROOT, " p(%d)=%.4f", k, probabilities[k]));
            }
            sb.append(" ll=[");
            for (int k = 0; k < loglikelihoods.length; k++) {
                sb.append(k == 0 ? "" : ", ").append(String.format(Locale.ROOT, "%.4f", loglikelihoods[k]));
            }
            return sb.append("]\nRating: ").append(rating).toString();
        }
    }

    /** A prompt's rows: the distinct model inputs and which one each candidate reads. */
    private record Rows(List<int[]> inputs, int[] inputOf, int[][] continuations, int[] contextLength) {}

    /** Encodes {@code text} as the prompt encoder encodes a rendered prompt. */
    private int[] encodeLike(PromptEncoder p, String text) {
        return p.tokenizer().encode(text, !p.usesChatTemplate());
    }

    private Rows rows(String prompt, List<String> candidates) throws ChatTemplateException {
        PromptEncoder p = folder.prompts();
        String context = p.encodePrompt(prompt).text();
        int[] ctx = encodeLike(p, context);
        List<int[]> inputs = new ArrayList<>();
        Map<List<Integer>, Integer> index = new HashMap<>();
        int[] inputOf = new int[candidates.size()];
        int[][] conts = new int[candidates.size()][];
        int[] ctxLen = new int[candidates.size()];
        for (int c = 0; c < candidates.size(); c++) {
            int[] whole = encodeLike(p, context + candidates.get(c));
            if (whole.length <= ctx.length) {
                throw new InvalidArgumentException("the answer \"" + candidates.get(c) + "\" adds no tokens to the judge prompt");
            }
            conts[c] = Arrays.copyOfRange(whole, ctx.length, whole.length);
            ctxLen[c] = ctx.length;
            int[] in = Arrays.copyOf(whole, whole.length - 1);
            // the model reads the context's own tokens (as the generating judge does), then the candidate's
            System.arraycopy(ctx, 0, in, 0, ctx.length);
            List<Integer> key = Arrays.stream(in).boxed().toList();
            Integer at = index.get(key);
            if (at == null) {
                at = inputs.size();
                index.put(key, at);
                inputs.add(in);
            }
            inputOf[c] = at;
        }
        return new Rows(inputs, inputOf, conts, ctxLen);
    }

    /** The scores of every prompt of {@code batch} with one forward pass over all their distinct rows. */
    private List<Scores> scoreBatch(List<Rows> batch) {
        List<int[]> all = new ArrayList<>();
        for (Rows r : batch) {
            all.addAll(r.inputs());
        }
        int longest = all.stream().mapToInt(a -> a.length).max().orElse(0);
        int pad = folder.tokenizer().padTokenId().orElse(0);
        float[] logits = model.forward(TokenBatch.leftPadded(pad, all.toArray(int[][]::new)), null, 0,
                EnumSet.of(ForwardOutput.LOGITS)).logits();
        int vocab = model.config().vocabSize();
        List<Scores> out = new ArrayList<>(batch.size());
        int first = 0;
        for (Rows r : batch) {
            double[] ll = new double[r.continuations().length];
            for (int c = 0; c < ll.length; c++) {
                int row = first + r.inputOf()[c];
                int padding = longest - all.get(row).length;
                int[] cont = r.continuations()[c];
                double sum = 0;
                for (int j = 0; j < cont.length; j++) {
                    int position = padding + r.contextLength()[c] + j - 1;
                    sum += MultipleChoiceScorer.logSoftmax(logits, ((long) row * longest + position) * vocab, vocab, cont[j]);
                }
                ll[c] = sum;
            }
            out.add(Scores.of(ll));
            first += r.inputs().size();
        }
        return out;
    }

    /**
     * The scores of one prompt (no cache, no batching): its candidates' log-likelihoods, their
     * normalised probabilities and the rating.
     *
     * @param prompt    the judge prompt
     * @param maxRating the highest rating (2 for the steering axes, 1 for refusal)
     * @return the scores
     * @throws InvalidArgumentException when the prompt cannot be encoded or is longer than the model's context
     */
    public Scores score(String prompt, int maxRating) {
        try {
            return scoreBatch(List.of(rows(prompt, candidates(maxRating)))).getFirst();
        } catch (ChatTemplateException e) {
            throw new InvalidArgumentException("the judge prompt: " + e.getMessage(), e);
        }
    }

    private Verdict one(String prompt, int maxRating) {
        try {
            return Verdict.of(score(prompt, maxRating).text());
        } catch (InvalidArgumentException e) {
            return Verdict.failed(e.getMessage());
        }
    }

    @Override
    public List<Verdict> judge(List<String> prompts, int maxRating, ProgressListener listener) {
        List<String> candidates = candidates(maxRating);
        List<Verdict> out = new ArrayList<>(prompts.size());
        try {
            for (int i = 0; i < prompts.size(); i += batchSize) {
                List<String> batch = prompts.subList(i, Math.min(prompts.size(), i + batchSize));
                List<Scores> scores = null;
                try {
                    List<Rows> rows = new ArrayList<>();
                    for (String p : batch) {
                        rows.add(rows(p, candidates));
                    }
                    scores = new ArrayList<>();
                    long vocab = model.config().vocabSize();
                    for (int from = 0; from < rows.size(); ) {
                        // as many prompts as keep one pass's logits within MultipleChoiceScorer.MAX_LOGIT_FLOATS (at least one)
                        int to = from + 1;
                        long count = rows.get(from).inputs().size();
                        long longest = rows.get(from).inputs().stream().mapToInt(a -> a.length).max().orElse(0);
                        while (to < rows.size()) {
                            long c = count + rows.get(to).inputs().size();
                            long l = Math.max(longest, rows.get(to).inputs().stream().mapToInt(a -> a.length).max().orElse(0));
                            if (c * l * vocab > MultipleChoiceScorer.MAX_LOGIT_FLOATS) {
                                break;
                            }
                            count = c;
                            longest = l;
                            to++;
                        }
                        scores.addAll(scoreBatch(rows.subList(from, to)));
                        from = to;
                    }
                } catch (InvalidArgumentException | ChatTemplateException e) {
                    scores = null; // one of them does not fit: score them one by one
                }
                if (scores != null) {
                    scores.forEach(s -> out.add(Verdict.of(s.text())));
                } else {
                    for (String p : batch) {
                        out.add(one(p, maxRating));
                    }
                }
                if (listener != null) {
                    listener.progress("judge", out.size(), prompts.size(), "");
                }
            }
        } finally {
            if (listener != null) {
                listener.finished("judge");
            }
        }
        return out;
    }
}
