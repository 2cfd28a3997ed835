package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.Model;
import dev.cdas.model.ObjectiveBatch;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.model.ObjectiveResult;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.TokenBatch;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The CDAS objective (docs/method.md section 1) on the model runtime: for a minibatch of pairs, the D⁺
 * minibatch (base {@code x ⊕ yᶜ}, source {@code xᶜ}, target = the unmodified model on
 * {@code xᶜ ⊕ yᶜ}) and the D⁻ minibatch (base {@code xᶜ ⊕ y}, source {@code x}, target on
 * {@code x ⊕ y}), each the token mean of the per-position JSD, weighted ½: two native calls of
 * {@link Model#cdasObjective} with {@code gradScale = 0.5}, so the returned gradient is
 * {@code ½ ∇L⁺ + ½ ∇L⁻}.
 *
 * <p>Compared positions: the {@code responseLength} positions that predict the response tokens,
 * from the last prompt token on (base and target alike; {@link ExampleEncoder.EncodedExample}).
 * Encoded examples are cached, so each pair is rendered and tokenised once per run, and so are
 * their w-independent states (source, teacher, base h_L; {@link ObjectiveStateCache}), so epochs
 * after the first run only the intervened pass above the layer and the loss.
 */
public final class CdasObjective implements Objective {
    private final Model model;
    private final ExampleEncoder encoder;
    private final int layer;
    private final int pad;
    private final ObjectiveLoss lossKind;
    private final ObjectiveStateCache states;
    private final Map<DirectionExample, ExampleEncoder.EncodedExample> cache = new ConcurrentHashMap<>();

    /**
     * The CDAS objective (JSD) at {@code layer}, with the default state cache.
     *
     * @param prompts the model's prompt encoder (chat template), see {@link dev.cdas.model.ModelFolder#prompts()}
     * @param model             the model the objective runs on
     * @param layer             the block whose output is clamped (0-based)
     * @param maxResponseTokens the most response tokens per example
     * @throws InvalidArgumentException when the layer is out of range
     */
    public CdasObjective(Model model, PromptEncoder prompts, int layer, int maxResponseTokens) {
        this(model, prompts, layer, maxResponseTokens, ObjectiveLoss.JSD);
    }

    /**
     * The same minibatches and intervention with another loss per direction: the JSD composed from
     * libtorch operations (a baseline), or DAS's cross-entropy of the base's own response tokens
     * ({@code yᶜ} after {@code x} for D⁺, {@code y} after {@code xᶜ} for D⁻).
     *
     * @param model             the model the objective runs on
     * @param prompts           the model's prompt encoder (chat template)
     * @param layer             the block whose output is clamped (0-based)
     * @param maxResponseTokens the most response tokens per example
     * @param lossKind          the loss per direction
     * @throws InvalidArgumentException when the layer is out of range
     * @throws NullPointerException     when {@code lossKind} is null
     */
    public CdasObjective(Model model, PromptEncoder prompts, int layer, int maxResponseTokens, ObjectiveLoss lossKind) {
        this(model, prompts, layer, maxResponseTokens, lossKind, DEFAULT_STATE_CACHE_BYTES);
    }

    /** Default bound of the state cache: 2 GiB. */
    public static final long DEFAULT_STATE_CACHE_BYTES = 2L << 30;

    /**
     * The objective with a chosen bound on its state cache.
     *
     * @param stateCacheBytes bound of the memory that keeps each example's w-independent states
     *                        (source state, teacher rows, base h_L) across epochs; 0 = no cache,
     *                        every call recomputes them ({@link ObjectiveStateCache})
     * @param model             the model the objective runs on
     * @param prompts           the model's prompt encoder (chat template)
     * @param layer             the block whose output is clamped (0-based)
     * @param maxResponseTokens the most response tokens per example
     * @param lossKind          the loss per direction
     * @throws InvalidArgumentException when the layer is out of range or the bound is negative
     * @throws NullPointerException     when {@code lossKind} is null
     */
    public CdasObjective(Model model, PromptEncoder prompts, int layer, int maxResponseTokens, ObjectiveLoss lossKind,
                         long stateCacheBytes) {
        this.lossKind = java.util.Objects.requireNonNull(lossKind, "lossKind");
        if (stateCacheBytes < 0) {
            throw new InvalidArgumentException("the state cache bound must be >= 0 bytes, got " + stateCacheBytes);
        }
        int layers = model.config().numLayers();
        if (layer < 0 || layer >= layers) {
            throw new InvalidArgumentException("layer " + layer + " is out of range: the model has blocks 0.." + (layers - 1));
        }
        this.model = model;
        this.encoder = new ExampleEncoder(prompts, maxResponseTokens);
        this.layer = layer;
        this.pad = prompts.tokenizer().padTokenId().orElse(0);
        this.states = stateCacheBytes == 0 ? null
                : new ObjectiveStateCache(model, layer, pad, lossKind != ObjectiveLoss.CROSS_ENTROPY, stateCacheBytes);
    }

    /**
     * Bytes the state cache holds now (0 without one).
     *
     * @return the bytes, 0 or more
     */
    public long stateCacheBytes() {
        return states == null ? 0 : states.usedBytes();
    }

    @Override
    public String compute() {
        return model.computeKind();
    }

    @Override
    public void warm(Batch batch) {
        // every example is in every epoch, so the first epoch's minibatches fill the whole cache
        if (states != null && batch.epoch() == 0) {
            prepare(batch);
        }
    }

    @Override
    public int dimension() {
        return model.config().hiddenSize();
    }

    /** {@return the block whose output is clamped (0-based)} */
    public int layer() {
        return layer;
    }

    /** {@return the loss per direction} */
    public ObjectiveLoss lossKind() {
        return lossKind;
    }

    @Override
    public Result lossAndGradient(float[] w, Batch batch) {
        return evaluate(w, batch, true);
    }

    /**
     * Loss only (no backward pass); the gradient of the result is null.
     *
     * @param w     the directions, rank x d row-major
     * @param batch the minibatch's pairs
     * @return the loss and the tokens pooled
     * @throws InvalidArgumentException when {@code w} is not a multiple of d or a pair cannot be encoded
     */
    public Result loss(float[] w, Batch batch) {
        return evaluate(w, batch, false);
    }

    private Result evaluate(float[] w, Batch batch, boolean withGradient) {
        int d = dimension();
        if (w.length == 0 || w.length % d != 0) {
            throw new InvalidArgumentException("w holds " + w.length + " floats, not a multiple of the model's hidden size " + d);
        }
        int rank = w.length / d;
        Prepared prepared = prepare(batch);
        ObjectiveResult p = model.cdasObjective(layer, rank, w, prepared.plus(), lossKind, GRAD_SCALE, withGradient);
        ObjectiveResult m = model.cdasObjective(layer, rank, w, prepared.minus(), lossKind, GRAD_SCALE, withGradient);
        return prepared.combine(p, m);
    }

    /** The weight of each direction's loss (and the native call's gradient scale). */
    static final float GRAD_SCALE = 0.5f;

    /**
     * A minibatch made ready for the runtime: the D⁺ and D⁻ minibatches with their cached states and
     * the response tokens they pool over. {@link #combine} joins the two calls' results (each with
     * gradient scale {@link #GRAD_SCALE}) into the objective's.
     *
     * @param plus   the D⁺ (inject) minibatch
     * @param minus  the D⁻ (suppress) minibatch
     * @param tokens the response tokens of both
     */
    public record Prepared(ObjectiveBatch plus, ObjectiveBatch minus, long tokens) {
        /**
         * The objective's result from the two calls' results.
         *
         * @param p the D⁺ call's loss and gradient
         * @param m the D⁻ call's loss and gradient
         * @return the mean loss and the summed gradient (null when the calls gave none)
         */
        public Result combine(ObjectiveResult p, ObjectiveResult m) {
            float[] grad = null;
            if (p.gradDirections() != null) {
                grad = new float[p.gradDirections().length];
                for (int i = 0; i < grad.length; i++) {
                    grad[i] = p.gradDirections()[i] + m.gradDirections()[i];
                }
            }
            return new Result(0.5 * p.loss() + 0.5 * m.loss(), grad, tokens);
        }
    }

    /**
     * {@code batch} encoded (cached) and completed with its w-independent states (cached), for the runtime.
     *
     * @param batch the minibatch of pairs
     * @return its D⁺ and D⁻ minibatches for the runtime
     */
    public Prepared prepare(Batch batch) {
        List<ExampleEncoder.EncodedExample> plus = encode(batch.inject());
        List<ExampleEncoder.EncodedExample> minus = encode(batch.suppress());
        return new Prepared(withStates(plus), withStates(minus), tokens(plus) + tokens(minus));
    }

    /**
     * The model this objective runs.
     *
     * @return the model
     */
    public Model model() {
        return model;
    }

    /**
     * The padding token of this objective's batches.
     *
     * @return the token id
     */
    public int pad() {
        return pad;
    }

    /**
     * One rank's share of a minibatch's objective under data parallelism ({@link DataParallelObjective}):
     * for D⁺ ({@code inject}) and D⁻ ({@code suppress}) each, the token-weighted sums over these
     * examples, so that sums over the ranks give each direction's token mean over the whole minibatch.
     * The result, {@code 2n + 4} floats ({@code n = w.length}): {@code n} times ∑ tokens·∇(D⁺ mean),
     * {@code n} times the same for D⁻, then tokens·loss of D⁺ and of D⁻, then the token counts of D⁺
     * and D⁻. Empty lists contribute zeros (a rank whose slice of the minibatch is empty).
     *
     * @param w the directions, rank x d row-major
     * @param inject this rank's examples of D⁺ (may be empty)
     * @param suppress this rank's examples of D⁻ (may be empty)
     * @return the sums, laid out as above
     */
    public float[] tokenWeightedSums(float[] w, List<DirectionExample> inject, List<DirectionExample> suppress) {
        int d = dimension();
        if (w.length == 0 || w.length % d != 0) {
            throw new InvalidArgumentException("w holds " + w.length + " floats, not a multiple of the model's hidden size " + d);
        }
        int rank = w.length / d;
        int n = w.length;
        float[] out = new float[2 * n + 4];
        List<List<DirectionExample>> directions = List.of(inject, suppress);
        for (int k = 0; k < 2; k++) {
            if (directions.get(k).isEmpty()) {
                continue;
            }
            List<ExampleEncoder.EncodedExample> encoded = encode(directions.get(k));
            long tokens = tokens(encoded);
            ObjectiveResult r = model.cdasObjective(layer, rank, w, withStates(encoded), lossKind, 1f, true);
            for (int i = 0; i < n; i++) {
                out[k * n + i] = (float) ((double) r.gradDirections()[i] * tokens);
            }
            out[2 * n + k] = (float) ((double) r.loss() * tokens);
            out[2 * n + 2 + k] = tokens;
        }
        return out;
    }

    /**
     * The objective of {@code batch} as one minibatch (the value and gradient of
     * {@link #lossAndGradient}), computed {@code pairsPerCall} pairs at a time so that memory grows
     * with that chunk, not with the batch: each direction's token mean is the token-weighted mean
     * of its chunks' means, and so is its gradient. For a large set of pairs seen once (the
     * {@code objective} command): examples are encoded per chunk and neither they nor their states
     * are cached.
     *
     * @param w            the directions, rank x d row-major
     * @param batch        the pairs, evaluated as one minibatch
     * @param pairsPerCall the pairs per native call, at least 1
     * @param withGradient whether to compute the gradient
     * @return the loss, the gradient when asked (else null) and the tokens pooled
     * @throws InvalidArgumentException when {@code pairsPerCall} is below 1, {@code w} is not a multiple
     *         of d or a pair cannot be encoded
     */
    public Result evaluateInChunks(float[] w, Batch batch, int pairsPerCall, boolean withGradient) {
        return evaluateInChunks(w, batch, pairsPerCall, withGradient, false);
    }

    /**
     * {@link #evaluateInChunks(float[], Batch, int, boolean)}, keeping what it computes: each chunk's
     * examples are encoded and completed with their w-independent states through this objective's
     * caches (when it has a state cache), so that training on the same pairs afterwards finds them,
     * and a second evaluation skips the base model's passes. For pairs that are trained on.
     *
     * @param w            the directions, rank x d row-major
     * @param batch        the pairs, evaluated as one minibatch
     * @param pairsPerCall the pairs per native call, at least 1
     * @param withGradient whether to compute the gradient
     * @return the loss, the gradient when asked (else null) and the tokens pooled
     * @throws InvalidArgumentException as {@link #evaluateInChunks(float[], Batch, int, boolean)}
     */
    public Result evaluateInChunksCached(float[] w, Batch batch, int pairsPerCall, boolean withGradient) {
        return evaluateInChunks(w, batch, pairsPerCall, withGradient, true);
    }

    private Result evaluateInChunks(float[] w, Batch batch, int pairsPerCall, boolean withGradient, boolean cached) {
        if (pairsPerCall < 1) {
            throw new InvalidArgumentException("pairs per call must be at least 1, got " + pairsPerCall);
        }
        int d = dimension();
        if (w.length == 0 || w.length % d != 0) {
            throw new InvalidArgumentException("w holds " + w.length + " floats, not a multiple of the model's hidden size " + d);
        }
        int rank = w.length / d;
        double loss = 0;
        double[] grad = withGradient ? new double[w.length] : null;
        long allTokens = 0;
        for (List<DirectionExample> direction : List.of(batch.inject(), batch.suppress())) {
            double sum = 0;
            double[] gradSum = withGradient ? new double[w.length] : null;
            long tokens = 0;
            for (int from = 0; from < direction.size(); from += pairsPerCall) {
                List<DirectionExample> part = direction.subList(from, Math.min(direction.size(), from + pairsPerCall));
                List<ExampleEncoder.EncodedExample> chunk = cached ? encode(part) : part.stream().map(this::encodeOne).toList();
                long n = tokens(chunk);
                ObjectiveBatch input = cached ? withStates(chunk) : objectiveBatch(chunk, pad);
                ObjectiveResult r = model.cdasObjective(layer, rank, w, input, lossKind, 1f, withGradient);
                sum += (double) r.loss() * n;
                tokens += n;
                if (withGradient) {
                    for (int i = 0; i < w.length; i++) {
                        gradSum[i] += (double) r.gradDirections()[i] * n;
                    }
                }
            }
            loss += 0.5 * sum / tokens;
            if (withGradient) {
                for (int i = 0; i < w.length; i++) {
                    grad[i] += 0.5 * gradSum[i] / tokens;
                }
            }
            allTokens += tokens;
        }
        float[] g = null;
        if (withGradient) {
            g = new float[w.length];
            for (int i = 0; i < g.length; i++) {
                g[i] = (float) grad[i];
            }
        }
        return new Result(loss, g, allTokens);
    }

    /**
     * The loss of one direction alone (token mean of its JSD), for reports.
     *
     * @param w        the directions, rank x d row-major
     * @param examples the examples of one direction (D+ or D-)
     * @return the token-mean loss, in nats
     */
    public double directionLoss(float[] w, List<DirectionExample> examples) {
        int rank = w.length / dimension();
        return model.cdasObjective(layer, rank, w, withStates(encode(examples)), lossKind, 1f, false).loss();
    }

    private ObjectiveBatch withStates(List<ExampleEncoder.EncodedExample> examples) {
        ObjectiveBatch batch = objectiveBatch(examples, pad);
        return states == null ? batch : states.complete(examples, batch);
    }

    List<ExampleEncoder.EncodedExample> encode(List<DirectionExample> examples) {
        return examples.stream().map(e -> cache.computeIfAbsent(e, this::encodeOne)).toList();
    }

    private ExampleEncoder.EncodedExample encodeOne(DirectionExample e) {
        ExampleEncoder.EncodedExample encoded;
        try {
            encoded = encoder.encode(e);
        } catch (ChatTemplateException ex) {
            throw new InvalidArgumentException(e.origin() + ": " + ex.getMessage(), ex);
        }
        // A sequence past the model's context is refused here, naming the pair, before a batch of it is built.
        int context = model.config().maxPositions();
        int longest = Math.max(encoded.base().length, Math.max(encoded.source().length, encoded.target().length));
        if (longest > context) {
            throw new InvalidArgumentException(e.origin() + ": a sequence of this pair is " + longest
                    + " tokens long, more than the model's context of " + context + " positions ("
                    + (model.config().rope().isEmpty() ? "n_positions" : "max_position_embeddings") + " in "
                    + (model.config().source() == null ? "config.json" : model.config().source().toString()) + ")");
        }
        return encoded;
    }

    private static long tokens(List<ExampleEncoder.EncodedExample> examples) {
        long n = 0;
        for (ExampleEncoder.EncodedExample e : examples) {
            n += e.responseLength();
        }
        return n;
    }

    /**
     * The runtime's minibatch for encoded examples: rows left-padded with {@code pad}.
     *
     * @param examples the encoded examples
     * @param pad      the id the padding holds
     * @return the minibatch, without precomputed states
     */
    public static ObjectiveBatch objectiveBatch(List<ExampleEncoder.EncodedExample> examples, int pad) {
        int b = examples.size();
        int[][] base = new int[b][];
        int[][] source = new int[b][];
        int[][] target = new int[b][];
        int[] prefix = new int[b];
        int[] sourcePos = new int[b];
        int[] baseStart = new int[b];
        int[] targetStart = new int[b];
        int[] count = new int[b];
        for (int i = 0; i < b; i++) {
            ExampleEncoder.EncodedExample e = examples.get(i);
            base[i] = e.base();
            source[i] = e.source();
            target[i] = e.target();
            prefix[i] = e.basePrefixLen();
            sourcePos[i] = e.sourcePosition();
            baseStart[i] = e.baseLossStart();
            targetStart[i] = e.targetLossStart();
            count[i] = e.responseLength();
        }
        return new ObjectiveBatch(TokenBatch.leftPadded(pad, base), TokenBatch.leftPadded(pad, source),
                TokenBatch.leftPadded(pad, target), prefix, sourcePos, baseStart, targetStart, count);
    }
}
