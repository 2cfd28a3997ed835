package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.NonFiniteException;
import dev.cdas.data.ConceptPair;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.TokenBatch;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.EnumSet;
import java.util.List;

/**
 * The DiffMean baseline (docs/method.md section 1, baselines): no optimisation, the steering
 * direction is the difference of the mean hidden states with and without the concept,
 * unit-normalised, and it is applied additively ({@link SteeringMethod#DIFFMEAN}).
 *
 * <pre>
 *   μ⁺ = mean of h_L over the positive sequences  positive_input ⊕ positive_output  (xᶜ ⊕ yᶜ)
 *   μ⁻ = mean of h_L over the negative sequences  negative_input ⊕ negative_output  (x ⊕ y)
 *   v  = (μ⁺ − μ⁻) / ‖μ⁺ − μ⁻‖,   factor_positive = ‖μ⁺ − μ⁻‖,   factor_negative = −‖μ⁺ − μ⁻‖
 * </pre>
 *
 * <p><b>Which positions.</b> Each sequence is the prompt rendered with the chat template
 * (generation prompt included) followed by the response truncated like the trainer's
 * ({@link ExampleEncoder#encodeSequence}; at most {@code maxResponseTokens}, ids truncated after
 * tokenising). The means run over every real position {@code t ≥ prefix_len} of every sequence,
 * prompt and response tokens alike: exactly the positions the steering intervention is applied to,
 * so the template's shared opening (identical in every sequence, and carrying no concept) is left
 * out. The mean is token-pooled: every position weighs the same, so longer sequences count more.
 * Hidden states come from unmodified forward passes in the model's compute dtype, a few sequences
 * per call (left-padded; padding does not change the states of real tokens), and are summed in
 * double.
 *
 * <p><b>Factors.</b> Steering adds {@code m · f · v} to {@code h_L} at every position from
 * prefix_len on. With {@code f = factor_positive = ‖μ⁺ − μ⁻‖} and {@code m = 1} (inject) this
 * moves the mean negative state exactly onto the mean positive one ({@code μ⁻ + (μ⁺ − μ⁻) = μ⁺});
 * {@code factor_negative = −‖μ⁺ − μ⁻‖} moves the mean positive state onto the mean negative one
 * (suppress).
 */
public final class DiffMean {
    /** Sequences per forward pass by default. */
    public static final int DEFAULT_BATCH_SIZE = 8;

    /**
     * The mean of {@code h_L} over {@code tokens} positions, [d].
     *
     * @param mean      the mean hidden state, d values
     * @param tokens    the positions averaged over
     * @param sequences the sequences they came from
     */
    public record Mean(double[] mean, long tokens, int sequences) {}

    /**
     * The DiffMean vector: {@code direction} = {@code v} (fp32, unit norm), {@code distance} =
     * {@code ‖μ⁺ − μ⁻‖}, and the two means it came from.
     *
     * @param direction v, d fp32 values of unit norm
     * @param distance  the norm of the difference of the means
     * @param positive  the mean over the positive sequences
     * @param negative  the mean over the negative sequences
     */
    public record Result(float[] direction, double distance, Mean positive, Mean negative) {
        /** {@return the factor that injects the concept: the distance} */
        public double factorPositive() {
            return distance;
        }

        /** {@return the factor that suppresses the concept: minus the distance} */
        public double factorNegative() {
            return -distance;
        }
    }

    private final Model model;
    private final ExampleEncoder encoder;
    private final int layer;
    private final int batchSize;
    private final int pad;

    /**
     * DiffMean at {@code layer}, {@link #DEFAULT_BATCH_SIZE} sequences per forward pass.
     *
     * @param model             the model whose hidden states are averaged
     * @param prompts           the model's prompt encoder (chat template)
     * @param layer             the block whose output h_L is averaged (0-based)
     * @param maxResponseTokens the most response tokens kept per sequence
     * @throws InvalidArgumentException when the layer is out of range
     */
    public DiffMean(Model model, PromptEncoder prompts, int layer, int maxResponseTokens) {
        this(model, prompts, layer, maxResponseTokens, DEFAULT_BATCH_SIZE);
    }

    /**
     * DiffMean at {@code layer} with a chosen batch size.
     *
     * @param prompts   the model's prompt encoder (chat template), see {@link dev.cdas.model.ModelFolder#prompts()}
     * @param batchSize sequences per forward pass
     * @param model             the model whose hidden states are averaged
     * @param layer             the block whose output h_L is averaged (0-based)
     * @param maxResponseTokens the most response tokens kept per sequence
     * @throws InvalidArgumentException when the layer is out of range or the batch size is below 1
     */
    public DiffMean(Model model, PromptEncoder prompts, int layer, int maxResponseTokens, int batchSize) {
        int layers = model.config().numLayers();
        if (layer < 0 || layer >= layers) {
            throw new InvalidArgumentException("layer " + layer + " is out of range: the model has blocks 0.." + (layers - 1));
        }
        if (batchSize < 1) {
            throw new InvalidArgumentException("batch size must be at least 1, got " + batchSize);
        }
        this.model = model;
        this.encoder = new ExampleEncoder(prompts, maxResponseTokens);
        this.layer = layer;
        this.batchSize = batchSize;
        this.pad = prompts.tokenizer().padTokenId().orElse(0);
    }

    /** {@return the block whose output is averaged (0-based)} */
    public int layer() {
        return layer;
    }

    /** {@return d, the model's hidden size} */
    public int dimension() {
        return model.config().hiddenSize();
    }

    /** {@return the most response tokens kept per sequence} */
    public int maxResponseTokens() {
        return encoder.maxResponseTokens();
    }

    /**
     * The DiffMean vector of {@code pairs}; {@code progress} (nullable) gets a progress bar over
     * the 2 · pairs sequences.
     *
     * @throws NonFiniteException when the two means coincide (no direction) or a state is not finite
     * @param pairs    the pairs, at least one
     * @param progress progress reports (task "diffmean"), or null
     * @return the direction, its factors and the two means
     * @throws InvalidArgumentException when there is no pair or one cannot be encoded
     */
    public Result compute(List<ConceptPair> pairs, ProgressListener progress) {
        if (pairs.isEmpty()) {
            throw new InvalidArgumentException("no pairs");
        }
        List<ExampleEncoder.EncodedSequence> pos = new ArrayList<>(pairs.size());
        List<ExampleEncoder.EncodedSequence> neg = new ArrayList<>(pairs.size());
        for (ConceptPair p : pairs) {
            pos.add(encode(p.positiveInput(), p.positiveOutput(), p.origin()));
            neg.add(encode(p.negativeInput(), p.negativeOutput(), p.origin()));
        }
        Counter bar = progress == null ? null : new Counter(progress, 2L * pairs.size());
        try {
            Mean plus = mean(pos, bar);
            Mean minus = mean(neg, bar);
            return difference(plus, minus);
        } finally {
            if (bar != null) {
                progress.finished("diffmean");
            }
        }
    }

    /**
     * {@code (μ⁺ − μ⁻)/‖μ⁺ − μ⁻‖} and {@code ‖μ⁺ − μ⁻‖}.
     *
     * @param plus  the mean over the positive sequences
     * @param minus the mean over the negative sequences
     * @return the vector and the distance
     * @throws InvalidArgumentException when the means have different sizes
     * @throws NonFiniteException       when the distance is 0 or not finite
     */
    public static Result difference(Mean plus, Mean minus) {
        int d = plus.mean().length;
        if (minus.mean().length != d) {
            throw new InvalidArgumentException("means of different sizes: " + d + " and " + minus.mean().length);
        }
        double[] diff = new double[d];
        double sq = 0;
        for (int i = 0; i < d; i++) {
            diff[i] = plus.mean()[i] - minus.mean()[i];
            sq += diff[i] * diff[i];
        }
        double norm = Math.sqrt(sq);
        if (!(norm > 0) || !Double.isFinite(norm)) {
            throw new NonFiniteException("the positive and negative mean states "
                    + (norm == 0 ? "coincide" : "differ by " + norm) + ": DiffMean has no direction");
        }
        float[] v = new float[d];
        for (int i = 0; i < d; i++) {
            v[i] = (float) (diff[i] / norm);
        }
        return new Result(v, norm, plus, minus);
    }

    /**
     * One side's sequence: {@code input ⊕ response}, rendered and truncated as the trainer does.
     *
     * @param input    the prompt (one user turn)
     * @param response the response
     * @param origin   where the pair is, for messages
     * @return the sequence's ids and its prefix_len
     * @throws InvalidArgumentException when the chat template fails on the prompt
     */
    public ExampleEncoder.EncodedSequence encode(String input, String response, String origin) {
        try {
            return encoder.encodeSequence(input, response, origin);
        } catch (ChatTemplateException e) {
            throw new InvalidArgumentException(origin + ": " + e.getMessage(), e);
        }
    }

    /**
     * Token-pooled mean of {@code h_L} over the positions {@code t ≥ prefixLen} of the sequences
     * (unmodified forward passes, {@code batchSize} sequences per call, similar lengths together).
     *
     * @param sequences the sequences, at least one
     * @return the mean, d values, and the counts
     * @throws InvalidArgumentException when there is no sequence
     * @throws NonFiniteException       when a hidden state is not finite
     */
    public Mean mean(List<ExampleEncoder.EncodedSequence> sequences) {
        return mean(sequences, null);
    }

    private Mean mean(List<ExampleEncoder.EncodedSequence> sequences, Counter bar) {
        if (sequences.isEmpty()) {
            throw new InvalidArgumentException("no sequences");
        }
        int d = dimension();
        double[] sum = new double[d];
        long tokens = 0;
        List<ExampleEncoder.EncodedSequence> sorted = new ArrayList<>(sequences);
        sorted.sort(Comparator.comparingInt(s -> s.ids().length));
        for (int from = 0; from < sorted.size(); from += batchSize) {
            List<ExampleEncoder.EncodedSequence> chunk = sorted.subList(from, Math.min(sorted.size(), from + batchSize));
            int[][] rows = chunk.stream().map(ExampleEncoder.EncodedSequence::ids).toArray(int[][]::new);
            TokenBatch batch = TokenBatch.leftPadded(pad, rows);
            float[] h = model.forward(batch, null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (int b = 0; b < rows.length; b++) {
                int first = batch.firstReal(b);
                ExampleEncoder.EncodedSequence s = chunk.get(b);
                for (int t = s.prefixLen(); t < rows[b].length; t++) {
                    long off = ((long) b * batch.seqLen() + first + t) * d;
                    for (int i = 0; i < d; i++) {
                        float x = h[(int) (off + i)];
                        if (!Float.isFinite(x)) {
                            throw new NonFiniteException(s.origin() + ": h_L is " + x + " at position " + t);
                        }
                        sum[i] += x;
                    }
                    tokens++;
                }
            }
            if (bar != null) {
                bar.stepBy(rows.length);
            }
        }
        if (tokens == 0) {
            throw new InvalidArgumentException("the sequences have no positions at or after prefix_len");
        }
        for (int i = 0; i < d; i++) {
            sum[i] /= tokens;
        }
        return new Mean(sum, tokens, sequences.size());
    }

    /** Sequences done so far, reported to the listener. */
    private static final class Counter {
        private final ProgressListener listener;
        private final long total;
        private long done;

        Counter(ProgressListener listener, long total) {
            this.listener = listener;
            this.total = total;
        }

        void stepBy(long n) {
            done += n;
            listener.progress("diffmean", done, total, "");
        }
    }
}
