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
 * {@code h + f·v} with {@code f = aInject} (m·f⁺) or {@code aSuppress} (m·f⁻).
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

    /** Token-pooled divergences of steered from unsteered next-token distributions. */
    public record Divergence(long tokens, double meanKl, double meanJsd, double maxKl, double maxJsd) {}

    /** Both directions on the same neutral continuations. */
    public record Divergences(int prompts, long tokens, Divergence inject, Divergence suppress) {}

    /** Mean log-likelihood per response token, unsteered and steered, pooled over {@code tokens}. */
    public record LogLikelihood(int pairs, long tokens, double unsteered, double steered) {
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
    private final float[] loreft;

    /** A CDAS (clamp) vector; see {@link #SteeringEvaluation(Model, PromptEncoder, SteeringMethod, int, float[], double[], double[], int)}. */
    public SteeringEvaluation(Model model, PromptEncoder prompts, int layer, float[] w, double[] aInject,
            double[] aSuppress, int maxResponseTokens) {
        this(model, prompts, SteeringMethod.CDAS, layer, w, aInject, aSuppress, maxResponseTokens);
    }

    /** A vector file's vector with its factors times {@code multiplier}, applied as its method says. */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringVectorFile vector, double multiplier,
            int maxResponseTokens) {
        this(model, prompts, vector.steeringMethod(), vector.layer(), vector.w(), vector.values(true, multiplier),
                vector.values(false, multiplier), maxResponseTokens, vector.loreft());
    }

    /**
     * @param method    how the vector is applied (clamp or addition)
     * @param w         directions [rank x d], row-major
     * @param aInject   values (one per row of w) for injection, m·a⁺ (clamp) or m·f⁺ (added amount)
     * @param aSuppress values for suppression, m·a⁻ or m·f⁻
     */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringMethod method, int layer, float[] w,
            double[] aInject, double[] aSuppress, int maxResponseTokens) {
        this(model, prompts, method, layer, w, aInject, aSuppress, maxResponseTokens, null);
    }

    /** With LoReFT's edits ({@code loreft}, null for the other methods; {@link SteeringVectorFile#loreft()}). */
    public SteeringEvaluation(Model model, PromptEncoder prompts, SteeringMethod method, int layer, float[] w,
            double[] aInject, double[] aSuppress, int maxResponseTokens, float[] loreft) {
        int d = model.config().hiddenSize();
        if (w.length == 0 || w.length % d != 0) {
            throw new InvalidArgumentException("w holds " + w.length + " floats, not a multiple of the model's hidden size " + d);
        }
        this.rank = w.length / d;
        if (aInject.length != rank || aSuppress.length != rank) {
            throw new InvalidArgumentException("need one value per row of w (" + rank + "), got " + aInject.length
                    + " and " + aSuppress.length);
        }
        int layers = model.config().numLayers();
        if (layer < 0 || layer >= layers) {
            throw new InvalidArgumentException("layer " + layer + " is out of range: the model has blocks 0.." + (layers - 1));
        }
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

    public SteeringMethod method() {
        return method;
    }

    /**
     * The vector with {@code values} at this evaluation's layer for one row with the given
     * prefix_len, as the method applies it ({@link SteeringMethod#intervention}).
     */
    public Intervention intervention(double[] values, int prefixLen) {
        return method.intervention(layer, rank, w, values, new int[] {prefixLen}, loreft);
    }

    // ---- divergences on neutral prompts -----------------------------------------------------------

    /** KL and JSD of injected and suppressed vs unsteered on the unsteered continuations of {@code texts}. */
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
                int[] seq = Arrays.copyOf(rows[i], rows[i].length + n);
                System.arraycopy(continuations[i], 0, seq, rows[i].length, n);
                int start = rows[i].length - 1;
                int prefix = chunk.get(i).prefixLen();
                float[] plain = logits(seq, null);
                float[] injected = logits(seq, intervention(aInject, prefix));
                float[] suppressed = logits(seq, intervention(aSuppress, prefix));
                for (int k = 0; k < n; k++) {
                    long off = (long) (start + k) * v;
                    logSoftmax(plain, off, v, lp);
                    logSoftmax(injected, off, v, lq);
                    inj.add(kl(lp, lq), jsd(lp, lq));
                    logSoftmax(suppressed, off, v, lq);
                    sup.add(kl(lp, lq), jsd(lp, lq));
                }
            }
        }
        return new Divergences(texts.size(), inj.tokens, inj.result(), sup.result());
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
     */
    public LogLikelihood logLikelihood(List<ConceptPair> pairs, boolean inject) {
        double plain = 0;
        double steered = 0;
        long tokens = 0;
        for (ConceptPair p : pairs) {
            ExampleEncoder.EncodedExample e = encode(inject
                    ? new DirectionExample(p.negativeInput(), p.positiveInput(), p.positiveOutput(), p.origin())
                    : new DirectionExample(p.positiveInput(), p.negativeInput(), p.negativeOutput(), p.origin()));
            plain += logLikelihood(model, e, null);
            steered += logLikelihood(model, e, intervention(inject ? aInject : aSuppress, e.basePrefixLen()));
            tokens += e.responseLength();
        }
        return new LogLikelihood(pairs.size(), tokens, tokens == 0 ? 0 : plain / tokens, tokens == 0 ? 0 : steered / tokens);
    }

    /** The token form of one example: base = prompt ⊕ truncated response. */
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

    /** {@code out = log softmax(logits[off .. off + v))}. */
    public static void logSoftmax(float[] logits, long off, int v, double[] out) {
        double lse = logSumExp(logits, off, v);
        for (int i = 0; i < v; i++) {
            out[i] = logits[(int) (off + i)] - lse;
        }
    }

    /** {@code KL(P‖Q)} from log-probabilities, natural log; clamped at 0 against rounding. */
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

    /** {@code JSD(P, Q) = ½ KL(P‖M) + ½ KL(Q‖M)}, {@code M = ½(P + Q)}; clamped to [0, ln 2] against rounding. */
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
