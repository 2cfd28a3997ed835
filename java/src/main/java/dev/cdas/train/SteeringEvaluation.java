package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.TokenBatch;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Objects;

/**
 * What a steering vector does on held-out data (the {@code eval} command), applied as its
 * {@link SteeringMethod} applies it at every position from {@code prefix_len} on, prompt and
 * response tokens: for CDAS and DAS the clamp of docs/method.md section 1, {@code a = aInject} (m·a⁺)
 * to inject, {@code a = aSuppress} (m·a⁻) to suppress; for DiffMean the addition
 * {@code h + f·v} with {@code f = aInject} (m·f⁺) or {@code aSuppress} (m·f⁻); for a prompt file
 * ({@link PromptSteering}) no intervention, but the prompt rewritten with the instruction that the
 * sign of the value picks. The steered and the unsteered run then read different prompts and the
 * same response (or continuation) tokens, and are compared at those tokens.
 *
 * <ul>
 *   <li>{@link #divergences}: on neutral prompts, the unsteered continuation (greedy by default)
 *       is appended to the prompt and the sequence is teacher-forced through the model unsteered,
 *       injected and suppressed, so all three see the same tokens. At the positions that predict the
 *       continuation tokens (from the last prompt token on, as in the objective) it measures
 *       {@code KL(P‖Q)} and {@code JSD(P, Q)} between the unsteered {@code P} and the steered
 *       {@code Q} next-token distributions (natural log, full vocabulary), pooled over tokens.</li>
 *   <li>{@link #logLikelihood(List, boolean)}: the mean per-token log-likelihood of concept
 *       responses ({@code positive_output} after {@code negative_input}) unsteered and injected, or
 *       of neutral responses ({@code negative_output} after {@code positive_input}) unsteered and
 *       suppressed; responses truncated like the training data.</li>
 * </ul>
 *
 * Every sequence runs as its own batch of one (no padding), in the model's compute dtype; the
 * sums are taken in double.
 */
public final class SteeringEvaluation {
    private static final int GENERATION_CHUNK = 16;

    /**
     * Token-pooled divergences of steered from unsteered next-token distributions.
     *
     * @param tokens  the positions compared
     * @param meanKl  the mean KL(P||Q) over them, in nats
     * @param meanJsd the mean JSD(P, Q) over them, in nats
     * @param maxKl   the largest KL at one position
     * @param maxJsd  the largest JSD at one position
     */
    public record Divergence(long tokens, double meanKl, double meanJsd, double maxKl, double maxJsd) {}

    /**
     * Both directions on the same neutral continuations.
     *
     * @param prompts  the neutral prompts with a non-empty continuation
     * @param tokens   the positions compared per direction
     * @param inject   the divergences under injection
     * @param suppress the divergences under suppression
     */
    public record Divergences(int prompts, long tokens, Divergence inject, Divergence suppress) {}

    /**
     * Mean log-likelihood per response token, unsteered and steered, pooled over {@code tokens}.
     *
     * @param pairs     the pairs scored
     * @param tokens    the response tokens pooled over
     * @param unsteered the mean log-likelihood per token without steering, in nats
     * @param steered   the mean log-likelihood per token with steering, in nats
     */
    public record LogLikelihood(int pairs, long tokens, double unsteered, double steered) {
        /** {@return steered minus unsteered, in nats per token} */
        public double change() {
            return steered - unsteered;
        }
    }

    private final Model model;
    private final PromptEncoder prompts;
    private final ExampleEncoder encoder;
    private final int layer;
    private final int rank;
    private final SteeringMethod method;
    private final float[] w;
    private final double[] aInject;
    private final double[] aSuppress;
    private final PromptSteering prompt;
    private final float[] loreft;

    /**
     * A CDAS (clamp) vector; see {@link #SteeringEvaluation(Model, PromptEncoder, SteeringMethod, int, float[], double[], double[], int)}.
     *
     * @param model             the model
     * @param prompts           the model's prompt encoder (chat template)
     * @param layer             the block whose output is clamped (0-based)
     * @param w                 the directions, rank x d row-major
     * @param aInject           the clamp values that inject, one per row
     * @param aSuppress         the clamp values that suppress, one per row
     * @param maxResponseTokens the most response tokens per pair
     * @throws InvalidArgumentException as the general constructor
     */
    public SteeringEvaluation(Model model, PromptEncoder prompts, int layer, float[] w, double[] aInject,
            double[] aSuppress, int maxResponseTokens) {
        this(model, prompts, SteeringMethod.CDAS, layer, w, aInject, aSuppress, maxResponseTokens);
    }

    /**
     * A vector file's vector with its factors times {@code multiplier}, applied as its method says.
     *
     * @param model             the model
     * @param prompts           the model's prompt encoder (chat template)
     * @param vector            the vector file's content
     * @param multiplier        m, the factor on the vector's values
     * @param maxResponseTokens the most response tokens per pair
     * @throws InvalidArgumentException as the general constructor
     */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringVectorFile vector, double multiplier,
            int maxResponseTokens) {
        this(model, prompts, vector.steeringMethod(), vector.layer(), vector.w(), vector.values(true, multiplier),
                vector.values(false, multiplier), maxResponseTokens, vector.promptSteering(), vector.loreft());
    }

    /**
     * An evaluation of the directions {@code w} at {@code layer} with the given values.
     *
     * @param method    how the vector is applied (clamp or addition)
     * @param w         directions [rank x d], row-major
     * @param aInject   values (one per row of w) for injection, m·a⁺ (clamp) or m·f⁺ (added amount)
     * @param aSuppress values for suppression, m·a⁻ or m·f⁻
     * @param model             the model
     * @param prompts           the model's prompt encoder (chat template)
     * @param layer             the block whose output is steered (0-based)
     * @param maxResponseTokens the most response tokens per pair
     * @throws InvalidArgumentException when {@code w} is not a multiple of d, the values are not one
     *         per row, or the layer is out of range
     * @throws NullPointerException     when {@code method} is null
     */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringMethod method, int layer, float[] w,
            double[] aInject, double[] aSuppress, int maxResponseTokens) {
        this(model, prompts, method, layer, w, aInject, aSuppress, maxResponseTokens, null, null);
    }

    /**
     * As {@link #SteeringEvaluation(Model, PromptEncoder, SteeringMethod, int, float[], double[], double[], int)},
     * with LoReFT's edits.
     *
     * @param model             the model
     * @param prompts           the model's prompt encoder (chat template)
     * @param method            how the vector is applied
     * @param layer             the block whose output is steered (0-based)
     * @param w                 directions [rank x d], row-major (LoReFT: the injecting edit's R)
     * @param aInject           values for injection, one per row of w
     * @param aSuppress         values for suppression, one per row of w
     * @param maxResponseTokens the most response tokens per pair
     * @param loreft            LoReFT's two edits ({@link SteeringVectorFile#loreft()}), null for the other methods
     * @throws InvalidArgumentException as the constructor without {@code loreft}
     */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringMethod method, int layer, float[] w,
            double[] aInject, double[] aSuppress, int maxResponseTokens, float[] loreft) {
        this(model, prompts, method, layer, w, aInject, aSuppress, maxResponseTokens, null, loreft);
    }

    private SteeringEvaluation(Model model, PromptEncoder prompts, SteeringMethod method, int layer, float[] w,
            double[] aInject, double[] aSuppress, int maxResponseTokens, PromptSteering prompt, float[] loreft) {
        Objects.requireNonNull(method, "method");
        if (method.steersByPrompt()) {
            if (prompt == null) {
                throw new InvalidArgumentException("prompt steering is evaluated from its file (its templates)");
            }
            this.rank = 1;
        } else {
            int d = model.config().hiddenSize();
            if (w.length == 0 || w.length % d != 0) {
                throw new InvalidArgumentException("w holds " + w.length + " floats, not a multiple of the model's hidden size " + d);
            }
            this.rank = w.length / d;
            int layers = model.config().numLayers();
            if (layer < 0 || layer >= layers) {
                throw new InvalidArgumentException("layer " + layer + " is out of range: the model has blocks 0.." + (layers - 1));
            }
        }
        if (aInject.length != rank || aSuppress.length != rank) {
            throw new InvalidArgumentException("need one value per row of w (" + rank + "), got " + aInject.length
                    + " and " + aSuppress.length);
        }
        this.prompt = method.steersByPrompt() ? prompt : null;
        this.model = model;
        this.prompts = prompts;
        this.method = Objects.requireNonNull(method, "method");
        this.encoder = new ExampleEncoder(prompts, maxResponseTokens);
        this.layer = layer;
        this.w = w.clone();
        this.aInject = aInject.clone();
        this.aSuppress = aSuppress.clone();
        this.loreft = loreft == null ? null : loreft.clone();
    }

    /** {@return how the vector is applied} */
    public SteeringMethod method() {
        return method;
    }

    /**
     * The vector with {@code values} at this evaluation's layer for one row with the given
     * prefix_len, as the method applies it ({@link SteeringMethod#intervention}).
     *
     * @param values    one value per row of w
     * @param prefixLen the row's prefix_len
     * @return the intervention for a batch of one row
     */
    public Intervention intervention(double[] values, int prefixLen) {
        return method.intervention(layer, rank, w, values, new int[] {prefixLen}, loreft);
    }

    // ---- divergences on neutral prompts -----------------------------------------------------------

    /**
     * KL and JSD of injected and suppressed vs unsteered on the unsteered continuations of {@code texts}.
     *
     * @param texts      the neutral prompts, at least one
     * @param generation how the unsteered continuations are generated
     * @return the divergences of both directions
     * @throws InvalidArgumentException when there is no prompt or one cannot be encoded
     */
    public Divergences divergences(List<String> texts, GenerationOptions generation) {
        if (texts.isEmpty()) {
            throw new InvalidArgumentException("no neutral prompts");
        }
        List<PromptEncoder.EncodedPrompt> encoded = new ArrayList<>(texts.size());
        for (int i = 0; i < texts.size(); i++) {
            try {
                encoded.add(prompts.encodePrompt(texts.get(i)));
            } catch (ChatTemplateException e) {
                throw new InvalidArgumentException("neutral prompt " + (i + 1) + ": " + e.getMessage(), e);
            }
        }
        int pad = prompts.tokenizer().padTokenId().orElse(0);
        int v = model.config().vocabSize();
        Accumulator inj = new Accumulator();
        Accumulator sup = new Accumulator();
        double[] lp = new double[v];
        double[] lq = new double[v];
        for (int from = 0; from < encoded.size(); from += GENERATION_CHUNK) {
            List<PromptEncoder.EncodedPrompt> chunk = encoded.subList(from, Math.min(encoded.size(), from + GENERATION_CHUNK));
            int[][] rows = chunk.stream().map(PromptEncoder.EncodedPrompt::ids).toArray(int[][]::new);
            int[][] continuations = model.generate(TokenBatch.leftPadded(pad, rows), null, generation);
            for (int i = 0; i < rows.length; i++) {
                int n = continuations[i].length;
                if (n == 0) {
                    continue;
                }
                String text = texts.get(from + i);
                int[] cont = Arrays.copyOf(continuations[i], n);
                Steered plain = new Steered(logits(concat(rows[i], cont), null), rows[i].length - 1);
                Steered injected = continued(text, chunk.get(i), cont, aInject);
                Steered suppressed = continued(text, chunk.get(i), cont, aSuppress);
                for (int k = 0; k < n; k++) {
                    logSoftmax(plain.logits, (long) (plain.start + k) * v, v, lp);
                    logSoftmax(injected.logits, (long) (injected.start + k) * v, v, lq);
                    inj.add(kl(lp, lq), jsd(lp, lq));
                    logSoftmax(suppressed.logits, (long) (suppressed.start + k) * v, v, lq);
                    sup.add(kl(lp, lq), jsd(lp, lq));
                }
            }
        }
        return new Divergences(texts.size(), inj.tokens, inj.result(), sup.result());
    }

    /** Logits of a prompt followed by a continuation, and the position that predicts the continuation's first token. */
    private record Steered(float[] logits, int start) {}

    /**
     * The steered run over {@code text}'s prompt and then {@code cont}: the same tokens under the
     * intervention, or for prompt steering the rewritten prompt's tokens, unsteered.
     */
    private Steered continued(String text, PromptEncoder.EncodedPrompt plain, int[] cont, double[] values) {
        if (prompt == null) {
            return new Steered(logits(concat(plain.ids(), cont), intervention(values, plain.prefixLen())), plain.length() - 1);
        }
        PromptEncoder.EncodedPrompt rewritten;
        try {
            rewritten = prompts.encodePrompt(method.message(text, values, prompt));
        } catch (ChatTemplateException e) {
            throw new InvalidArgumentException("neutral prompt \"" + text + "\" with the instruction: " + e.getMessage(), e);
        }
        return new Steered(logits(concat(rewritten.ids(), cont), null), rewritten.length() - 1);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private static final class Accumulator {
        long tokens;
        double kl;
        double jsd;
        double maxKl;
        double maxJsd;

        void add(double k, double j) {
            tokens++;
            kl += k;
            jsd += j;
            maxKl = Math.max(maxKl, k);
            maxJsd = Math.max(maxJsd, j);
        }

        Divergence result() {
            return new Divergence(tokens, tokens == 0 ? 0 : kl / tokens, tokens == 0 ? 0 : jsd / tokens, maxKl, maxJsd);
        }
    }

    // ---- log-likelihood of held-out responses -------------------------------------------------------

    /**
     * {@code inject}: concept responses ({@code positive_output}) after neutral prompts
     * ({@code negative_input}), unsteered and injected; otherwise neutral responses
     * ({@code negative_output}) after concept prompts ({@code positive_input}), unsteered and
     * suppressed.
     *
     * @param pairs  the held-out pairs
     * @param inject whether to score injection (else suppression)
     * @return the mean log-likelihoods per token
     * @throws InvalidArgumentException when a pair cannot be encoded
     */
    public LogLikelihood logLikelihood(List<ConceptPair> pairs, boolean inject) {
        double plain = 0;
        double steered = 0;
        long tokens = 0;
        double[] values = inject ? aInject : aSuppress;
        for (ConceptPair p : pairs) {
            DirectionExample ex = inject
                    ? new DirectionExample(p.negativeInput(), p.positiveInput(), p.positiveOutput(), p.origin())
                    : new DirectionExample(p.positiveInput(), p.negativeInput(), p.negativeOutput(), p.origin());
            ExampleEncoder.EncodedExample e = encode(ex);
            plain += logLikelihood(model, e, null);
            if (prompt == null) {
                steered += logLikelihood(model, e, intervention(values, e.basePrefixLen()));
            } else {
                // the same response tokens after the rewritten prompt (responses are tokenised on their own)
                ExampleEncoder.EncodedExample r = encode(new DirectionExample(method.message(ex.baseInput(), values, prompt),
                        ex.sourceInput(), ex.response(), ex.origin()));
                steered += logLikelihood(model, r, null);
            }
            tokens += e.responseLength();
        }
        return new LogLikelihood(pairs.size(), tokens, tokens == 0 ? 0 : plain / tokens, tokens == 0 ? 0 : steered / tokens);
    }

    /**
     * The token form of one example: base = prompt ⊕ truncated response.
     *
     * @param e the example
     * @return its base, source and target ids
     * @throws InvalidArgumentException when the chat template fails on the example
     */
    public ExampleEncoder.EncodedExample encode(DirectionExample e) {
        try {
            return encoder.encode(e);
        } catch (ChatTemplateException ex) {
            throw new InvalidArgumentException(e.origin() + ": " + ex.getMessage(), ex);
        }
    }

    /**
     * Sum of {@code log p(response token)} over the response of {@code e}'s base sequence
     * {@code baseInput ⊕ response}, with the intervention {@code iv} (null: unsteered).
     *
     * @param model the model
     * @param e     the encoded example
     * @param iv    the intervention, or null
     * @return the sum, in nats
     */
    public static double logLikelihood(Model model, ExampleEncoder.EncodedExample e, Intervention iv) {
        int v = model.config().vocabSize();
        float[] logits = model.forward(TokenBatch.single(e.base()), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
        return logLikelihood(logits, v, e.base(), e.baseLossStart(), e.responseLength());
    }

    /**
     * Sum over {@code k < count} of {@code log softmax(logits[start + k])[tokens[start + k + 1]]}:
     * the log-likelihood of {@code count} tokens from {@code start + 1} on, given logits [T x v] of
     * the sequence {@code tokens}.
     *
     * @param logits the logits, T x v row-major
     * @param v      the vocabulary size
     * @param tokens the sequence's T ids
     * @param start  the first position whose logits are used
     * @param count  the number of tokens scored
     * @return the sum, in nats
     */
    public static double logLikelihood(float[] logits, int v, int[] tokens, int start, int count) {
        double sum = 0;
        for (int k = 0; k < count; k++) {
            int t = start + k;
            long off = (long) t * v;
            sum += logits[(int) (off + tokens[t + 1])] - logSumExp(logits, off, v);
        }
        return sum;
    }

    private float[] logits(int[] seq, Intervention iv) {
        return model.forward(TokenBatch.single(seq), iv, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
    }

    // ---- distributions ------------------------------------------------------------------------------

    static double logSumExp(float[] logits, long off, int v) {
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < v; i++) {
            max = Math.max(max, logits[(int) (off + i)]);
        }
        double z = 0;
        for (int i = 0; i < v; i++) {
            z += Math.exp(logits[(int) (off + i)] - max);
        }
        return max + Math.log(z);
    }

    /**
     * {@code out = log softmax(logits[off .. off + v))}.
     *
     * @param logits the logits
     * @param off    the first logit of the row
     * @param v      the row's length
     * @param out    where the v log-probabilities go
     */
    public static void logSoftmax(float[] logits, long off, int v, double[] out) {
        double lse = logSumExp(logits, off, v);
        for (int i = 0; i < v; i++) {
            out[i] = logits[(int) (off + i)] - lse;
        }
    }

    /**
     * {@code KL(P‖Q)} from log-probabilities, natural log; clamped at 0 against rounding.
     *
     * @param logP the log-probabilities of P
     * @param logQ the log-probabilities of Q, same length
     * @return the divergence, 0 or more, in nats
     */
    public static double kl(double[] logP, double[] logQ) {
        double s = 0;
        for (int i = 0; i < logP.length; i++) {
            double p = Math.exp(logP[i]);
            if (p > 0) {
                s += p * (logP[i] - logQ[i]);
            }
        }
        return Math.max(0, s);
    }

    /**
     * {@code JSD(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)}, {@code M = ½(P + Q)}; clamped to [0, ln 2] against rounding.
     *
     * @param logP the log-probabilities of P
     * @param logQ the log-probabilities of Q, same length
     * @return the divergence, in [0, ln 2] nats
     */
    public static double jsd(double[] logP, double[] logQ) {
        double s = 0;
        for (int i = 0; i < logP.length; i++) {
            double a = logP[i];
            double b = logQ[i];
            double hi = Math.max(a, b);
            if (hi == Double.NEGATIVE_INFINITY) {
                continue;
            }
            // log M = log(½(p + q)), computed stably
            double logM = hi + Math.log1p(Math.exp(Math.min(a, b) - hi)) - Math.log(2);
            double p = Math.exp(a);
            double q = Math.exp(b);
            if (p > 0) {
                s += 0.5 * p * (a - logM);
            }
            if (q > 0) {
                s += 0.5 * q * (b - logM);
            }
        }
        return Math.min(Math.log(2), Math.max(0, s));
    }
}
