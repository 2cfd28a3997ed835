package dev.cdas.model;

import static dev.cdas.model.NativeModelCalls.floats;
import static dev.cdas.model.NativeModelCalls.generationOptions;
import static dev.cdas.model.NativeModelCalls.intervention;
import static dev.cdas.model.NativeModelCalls.logProbBatch;
import static dev.cdas.model.NativeModelCalls.objectiveBatch;
import static dev.cdas.model.NativeModelCalls.tensorViews;
import static dev.cdas.model.NativeModelCalls.toArray;
import static dev.cdas.model.NativeModelCalls.tokenBatch;

import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_h;
import dev.cdas.io.Checkpoint;
import dev.cdas.io.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;

/**
 * A Hugging Face decoder (Llama 3.x, Gemma-2, Qwen2, Phi-3, GPT-2) on the native runtime
 * ({@code cdas_model_*}): forward passes with the CDAS clamp, generation with a KV cache and the
 * CDAS objective with its gradient. Computes what transformers computes for the same checkpoint.
 *
 * <p>Memory: on CPU, weights already in the model dtype are read in place from the memory-mapped
 * safetensors files, so the {@link Checkpoint} (or whatever owns the weights' memory) must stay
 * open as long as the model: a Model made by {@link #load} owns its checkpoint and closes it after
 * the native model. Other weights are converted or copied by native code at load.
 *
 * <p>A Model is safe to share between threads; native calls on one model run one at a time.
 *
 * <p>The calls take and return value types of this package: {@link RuntimeOptions},
 * {@link TokenBatch}, {@link Intervention}, {@link GenerationOptions}, {@link ObjectiveBatch},
 * {@link ForwardOutputs}, {@link ObjectiveResult}, {@link LogProbBatch}, {@link LogProbResult}; the package-private {@code NativeModelCalls}
 * fills the cdas.h structs from them.
 */
public final class Model implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Model.class.getName());

    private final ModelConfig config;
    private final AutoCloseable weightsOwner;
    private final Arena arena;
    private final MemorySegment handle;
    private final DType dtype;
    private final RuntimeOptions options;
    private final boolean borrowsWeights;
    /** Each block's device ("cuda:1"), as the native model placed it. */
    private final List<String> blockDevices;
    /** The mapped checkpoint the native model reads in place, checked before each call; null when copied. */
    private final CheckpointValidator.Weights mapped;
    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * System property: "true" copies the weights out of the memory-mapped checkpoint into the
     * model's own memory when it is created, so that a checkpoint rewritten or truncated later
     * cannot crash the process (SIGBUS), at the cost of the weights' size in RAM for the model's
     * lifetime and the time to read them all at once (docs/limits.md).
     */
    public static final String COPY_ON_LOAD_PROPERTY = "cdas.weights.copyOnLoad";

    /**
     * Opens a model folder's config.json and safetensors weights (no tokenizer needed).
     *
     * @param folder  the model folder
     * @param options where and how to run; null for the defaults
     * @return the model; close it to free the native model and unmap the checkpoint
     * @throws ConfigException                        when config.json is missing or not a supported model
     * @throws dev.cdas.io.SafetensorsFormatException when the weights are missing, malformed or do not fit the config
     * @throws IOException                            when a file cannot be read
     */
    public static Model load(Path folder, RuntimeOptions options) throws IOException {
        ModelConfig config = ModelConfig.load(folder);
        Checkpoint checkpoint = Checkpoint.open(folder);
        try {
            return new Model(config, CheckpointValidator.validate(config, checkpoint), checkpoint, options);
        } catch (IOException | RuntimeException | Error e) {
            checkpoint.close();
            throw e;
        }
    }

    /**
     * A model over validated weights; {@code weightsOwner} (nullable) keeps their memory alive and
     * is closed by {@link #close()} after the native model.
     *
     * @param config       the model's configuration
     * @param weights      the weights, checked against {@code config} ({@link CheckpointValidator#validate})
     * @param weightsOwner what keeps the weights' memory alive (the checkpoint), or null
     * @param options      where and how to run; null for the defaults
     * @return the model
     * @throws dev.cdas.CdasException when the native model cannot be created (no libtorch, an unknown
     *         CUDA device, too little memory, the mapped file changed)
     */
    public static Model create(ModelConfig config, CheckpointValidator.Weights weights, AutoCloseable weightsOwner,
                               RuntimeOptions options) {
        return new Model(config, weights, weightsOwner, options);
    }

    private Model(ModelConfig config, CheckpointValidator.Weights weights, AutoCloseable weightsOwner, RuntimeOptions options) {
        NativeLibrary.load();
        this.config = config;
        this.weightsOwner = weightsOwner;
        this.options = options == null ? RuntimeOptions.defaults() : options;
        DType stored = DType.of(weights.dtype()).orElse(DType.F32);
        this.dtype = computeDtype(weights, this.options);
        if (this.options.dtype() == null && dtype != stored) {
            LOG.log(System.Logger.Level.INFO, "computing in {0}, not the checkpoint''s {1}: libtorch has no vector kernels for {1} matrix "
                    + "products on this CPU (it would run them as scalar loops, many times slower); --dtype {2} keeps {1}", dtype, stored,
                    stored.name().toLowerCase(Locale.ROOT));
        }
        boolean copyOnLoad = Boolean.getBoolean(COPY_ON_LOAD_PROPERTY);
        Arena owner = Arena.ofShared();
        try {
            checkUnchanged(weights);
            MemorySegment nativeConfig = NativeModelConfig.build(config, dtype, this.options, owner);
            List<Map.Entry<String, Tensor>> entries = new ArrayList<>(weights.byCanonicalName().entrySet());
            MemorySegment views = tensorViews(entries, copyOnLoad, owner);
            MemorySegment out = owner.allocate(ValueLayout.ADDRESS);
            Native.check(cdas_h.cdas_model_create(nativeConfig, views, entries.size(), out));
            this.handle = out.get(ValueLayout.ADDRESS, 0).reinterpret(owner, Model::destroy);
            MemorySegment borrows = owner.allocate(ValueLayout.JAVA_INT);
            Native.check(cdas_h.cdas_model_borrows_host_memory(handle, borrows));
            this.borrowsWeights = borrows.get(ValueLayout.JAVA_INT, 0) != 0 && !copyOnLoad;
            this.mapped = borrowsWeights ? weights : null;
            this.blockDevices = blockDevices(handle, config.numLayers(), NativeModelConfig.splitDevices(this.options), owner);
            checkUnchanged(weights);  // the file was not changed while it was read or copied
            this.arena = owner;
        } catch (RuntimeException | Error e) {
            owner.close();
            throw e;
        }
        LOG.log(System.Logger.Level.INFO, "model {0} on {1}, {2}, weights {3}", config.family().modelType(),
                deviceName(), dtype, borrowsWeights ? "read in place from the mapped checkpoint" : "copied/converted");
    }

    /**
     * The type a model over these weights computes in with these options: the options' dtype, or
     * {@link #defaultDtype} without one.
     *
     * @param weights the checked weights
     * @param options where and how the model runs
     * @return the compute type
     */
    public static DType computeDtype(CheckpointValidator.Weights weights, RuntimeOptions options) {
        if (options.dtype() != null) {
            return options.dtype();
        }
        return defaultDtype(DType.of(weights.dtype()).orElse(DType.F32), onCpuOnly(options), Model::cpuFastMatmul);
    }

    /**
     * The compute type when none is given: the checkpoint's, except on the CPU where libtorch has no
     * vector kernels for that type's matrix products ({@code fastOnCpu} false: F16 without AVX512-FP16
     * or AVX-NE-CONVERT, BF16 without AVX-512 or AVX-NE-CONVERT), where it is F32, as transformers
     * loads a checkpoint by default. Half-precision products there run as scalar loops: demo training
     * about 16x slower in F16 than in F32 on an AMD EPYC (benchmarks/RESULTS.md).
     *
     * @param stored    the checkpoint's dtype
     * @param cpuOnly   whether every part of the model runs on the CPU
     * @param fastOnCpu whether libtorch multiplies matrices of a type with vector kernels on this CPU
     * @return the compute type
     */
    static DType defaultDtype(DType stored, boolean cpuOnly, Predicate<DType> fastOnCpu) {
        return cpuOnly && stored != DType.F32 && !fastOnCpu.test(stored) ? DType.F32 : stored;
    }

    /**
     * Whether libtorch multiplies matrices of {@code dtype} on this CPU with vector kernels
     * ({@code cdas_cpu_fast_matmul}): F32 always; BF16 with AVX-512 or AVX-NE-CONVERT; F16 with
     * AVX512-FP16 or AVX-NE-CONVERT.
     *
     * @param dtype a compute type
     * @return true when its products are fast on this CPU
     */
    public static boolean cpuFastMatmul(DType dtype) {
        NativeLibrary.load();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fast = arena.allocate(ValueLayout.JAVA_INT);
            Native.check(cdas_h.cdas_cpu_fast_matmul(dtype.code(), fast));
            return fast.get(ValueLayout.JAVA_INT, 0) != 0;
        }
    }

    /** Whether every part of a model with these options runs on the CPU (an automatic split does on a machine without a GPU). */
    private static boolean onCpuOnly(RuntimeOptions options) {
        if (options.autoSplit()) {
            return NativeLibrary.load().cudaDevices() == 0;
        }
        if (!options.split().isEmpty()) {
            return options.split().stream().allMatch(d -> d.device() == Device.CPU);
        }
        return options.device() == Device.CPU;
    }

    private static List<String> blockDevices(MemorySegment handle, int layers, List<SplitDevice> split, Arena arena) {
        MemorySegment map = arena.allocate(ValueLayout.JAVA_INT, layers);
        MemorySegment count = arena.allocate(ValueLayout.JAVA_LONG);
        Native.check(cdas_h.cdas_model_layer_devices(handle, map, layers, count));
        List<String> out = new ArrayList<>(layers);
        for (int i = 0; i < layers; i++) {
            int k = map.getAtIndex(ValueLayout.JAVA_INT, i);
            out.add(split.isEmpty() ? null : split.get(k).toString());
        }
        return out;
    }

    private static void destroy(MemorySegment raw) {
        int status = cdas_h.cdas_model_destroy(raw);
        if (status != cdas_h.CDAS_STATUS_OK()) {
            LOG.log(System.Logger.Level.WARNING, "cdas_model_destroy failed: {0}", Native.lastError());
        }
    }

    /**
     * The configuration the model was created with.
     *
     * @return the config.json it was read from
     */
    public ModelConfig config() {
        return config;
    }

    /**
     * The dtype weights and activations are computed in.
     *
     * @return F32, BF16 or F16
     */
    public DType dtype() {
        return dtype;
    }

    /**
     * The device kind and the dtype the model computes in, as {@code "cpu f32"} or {@code "cuda bf16"}:
     * what a training checkpoint records so that a run is resumed only where it computes the same
     * way (the device index and a layer split's placement do not change the arithmetic; the kind
     * and the dtype do).
     *
     * @return the device kind and dtype, lower case, separated by a space
     */
    public String computeKind() {
        return computeKind(options.device(), dtype);
    }

    /**
     * The form of {@link #computeKind()} for a model not loaded yet (fan-out records it before loading).
     *
     * @param device where the model runs
     * @param dtype  what it computes in
     * @return the device kind and dtype, lower case, separated by a space
     */
    public static String computeKind(Device device, DType dtype) {
        return device.name().toLowerCase(Locale.ROOT) + " " + dtype.name().toLowerCase(Locale.ROOT);
    }

    /**
     * The dtype of a {@link #computeKind} string, read back (a checkpoint's record of it).
     *
     * @param kind for example {@code "cpu bf16"}
     * @return its dtype, or null when {@code kind} is null or names no dtype this runtime knows
     */
    public static DType computeDtypeOf(String kind) {
        if (kind == null || kind.indexOf(' ') < 0) {
            return null;
        }
        try {
            return DType.valueOf(kind.substring(kind.indexOf(' ') + 1).toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    /**
     * Where and how the model runs.
     *
     * @return the options, with defaults filled in
     */
    public RuntimeOptions options() {
        return options;
    }

    /**
     * Whether the native model reads the checkpoint's mapped memory in place (no copy).
     *
     * @return true when the weights are read from the mapping
     */
    public boolean borrowsWeights() {
        return borrowsWeights;
    }

    /**
     * The device, for messages.
     *
     * @return "cpu" or "cuda:N"
     */
    public String deviceName() {
        if (blockDevices.getFirst() != null) {
            return String.join(",", new java.util.LinkedHashSet<>(blockDevices));
        }
        return options.device() == Device.CPU ? "cpu" : "cuda:" + options.deviceIndex();
    }

    /**
     * Each block's device under a layer split, in block order.
     *
     * @return one name per block ("cuda:1", "cpu:0"), all {@link #deviceName()} without a split
     */
    public List<String> blockDevices() {
        String one = deviceName();
        return blockDevices.stream().map(d -> d == null ? one : d).toList();
    }

    /**
     * The layer split's placement in words, e.g. "blocks 0-13 on cuda:0, 14-27 on cuda:1".
     *
     * @return the placement, or empty without a split (one device, or autoSplit without a GPU)
     */
    public java.util.Optional<String> placement() {
        if (blockDevices.getFirst() == null) {
            return java.util.Optional.empty();
        }
        StringBuilder out = new StringBuilder("blocks ");
        int start = 0;
        for (int i = 1; i <= blockDevices.size(); i++) {
            if (i < blockDevices.size() && blockDevices.get(i).equals(blockDevices.get(start))) {
                continue;
            }
            out.append(start == 0 ? "" : ", ").append(start).append(i - 1 > start ? "-" + (i - 1) : "")
                    .append(" on ").append(blockDevices.get(start));
            start = i;
        }
        return java.util.Optional.of(out.toString());
    }

    private MemorySegment handle() {
        if (closed.get()) {
            throw new IllegalStateException("Model is closed");
        }
        return handle;
    }

    /**
     * Refuses weights whose mapped file was changed in place since it was opened, before native code
     * touches them (a truncated mapping would end the process with SIGBUS; docs/limits.md).
     */
    private static void checkUnchanged(CheckpointValidator.Weights weights) {
        if (weights == null) {
            return;
        }
        try {
            weights.checkUnchanged();
        } catch (dev.cdas.io.SafetensorsFormatException e) {
            dev.cdas.NativeIOException x = new dev.cdas.NativeIOException(e.getMessage());
            x.initCause(e);
            throw x;
        }
    }

    // ---- forward ----------------------------------------------------------------------------------

    /**
     * A forward pass; {@code hiddenLayer} matters only with {@link ForwardOutput#HIDDEN}.
     *
     * @param batch        the token rows
     * @param intervention the intervention to apply, or null
     * @param hiddenLayer  the block whose output {@link ForwardOutput#HIDDEN} returns (0-based)
     * @param outputs      what to return, at least one
     * @return the outputs asked for (the others null), fp32
     * @throws InvalidArgumentException when no output is asked for, a row is longer than the model's
     *         context, or the batch or intervention does not fit the model
     * @throws IllegalStateException    when the model is closed
     */
    public ForwardOutputs forward(TokenBatch batch, Intervention intervention, int hiddenLayer, Set<ForwardOutput> outputs) {
        if (outputs == null || outputs.isEmpty()) {
            throw new InvalidArgumentException("ask for at least one output (HIDDEN, FINAL_HIDDEN, LOGITS)");
        }
        checkLength(batch, "the sequence");
        checkUnchanged(mapped);
        long cells = (long) batch.batch() * batch.seqLen();
        long d = config.hiddenSize();
        long v = config.vocabSize();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment in = tokenBatch(batch, call);
            MemorySegment iv = intervention == null ? MemorySegment.NULL : intervention(intervention, d, batch.batch(), call);
            MemorySegment hidden = outputs.contains(ForwardOutput.HIDDEN) ? floats(call, cells * d) : MemorySegment.NULL;
            MemorySegment fin = outputs.contains(ForwardOutput.FINAL_HIDDEN) ? floats(call, cells * d) : MemorySegment.NULL;
            MemorySegment logits = outputs.contains(ForwardOutput.LOGITS) ? floats(call, cells * v) : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_forward(handle(), in, iv, hiddenLayer, hidden, fin, logits));
            return new ForwardOutputs(toArray(hidden), toArray(fin), toArray(logits));
        }
    }

    /**
     * Refuses a batch longer than the model's context before anything proportional to it is
     * allocated: GPT-2 has no position embeddings past n_positions, and a rotary model's attention
     * memory grows with the square of the length, so max_position_embeddings bounds both
     * (docs/limits.md). Rows are padded to the longest, so the padded length is the longest row's.
     */
    /** {@link #checkLength} for each sequence of an objective batch (source and target when given). */
    private void checkLengths(ObjectiveBatch batch) {
        checkLength(batch.base(), "the base sequence");
        if (batch.source() != null) {
            checkLength(batch.source(), "the source sequence");
        }
        if (batch.target() != null) {
            checkLength(batch.target(), "the target sequence");
        }
    }

    private void checkLength(TokenBatch batch, String what) {
        if (batch != null && batch.seqLen() > config.maxPositions()) {
            String file = config.source() == null ? ModelConfig.FILE_NAME : config.source().toString();
            throw new InvalidArgumentException(what + " is " + batch.seqLen() + " tokens long, more than the model's context of "
                    + config.maxPositions() + (config.rope().isEmpty() ? " learned positions (n_positions in " : " positions (max_position_embeddings in ")
                    + file + ")");
        }
    }

    /**
     * Logits [B x T x V] of a batch, without intervention.
     *
     * @param batch the token rows
     * @return the logits, B x T x V fp32 row-major
     * @throws InvalidArgumentException when a row is longer than the model's context or a token is out of range
     */
    public float[] logits(TokenBatch batch) {
        return forward(batch, null, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
    }

    // ---- generation -------------------------------------------------------------------------------

    /**
     * Continues each row of a left-padded prompt (KV cache; the clamp, if any, on the prompt and
     * every new token). Returns each row's new tokens, the eos included.
     *
     * @param prompt       the prompts, left-padded ({@link TokenBatch#leftPadded})
     * @param intervention the intervention to apply, or null
     * @param o            length, sampling and stop tokens
     * @return per row, the new token ids, at most {@code o.maxNewTokens()}
     * @throws InvalidArgumentException when the options are null or invalid, or a prompt is longer than the model's context
     * @throws IllegalStateException    when the model is closed
     */
    public int[][] generate(TokenBatch prompt, Intervention intervention, GenerationOptions o) {
        if (o == null) {
            throw new InvalidArgumentException("generation options must not be null");
        }
        checkLength(prompt, "the prompt");
        checkUnchanged(mapped);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment in = tokenBatch(prompt, call);
            MemorySegment iv = intervention == null ? MemorySegment.NULL : intervention(intervention, config.hiddenSize(), prompt.batch(), call);
            MemorySegment opts = generationOptions(o, call);
            if (o.maxNewTokens() <= 0) {
                throw new InvalidArgumentException("maxNewTokens must be > 0, got " + o.maxNewTokens());
            }
            MemorySegment tokens = call.allocate(ValueLayout.JAVA_INT, (long) prompt.batch() * o.maxNewTokens());
            MemorySegment lengths = call.allocate(ValueLayout.JAVA_INT, prompt.batch());
            Native.check(cdas_h.cdas_model_generate(handle(), in, iv, opts, tokens, lengths));
            int[][] rows = new int[prompt.batch()][];
            for (int b = 0; b < prompt.batch(); b++) {
                rows[b] = new int[lengths.getAtIndex(ValueLayout.JAVA_INT, b)];
                for (int k = 0; k < rows[b].length; k++) {
                    rows[b][k] = tokens.getAtIndex(ValueLayout.JAVA_INT, (long) b * o.maxNewTokens() + k);
                }
            }
            return rows;
        }
    }

    // ---- the CDAS objective -----------------------------------------------------------------------

    /**
     * Loss of one minibatch at {@code layer} for directions W [rank x d] and, when
     * {@code withGradient}, gradScale x dLoss/dW (the gradient through a = W s included). Runs the
     * no-grad source/teacher/base passes and the intervened pass with autograd above the layer in
     * one native call.
     *
     * @param layer        the block whose output is clamped (0-based)
     * @param rank         the number of directions r
     * @param directions   W, r x d fp32 row-major
     * @param batch        the minibatch
     * @param gradScale    the factor on the gradient
     * @param withGradient whether to compute the gradient
     * @return the loss (JSD, in nats) and, when asked, the gradient
     * @throws InvalidArgumentException when {@code directions} is not r x d or the batch does not fit the model
     */
    public ObjectiveResult cdasObjective(int layer, int rank, float[] directions, ObjectiveBatch batch, float gradScale,
                                         boolean withGradient) {
        return cdasObjective(layer, rank, directions, batch, ObjectiveLoss.JSD, gradScale, withGradient);
    }

    /**
     * {@link #cdasObjective(int, int, float[], ObjectiveBatch, float, boolean)} with another loss:
     * under {@link ObjectiveLoss#CROSS_ENTROPY} compared row k of example b is labelled with base
     * token {@code baseStart[b] + k + 1}, and the source states come from a pass over the source.
     *
     * @param layer        the block whose output is clamped (0-based)
     * @param rank         the number of directions r
     * @param directions   W, r x d fp32 row-major
     * @param batch        the minibatch
     * @param lossKind     JSD or cross-entropy
     * @param gradScale    the factor on the gradient
     * @param withGradient whether to compute the gradient
     * @return the loss, in nats, and, when asked, the gradient
     * @throws InvalidArgumentException when {@code directions} is not r x d or the batch does not fit the model
     * @throws NullPointerException     when {@code lossKind} is null
     */
    public ObjectiveResult cdasObjective(int layer, int rank, float[] directions, ObjectiveBatch batch, ObjectiveLoss lossKind,
                                         float gradScale, boolean withGradient) {
        Objects.requireNonNull(lossKind, "lossKind");
        if (rank <= 0 || directions == null || directions.length != (long) rank * config.hiddenSize()) {
            throw new InvalidArgumentException("directions must hold rank x d = " + (long) rank * config.hiddenSize()
                    + " floats, got " + (directions == null ? "null" : directions.length));
        }
        checkLengths(batch);
        checkUnchanged(mapped);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment ob = objectiveBatch(batch, lossKind, config.hiddenSize(), call);
            MemorySegment loss = call.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment grad = withGradient ? floats(call, directions.length) : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_cdas_objective(handle(), layer, rank,
                    call.allocateFrom(ValueLayout.JAVA_FLOAT, directions), ob, gradScale, loss, grad));
            return new ObjectiveResult(loss.get(ValueLayout.JAVA_FLOAT, 0), toArray(grad));
        }
    }

    // ---- the baselines' steered log-likelihoods -------------------------------------------------

    /**
     * Per row, the sum of log p(token | earlier tokens) over the scored tokens under the
     * intervention (null = the unmodified model); with {@code upstream} [B] (nullable) also the
     * gradient of {@code sum_b upstream[b] logProbs[b]} with respect to the intervention's
     * parameters (layout: {@link Intervention#parameterCount()}), by autograd above the layer.
     * The losses of RePS, BiPO and LoReFT are functions of these (docs/method.md).
     *
     * @param intervention the steering applied at its layer; null for the unsteered model
     * @param batch the rows and the tokens to score
     * @param upstream one weight per row for the backward pass; null for none
     * @return the log-likelihoods, and the gradient when upstream is given
     */
    public LogProbResult sequenceLogProbs(Intervention intervention, LogProbBatch batch, float[] upstream) {
        if (batch == null) {
            throw new InvalidArgumentException("the log-probability batch must not be null");
        }
        int b = batch.tokens().batch();
        if (upstream != null && upstream.length != b) {
            throw new InvalidArgumentException("upstream must hold one entry per row (" + b + "), got " + upstream.length);
        }
        checkLength(batch.tokens(), "the sequence");
        checkUnchanged(mapped);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment iv = intervention == null ? MemorySegment.NULL : intervention(intervention, config.hiddenSize(), b, call);
            MemorySegment up = upstream == null ? MemorySegment.NULL : call.allocateFrom(ValueLayout.JAVA_FLOAT, upstream);
            MemorySegment logProbs = floats(call, b);
            MemorySegment grad = upstream != null && intervention != null ? floats(call, intervention.parameterCount())
                    : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_sequence_logprobs(handle(), iv, logProbBatch(batch, call), up, logProbs, grad));
            return new LogProbResult(toArray(logProbs), toArray(grad));
        }
    }

    /**
     * Several direction sets in one call (concept packing, docs/scale-out.md): example b of
     * {@code batch} is clamped with set {@code directionIndex[b]} of {@code sets}, whose directions
     * are block b of {@code directions} ({@code sets x rank x d}). Element k of the result is set k's
     * loss over its own examples' compared rows and its gradient ({@code gradScale x dLoss_k/dW_k}),
     * what {@link #cdasObjective(int, int, float[], ObjectiveBatch, ObjectiveLoss, float, boolean)}
     * gives for those examples alone (docs/scale-out.md, "Packing", says when it is bit for bit).
     *
     * @param layer the layer L
     * @param rank directions per set r
     * @param sets the number of direction sets
     * @param directions the sets' directions, sets x rank x d
     * @param directionIndex each example's set, one per example of {@code batch}
     * @param packPadding sets whose own padded lengths differ by at most this many tokens share a pass
     *        through the layers (0: each set exactly as alone; cdas.h, cdas_objective_batch.pack_padding)
     * @param batch the stacked minibatch (left-padded)
     * @param lossKind the loss
     * @param gradScale the gradient's scale
     * @param withGradient whether to compute the gradients
     * @return per set, its loss and gradient (rank x d; null without gradient)
     */
    public List<ObjectiveResult> cdasObjectivePacked(int layer, int rank, int sets, float[] directions, int[] directionIndex,
                                                     int packPadding, ObjectiveBatch batch, ObjectiveLoss lossKind, float gradScale,
                                                     boolean withGradient) {
        Objects.requireNonNull(lossKind, "lossKind");
        Objects.requireNonNull(directionIndex, "directionIndex");
        if (packPadding < 0) {
            throw new InvalidArgumentException("packPadding must be >= 0, got " + packPadding);
        }
        long perSet = (long) rank * config.hiddenSize();
        if (rank <= 0 || sets <= 0 || directions == null || directions.length != sets * perSet) {
            throw new InvalidArgumentException("directions must hold sets x rank x d = " + sets * perSet + " floats, got "
                    + (directions == null ? "null" : directions.length));
        }
        checkLengths(batch);
        checkUnchanged(mapped);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment ob = objectiveBatch(batch, lossKind, config.hiddenSize(), directionIndex, sets, packPadding, call);
            MemorySegment loss = floats(call, sets);
            MemorySegment grad = withGradient ? floats(call, directions.length) : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_cdas_objective(handle(), layer, rank,
                    call.allocateFrom(ValueLayout.JAVA_FLOAT, directions), ob, gradScale, loss, grad));
            float[] losses = toArray(loss);
            float[] grads = toArray(grad);
            List<ObjectiveResult> out = new ArrayList<>(sets);
            for (int k = 0; k < sets; k++) {
                out.add(new ObjectiveResult(losses[k], grads == null ? null
                        : Arrays.copyOfRange(grads, Math.toIntExact(k * perSet), Math.toIntExact((k + 1) * perSet))));
            }
            return out;
        }
    }

    /** Destroys the native model, then closes the weights' owner; later calls are no-ops. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            try {
                // waits for calls in flight on other threads (docs/concurrency.md)
                dev.cdas.Native.closeWhenIdle(arena);
            } finally {
                if (weightsOwner != null) {
                    try {
                        weightsOwner.close();
                    } catch (Exception e) {
                        LOG.log(System.Logger.Level.WARNING, "closing the model weights failed: {0}", e.toString());
                    }
                }
            }
        }
    }

    @Override
    public String toString() {
        return "Model[" + config + ", " + deviceName() + ", " + dtype + (closed.get() ? ", closed" : "") + "]";
    }
}
