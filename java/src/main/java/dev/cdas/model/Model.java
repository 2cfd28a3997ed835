package dev.cdas.model;

import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.UnsupportedFeatureException;
import dev.cdas.bindings.cdas_generation_options;
import dev.cdas.bindings.cdas_h;
import dev.cdas.bindings.cdas_intervention;
import dev.cdas.bindings.cdas_model_config;
import dev.cdas.bindings.cdas_objective_batch;
import dev.cdas.bindings.cdas_tensor_view;
import dev.cdas.bindings.cdas_token_batch;
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
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;

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
 */
public final class Model implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Model.class.getName());

    /** What a forward pass writes. */
    public enum Output {
        /** h_L after block {@code hiddenLayer} (after the clamp when it is at that layer), [B x T x d]. */
        HIDDEN,
        /** Hidden states after the final norm, [B x T x d]. */
        FINAL_HIDDEN,
        /** Logits after any final soft-cap, [B x T x V]. */
        LOGITS
    }

    /**
     * Where and how the model runs. {@code dtype} null: the checkpoint's own (fp32 for types the
     * runtime does not compute in). {@code threads} 0 leaves libtorch's (process-wide) setting alone.
     */
    public record Options(DType dtype, Device device, int deviceIndex, int threads) {
        public Options {
            if (device == null) {
                device = Device.CPU;
            }
            if (deviceIndex < 0 || (device == Device.CPU && deviceIndex != 0)) {
                throw new InvalidArgumentException("deviceIndex must be 0 on CPU and >= 0 on CUDA, got " + deviceIndex);
            }
            dev.cdas.Args.threads("threads", threads);
        }

        public static Options defaults() {
            return new Options(null, Device.CPU, 0, 0);
        }

        public Options withDtype(DType dtype) {
            return new Options(dtype, device, deviceIndex, threads);
        }

        /** "cpu", "cuda" or "cuda:N". */
        public Options withDevice(String spec) {
            String s = spec == null ? "" : spec.trim().toLowerCase(java.util.Locale.ROOT);
            if (s.equals("cpu")) {
                return new Options(dtype, Device.CPU, 0, threads);
            }
            if (s.equals("cuda")) {
                return new Options(dtype, Device.CUDA, 0, threads);
            }
            if (s.startsWith("cuda:")) {
                try {
                    return new Options(dtype, Device.CUDA, Integer.parseInt(s.substring(5)), threads);
                } catch (NumberFormatException e) {
                    // reported below
                }
            }
            throw new InvalidArgumentException("device must be cpu, cuda or cuda:N, got \"" + spec + "\"");
        }

        public Options withThreads(int threads) {
            return new Options(dtype, device, deviceIndex, threads);
        }

        /** "f32", "bf16" or "f16" (also float32, bfloat16, float16). */
        public static DType parseDtype(String name) {
            return switch (name == null ? "" : name.trim().toLowerCase(java.util.Locale.ROOT)) {
                case "f32", "fp32", "float32" -> DType.F32;
                case "bf16", "bfloat16" -> DType.BF16;
                case "f16", "fp16", "float16", "half" -> DType.F16;
                default -> throw new InvalidArgumentException("dtype must be f32, bf16 or f16, got \"" + name + "\"");
            };
        }
    }

    /**
     * Token sequences [batch x seqLen] with a mask (1 = real token). The real tokens of a row are
     * one contiguous run; positions count from its first real token, so padding changes nothing.
     */
    public record Batch(int batch, int seqLen, int[] tokens, byte[] mask) {
        public Batch {
            if (batch <= 0 || seqLen <= 0) {
                throw new InvalidArgumentException("a batch needs batch > 0 and seqLen > 0, got " + batch + " x " + seqLen);
            }
            if (tokens == null || tokens.length != (long) batch * seqLen) {
                throw new InvalidArgumentException("tokens must hold batch x seqLen = " + (long) batch * seqLen + " ids, got "
                        + (tokens == null ? "null" : tokens.length));
            }
            if (mask != null && mask.length != tokens.length) {
                throw new InvalidArgumentException("mask must hold " + tokens.length + " entries, got " + mask.length);
            }
        }

        /** One unpadded sequence. */
        public static Batch single(int... tokens) {
            return new Batch(1, tokens.length, tokens.clone(), null);
        }

        /** Rows left-padded to the longest with token {@code pad} (what generation needs). */
        public static Batch leftPadded(int pad, int[]... rows) {
            int width = 0;
            for (int[] r : rows) {
                if (r.length == 0) {
                    throw new InvalidArgumentException("a row of a batch is empty");
                }
                width = Math.max(width, r.length);
            }
            int[] tokens = new int[rows.length * width];
            byte[] mask = new byte[tokens.length];
            Arrays.fill(tokens, pad);
            for (int b = 0; b < rows.length; b++) {
                int offset = b * width + width - rows[b].length;
                System.arraycopy(rows[b], 0, tokens, offset, rows[b].length);
                Arrays.fill(mask, offset, offset + rows[b].length, (byte) 1);
            }
            return new Batch(rows.length, width, tokens, mask);
        }

        /** Column of row b's first real token. */
        public int firstReal(int b) {
            if (mask == null) {
                return 0;
            }
            for (int t = 0; t < seqLen; t++) {
                if (mask[b * seqLen + t] != 0) {
                    return t;
                }
            }
            return seqLen;
        }

        /** Real tokens of row b. */
        public int length(int b) {
            if (mask == null) {
                return seqLen;
            }
            int n = 0;
            for (int t = 0; t < seqLen; t++) {
                n += mask[b * seqLen + t] != 0 ? 1 : 0;
            }
            return n;
        }
    }

    /** What an intervention does to h_L on the positions it touches. */
    public enum InterventionMode {
        /** {@code h + W^T (a_b - W h)}: the DII clamp of CDAS and DAS. */
        CLAMP,
        /** {@code h + W^T f_b}: additive steering (DiffMean); takes values only. */
        ADD
    }

    /**
     * An intervention at the output of block {@code layer}, at real positions
     * {@code t >= prefixLen[b]} (counted from the row's first real token), W [rank x d] fp32
     * row-major. {@link InterventionMode#CLAMP}: {@code h <- h + W^T (a_b - W h)}, a_b is
     * {@code values} [B x rank] or, with {@code sourcePositions}, {@code W h_L} at that position of
     * the same row (un-clamped). {@link InterventionMode#ADD}: {@code h <- h + W^T f_b} with
     * f = {@code values}. prefixLen null = 0.
     */
    public record Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions,
                               int[] prefixLen, InterventionMode mode) {
        public Intervention {
            if (rank <= 0 || directions == null || directions.length % rank != 0) {
                throw new InvalidArgumentException("directions must hold rank x d floats with rank > 0, got rank " + rank
                        + " and " + (directions == null ? "null" : directions.length + " floats"));
            }
            if ((values == null) == (sourcePositions == null)) {
                throw new InvalidArgumentException("give exactly one of values and sourcePositions, got "
                        + (values == null ? "neither" : "both"));
            }
            if (mode == null) {
                throw new InvalidArgumentException("intervention mode must not be null");
            }
            if (mode == InterventionMode.ADD && values == null) {
                throw new InvalidArgumentException("an additive intervention takes values (the amounts f), not sourcePositions");
            }
        }

        /** A clamp ({@link InterventionMode#CLAMP}). */
        public Intervention(int layer, int rank, float[] directions, float[] values, int[] sourcePositions, int[] prefixLen) {
            this(layer, rank, directions, values, sourcePositions, prefixLen, InterventionMode.CLAMP);
        }

        /** h + W^T f_b with amounts f [B x rank]. */
        public static Intervention add(int layer, int rank, float[] directions, float[] amounts, int[] prefixLen) {
            return new Intervention(layer, rank, directions, amounts, null, prefixLen, InterventionMode.ADD);
        }

        /** Clamp values given per example: values [B x rank]. */
        public static Intervention clamp(int layer, int rank, float[] directions, float[] values, int[] prefixLen) {
            return new Intervention(layer, rank, directions, values, null, prefixLen);
        }

        /** a = W h_L at each row's source position. */
        public static Intervention fromSource(int layer, int rank, float[] directions, int[] sourcePositions,
                                              int[] prefixLen) {
            return new Intervention(layer, rank, directions, null, sourcePositions, prefixLen);
        }
    }

    /** Flat fp32 outputs of a forward pass; null for what was not asked. */
    public record Outputs(float[] hidden, float[] finalHidden, float[] logits) {
    }

    /** temperature 0 = greedy; topP 1 and topK 0 = off; a row stops after producing one of eosIds. */
    public record GenerationOptions(int maxNewTokens, float temperature, float topP, int topK, long seed, int[] eosIds) {
        public static GenerationOptions greedy(int maxNewTokens, int... eosIds) {
            return new GenerationOptions(maxNewTokens, 0f, 1f, 0, 0L, eosIds);
        }
    }

    /**
     * One CDAS minibatch (docs/method.md section 1): row k < compareCount[b] compares position
     * baseStart[b] + k of the clamped base with targetStart[b] + k of the unmodified target
     * (positions from each row's first real token); a_b = W h_L(source row b, sourcePositions[b]).
     *
     * <p>The optional states (fp32, null = computed in the call) do not depend on W, so a trainer
     * may compute them once and reuse them: {@code baseHidden} [B x T_base x d] = h_L of the base
     * (padded like {@code base}); {@code sourceHidden} [B x d] = the source states s_b;
     * {@code teacherHidden} [compared rows x d] = the target's final hidden states at the compared
     * rows, example by example (given, the target is not read).
     */
    public record ObjectiveBatch(Batch base, Batch source, Batch target, int[] prefixLen, int[] sourcePositions,
                                 int[] baseStart, int[] targetStart, int[] compareCount, float[] baseHidden,
                                 float[] sourceHidden, float[] teacherHidden) {
        /** Without precomputed states. */
        public ObjectiveBatch(Batch base, Batch source, Batch target, int[] prefixLen, int[] sourcePositions,
                              int[] baseStart, int[] targetStart, int[] compareCount) {
            this(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount, null, null, null);
        }

        /** The same minibatch with the given states (each nullable). */
        public ObjectiveBatch withStates(float[] baseHidden, float[] sourceHidden, float[] teacherHidden) {
            return new ObjectiveBatch(base, source, target, prefixLen, sourcePositions, baseStart, targetStart, compareCount,
                    baseHidden, sourceHidden, teacherHidden);
        }

        /** Rows compared (the sum of compareCount). */
        public long comparedRows() {
            long n = 0;
            for (int c : compareCount) {
                n += c;
            }
            return n;
        }
    }

    /** The loss of {@link #cdasObjective}. */
    public enum ObjectiveLoss {
        /** CDAS: JSD against the target over the vocabulary, by the fused LM-head + JSD kernel. */
        JSD,
        /** The same JSD composed from libtorch operations (the [rows x V] logits materialised): a baseline. */
        JSD_COMPOSED,
        /** DAS: mean cross-entropy of the base row's own next token at each compared row; the target is not read. */
        CROSS_ENTROPY
    }

    /** Mean loss over the compared rows and gradScale x dLoss/dW (null when not asked). */
    public record ObjectiveResult(float loss, float[] gradDirections) {
    }

    private final ModelConfig config;
    private final AutoCloseable weightsOwner;
    private final Arena arena;
    private final MemorySegment handle;
    private final DType dtype;
    private final Options options;
    private final boolean borrowsWeights;
    private final AtomicBoolean closed = new AtomicBoolean();

    /** Opens a model folder's config.json and safetensors weights (no tokenizer needed). */
    public static Model load(Path folder, Options options) throws IOException {
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
     */
    public static Model create(ModelConfig config, CheckpointValidator.Weights weights, AutoCloseable weightsOwner,
                               Options options) {
        return new Model(config, weights, weightsOwner, options);
    }

    private Model(ModelConfig config, CheckpointValidator.Weights weights, AutoCloseable weightsOwner, Options options) {
        NativeLibrary.load();
        this.config = config;
        this.weightsOwner = weightsOwner;
        this.options = options == null ? Options.defaults() : options;
        this.dtype = this.options.dtype() != null ? this.options.dtype() : DType.of(weights.dtype()).orElse(DType.F32);
        Arena owner = Arena.ofShared();
        try {
            MemorySegment nativeConfig = NativeModelConfig.build(config, dtype, this.options.device(), this.options.deviceIndex(), this.options.threads(), owner);
            List<Map.Entry<String, Tensor>> entries = new ArrayList<>(weights.byCanonicalName().entrySet());
            MemorySegment views = cdas_tensor_view.allocateArray(entries.size(), owner);
            for (int i = 0; i < entries.size(); i++) {
                MemorySegment view = cdas_tensor_view.asSlice(views, i);
                Tensor t = entries.get(i).getValue();
                cdas_tensor_view.name(view, owner.allocateFrom(entries.get(i).getKey()));
                MemorySegment data = t.data();
                DType direct = DType.of(t.dtype()).orElse(null);
                if (direct == null) {
                    data = toFloat32(t, owner);
                }
                cdas_tensor_view.dtype(view, (direct == null ? DType.F32 : direct).code());
                cdas_tensor_view.ndim(view, t.rank());
                MemorySegment shape = cdas_tensor_view.shape(view);
                for (int k = 0; k < t.rank(); k++) {
                    shape.setAtIndex(ValueLayout.JAVA_LONG, k, t.dim(k));
                }
                cdas_tensor_view.data(view, data);
            }
            MemorySegment out = owner.allocate(ValueLayout.ADDRESS);
            Native.check(cdas_h.cdas_model_create(nativeConfig, views, entries.size(), out));
            this.handle = out.get(ValueLayout.ADDRESS, 0).reinterpret(owner, Model::destroy);
            MemorySegment borrows = owner.allocate(ValueLayout.JAVA_INT);
            Native.check(cdas_h.cdas_model_borrows_host_memory(handle, borrows));
            this.borrowsWeights = borrows.get(ValueLayout.JAVA_INT, 0) != 0;
            this.arena = owner;
        } catch (RuntimeException | Error e) {
            owner.close();
            throw e;
        }
        LOG.log(System.Logger.Level.INFO, "model {0} on {1}, {2}, weights {3}", config.family().modelType(),
                deviceName(), dtype, borrowsWeights ? "read in place from the mapped checkpoint" : "copied/converted");
    }


    private static MemorySegment toFloat32(Tensor t, Arena arena) {
        if (t.dtype() != dev.cdas.io.StorageType.F64) {
            throw new UnsupportedFeatureException("tensor " + t.name() + " has dtype " + t.dtype()
                    + "; the runtime reads F32, BF16, F16 (and converts F64)");
        }
        long n = t.elementCount();
        MemorySegment f = arena.allocate(ValueLayout.JAVA_FLOAT, n);
        for (long i = 0; i < n; i++) {
            f.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) t.data().getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i));
        }
        return f;
    }

    private static void destroy(MemorySegment raw) {
        int status = cdas_h.cdas_model_destroy(raw);
        if (status != cdas_h.CDAS_STATUS_OK()) {
            LOG.log(System.Logger.Level.WARNING, "cdas_model_destroy failed: {0}", Native.lastError());
        }
    }

    public ModelConfig config() {
        return config;
    }

    /** The dtype weights and activations are computed in. */
    public DType dtype() {
        return dtype;
    }

    public Options options() {
        return options;
    }

    /** Whether the native model reads the checkpoint's mapped memory in place (no copy). */
    public boolean borrowsWeights() {
        return borrowsWeights;
    }

    public String deviceName() {
        return options.device() == Device.CPU ? "cpu" : "cuda:" + options.deviceIndex();
    }

    private MemorySegment handle() {
        if (closed.get()) {
            throw new IllegalStateException("Model is closed");
        }
        return handle;
    }

    // ---- forward ----------------------------------------------------------------------------------

    /** A forward pass; {@code hiddenLayer} matters only with {@link Output#HIDDEN}. */
    public Outputs forward(Batch batch, Intervention intervention, int hiddenLayer, Set<Output> outputs) {
        if (outputs == null || outputs.isEmpty()) {
            throw new InvalidArgumentException("ask for at least one output (HIDDEN, FINAL_HIDDEN, LOGITS)");
        }
        checkLength(batch, "the sequence");
        long cells = (long) batch.batch() * batch.seqLen();
        long d = config.hiddenSize();
        long v = config.vocabSize();
        try (Arena call = Arena.ofConfined()) {
            MemorySegment in = tokenBatch(batch, call);
            MemorySegment iv = intervention == null ? MemorySegment.NULL : intervention(intervention, batch.batch(), call);
            MemorySegment hidden = outputs.contains(Output.HIDDEN) ? floats(call, cells * d) : MemorySegment.NULL;
            MemorySegment fin = outputs.contains(Output.FINAL_HIDDEN) ? floats(call, cells * d) : MemorySegment.NULL;
            MemorySegment logits = outputs.contains(Output.LOGITS) ? floats(call, cells * v) : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_forward(handle(), in, iv, hiddenLayer, hidden, fin, logits));
            return new Outputs(toArray(hidden), toArray(fin), toArray(logits));
        }
    }

    /**
     * Refuses a batch longer than a learned-position model's context (GPT-2's n_positions: there are
     * no embeddings past it) before anything proportional to it is allocated. Rotary models take
     * longer sequences, as in transformers (docs/limits.md).
     */
    private void checkLength(Batch batch, String what) {
        if (batch != null && config.rope().isEmpty() && batch.seqLen() > config.maxPositions()) {
            throw new InvalidArgumentException(what + " is " + batch.seqLen() + " tokens long, more than the model's context of "
                    + config.maxPositions() + " learned positions (n_positions in config.json)");
        }
    }

    /** Logits [B x T x V] of a batch, without intervention. */
    public float[] logits(Batch batch) {
        return forward(batch, null, 0, EnumSet.of(Output.LOGITS)).logits();
    }

    // ---- generation -------------------------------------------------------------------------------

    /**
     * Continues each row of a left-padded prompt (KV cache; the clamp, if any, on the prompt and
     * every new token). Returns each row's new tokens, the eos included.
     */
    public int[][] generate(Batch prompt, Intervention intervention, GenerationOptions o) {
        if (o == null) {
            throw new InvalidArgumentException("generation options must not be null");
        }
        checkLength(prompt, "the prompt");
        try (Arena call = Arena.ofConfined()) {
            MemorySegment in = tokenBatch(prompt, call);
            MemorySegment iv = intervention == null ? MemorySegment.NULL : intervention(intervention, prompt.batch(), call);
            MemorySegment opts = cdas_generation_options.allocate(call);
            Native.check(cdas_h.cdas_generation_options_default(opts));
            cdas_generation_options.max_new_tokens(opts, o.maxNewTokens());
            cdas_generation_options.temperature(opts, o.temperature());
            cdas_generation_options.top_p(opts, o.topP());
            cdas_generation_options.top_k(opts, o.topK());
            cdas_generation_options.seed(opts, o.seed());
            int[] eos = o.eosIds() == null ? new int[0] : o.eosIds();
            cdas_generation_options.eos_ids(opts, eos.length == 0 ? MemorySegment.NULL : call.allocateFrom(ValueLayout.JAVA_INT, eos));
            cdas_generation_options.eos_count(opts, eos.length);
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
     */
    public ObjectiveResult cdasObjective(int layer, int rank, float[] directions, ObjectiveBatch batch, float gradScale,
                                         boolean withGradient) {
        return cdasObjective(layer, rank, directions, batch, ObjectiveLoss.JSD, gradScale, withGradient);
    }

    /**
     * {@link #cdasObjective(int, int, float[], ObjectiveBatch, float, boolean)} with another loss:
     * under {@link ObjectiveLoss#CROSS_ENTROPY} compared row k of example b is labelled with base
     * token {@code baseStart[b] + k + 1}, and the source states come from a pass over the source.
     */
    public ObjectiveResult cdasObjective(int layer, int rank, float[] directions, ObjectiveBatch batch, ObjectiveLoss lossKind,
                                         float gradScale, boolean withGradient) {
        Objects.requireNonNull(lossKind, "lossKind");
        if (rank <= 0 || directions == null || directions.length != (long) rank * config.hiddenSize()) {
            throw new InvalidArgumentException("directions must hold rank x d = " + (long) rank * config.hiddenSize()
                    + " floats, got " + (directions == null ? "null" : directions.length));
        }
        checkLength(batch.base(), "the base sequence");
        if (batch.source() != null) {
            checkLength(batch.source(), "the source sequence");
        }
        if (batch.target() != null) {
            checkLength(batch.target(), "the target sequence");
        }
        int b = batch.base().batch();
        for (var e : List.of(Map.entry("prefixLen", nonNull(batch.prefixLen(), "prefixLen")),
                Map.entry("sourcePositions", nonNull(batch.sourcePositions(), "sourcePositions")),
                Map.entry("baseStart", nonNull(batch.baseStart(), "baseStart")),
                Map.entry("targetStart", nonNull(batch.targetStart(), "targetStart")),
                Map.entry("compareCount", nonNull(batch.compareCount(), "compareCount")))) {
            if (e.getValue().length != b) {
                throw new InvalidArgumentException(e.getKey() + " must hold one entry per example (" + b + "), got "
                        + e.getValue().length);
            }
        }
        try (Arena call = Arena.ofConfined()) {
            MemorySegment ob = cdas_objective_batch.allocate(call);
            cdas_objective_batch.base(ob, tokenBatch(batch.base(), call));
            cdas_objective_batch.source(ob, tokenBatch(batch.source(), call));
            cdas_objective_batch.target(ob, tokenBatch(batch.target(), call));
            cdas_objective_batch.prefix_len(ob, call.allocateFrom(ValueLayout.JAVA_INT, batch.prefixLen()));
            cdas_objective_batch.source_positions(ob, call.allocateFrom(ValueLayout.JAVA_INT, batch.sourcePositions()));
            cdas_objective_batch.base_start(ob, call.allocateFrom(ValueLayout.JAVA_INT, batch.baseStart()));
            cdas_objective_batch.target_start(ob, call.allocateFrom(ValueLayout.JAVA_INT, batch.targetStart()));
            cdas_objective_batch.compare_count(ob, call.allocateFrom(ValueLayout.JAVA_INT, batch.compareCount()));
            long d = config.hiddenSize();
            cdas_objective_batch.base_hidden(ob, state(call, batch.baseHidden(), (long) b * batch.base().seqLen() * d, "baseHidden"));
            cdas_objective_batch.source_hidden(ob, state(call, batch.sourceHidden(), (long) b * d, "sourceHidden"));
            cdas_objective_batch.teacher_hidden(ob, state(call, batch.teacherHidden(), batch.comparedRows() * d, "teacherHidden"));
            cdas_objective_batch.loss(ob, switch (lossKind) {
                case JSD -> cdas_h.CDAS_LOSS_JSD();
                case JSD_COMPOSED -> cdas_h.CDAS_LOSS_JSD_COMPOSED();
                case CROSS_ENTROPY -> cdas_h.CDAS_LOSS_CROSS_ENTROPY();
            });
            MemorySegment loss = call.allocate(ValueLayout.JAVA_FLOAT);
            MemorySegment grad = withGradient ? floats(call, directions.length) : MemorySegment.NULL;
            Native.check(cdas_h.cdas_model_cdas_objective(handle(), layer, rank,
                    call.allocateFrom(ValueLayout.JAVA_FLOAT, directions), ob, gradScale, loss, grad));
            return new ObjectiveResult(loss.get(ValueLayout.JAVA_FLOAT, 0), toArray(grad));
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

    // ---- marshalling ------------------------------------------------------------------------------

    private static int[] nonNull(int[] a, String name) {
        if (a == null) {
            throw new InvalidArgumentException(name + " must not be null");
        }
        return a;
    }

    private static MemorySegment state(Arena arena, float[] data, long expected, String name) {
        if (data == null) {
            return MemorySegment.NULL;
        }
        if (data.length != expected) {
            throw new InvalidArgumentException(name + " must hold " + expected + " floats, got " + data.length);
        }
        return arena.allocateFrom(ValueLayout.JAVA_FLOAT, data);
    }

    private static MemorySegment floats(Arena arena, long n) {
        return arena.allocate(ValueLayout.JAVA_FLOAT, n);
    }

    private static float[] toArray(MemorySegment s) {
        return s.equals(MemorySegment.NULL) ? null : s.toArray(ValueLayout.JAVA_FLOAT);
    }

    private static MemorySegment tokenBatch(Batch b, Arena arena) {
        MemorySegment s = cdas_token_batch.allocate(arena);
        cdas_token_batch.batch(s, b.batch());
        cdas_token_batch.seq_len(s, b.seqLen());
        cdas_token_batch.tokens(s, arena.allocateFrom(ValueLayout.JAVA_INT, b.tokens()));
        cdas_token_batch.attention_mask(s, b.mask() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_BYTE, b.mask()));
        return s;
    }

    private MemorySegment intervention(Intervention iv, int batch, Arena arena) {
        long d = config.hiddenSize();
        if (iv.directions().length != iv.rank() * d) {
            throw new InvalidArgumentException("intervention directions must hold rank x d = " + iv.rank() * d
                    + " floats, got " + iv.directions().length);
        }
        if (iv.values() != null && iv.values().length != (long) batch * iv.rank()) {
            throw new InvalidArgumentException("intervention values must hold batch x rank = " + (long) batch * iv.rank()
                    + " floats, got " + iv.values().length);
        }
        if (iv.sourcePositions() != null && iv.sourcePositions().length != batch) {
            throw new InvalidArgumentException("intervention sourcePositions must hold one entry per row (" + batch
                    + "), got " + iv.sourcePositions().length);
        }
        if (iv.prefixLen() != null && iv.prefixLen().length != batch) {
            throw new InvalidArgumentException("intervention prefixLen must hold one entry per row (" + batch + "), got "
                    + iv.prefixLen().length);
        }
        MemorySegment s = cdas_intervention.allocate(arena);
        cdas_intervention.layer(s, iv.layer());
        cdas_intervention.rank(s, iv.rank());
        cdas_intervention.directions(s, arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.directions()));
        cdas_intervention.values(s, iv.values() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.values()));
        cdas_intervention.source_positions(s, iv.sourcePositions() == null ? MemorySegment.NULL
                : arena.allocateFrom(ValueLayout.JAVA_INT, iv.sourcePositions()));
        cdas_intervention.prefix_len(s, iv.prefixLen() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_INT, iv.prefixLen()));
        cdas_intervention.mode(s, iv.mode() == InterventionMode.ADD ? cdas_h.CDAS_INTERVENTION_ADD() : cdas_h.CDAS_INTERVENTION_CLAMP());
        return s;
    }
}
