package dev.cdas.model;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * A Hugging Face config.json, normalised across the supported families (llama, gemma2, qwen2, phi3,
 * gpt2) into what a decoder runtime needs. Fields a family's config may omit take that family's
 * transformers defaults; fields without a sensible default (sizes) are required. Every error names
 * config.json and the field.
 *
 * <p>Family notes the runtime must honour: Gemma-2 scales embeddings by {@code sqrt(hidden)}
 * ({@link #embeddingMultiplier()}), its RMSNorm multiplies by {@code 1 + weight}
 * ({@link #normWeightOffset()}), its attention is scaled by {@code query_pre_attn_scalar^-1/2}
 * ({@link #attentionScale()}) and soft-capped, and every even layer uses a sliding window; Phi-3
 * fuses q/k/v and gate/up; GPT-2 stores its linear layers as {@code [in, out]} (Conv1D).
 */
public final class ModelConfig {
    /** The file name of a model's configuration. */
    public static final String FILE_NAME = "config.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path source;
    private final ModelFamily family;
    private final int hiddenSize;
    private final int numLayers;
    private final int numHeads;
    private final int numKvHeads;
    private final int headDim;
    private final int intermediateSize;
    private final int vocabSize;
    private final int maxPositions;
    private final NormKind normKind;
    private final double normEps;
    private final String hiddenActivation;
    private final RopeConfig rope;
    private final boolean tieWordEmbeddings;
    private final boolean attentionBias;
    private final boolean attentionOutputBias;
    private final boolean mlpBias;
    private final OptionalDouble attnLogitSoftcap;
    private final OptionalDouble finalLogitSoftcap;
    private final OptionalInt slidingWindow;
    private final List<AttentionKind> layerTypes;
    private final double queryPreAttnScalar;
    private final OptionalInt bosTokenId;
    private final List<Integer> eosTokenIds;
    private final OptionalInt padTokenId;

    private ModelConfig(Builder b) {
        source = b.source;
        family = b.family;
        hiddenSize = b.hiddenSize;
        numLayers = b.numLayers;
        numHeads = b.numHeads;
        numKvHeads = b.numKvHeads;
        headDim = b.headDim;
        intermediateSize = b.intermediateSize;
        vocabSize = b.vocabSize;
        maxPositions = b.maxPositions;
        normKind = b.normKind;
        normEps = b.normEps;
        hiddenActivation = b.hiddenActivation;
        rope = b.rope;
        tieWordEmbeddings = b.tieWordEmbeddings;
        attentionBias = b.attentionBias;
        attentionOutputBias = b.attentionOutputBias;
        mlpBias = b.mlpBias;
        attnLogitSoftcap = b.attnLogitSoftcap;
        finalLogitSoftcap = b.finalLogitSoftcap;
        slidingWindow = b.slidingWindow;
        layerTypes = List.copyOf(b.layerTypes);
        queryPreAttnScalar = b.queryPreAttnScalar;
        bosTokenId = b.bosTokenId;
        eosTokenIds = List.copyOf(b.eosTokenIds);
        padTokenId = b.padTokenId;
    }

    /**
     * The most blocks a config may declare (the largest published models have about 130): a bound
     * that keeps a hostile num_hidden_layers from allocating per-layer tables before the checkpoint
     * is consulted ({@link CheckpointValidator} then checks the count against the tensors).
     */
    public static final int MAX_LAYERS = 65_536;

    private static int checkLayers(ConfigFields f, String key, int n) throws ConfigException {
        if (n > MAX_LAYERS) {
            throw new ConfigException(f.file(), key, "is " + n + ", more than the limit of " + MAX_LAYERS + " blocks");
        }
        return n;
    }

    /**
     * Reads {@code config.json} from a model folder, or the given file.
     *
     * @param folderOrFile a model folder or a config.json file
     * @return the configuration
     * @throws ConfigException when the file is missing, unreadable, malformed, of an unsupported model
     *         type, or lacks or contradicts a required field
     */
    public static ModelConfig load(Path folderOrFile) throws ConfigException {
        Path file = Files.isDirectory(folderOrFile) ? folderOrFile.resolve(FILE_NAME) : folderOrFile;
        String text;
        try {
            text = dev.cdas.io.InputFiles.readString(file);
        } catch (NoSuchFileException e) {
            throw new ConfigException(file, null, "not found" + (Files.isDirectory(folderOrFile)
                    ? " (a model folder needs the config.json that transformers' save_pretrained writes)" : ""), e);
        } catch (IOException e) {
            throw new ConfigException(file, null, "cannot be read: " + e.getMessage(), e);
        }
        return parse(text, file);
    }

    /**
     * Parses config.json text; {@code file} is only used in messages.
     *
     * @param json the text of a config.json
     * @param file the file it came from
     * @return the configuration
     * @throws ConfigException when the text is malformed, of an unsupported model type, or lacks or
     *         contradicts a required field
     */
    public static ModelConfig parse(String json, Path file) throws ConfigException {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new ConfigException(file, null, "malformed JSON: " + dev.cdas.io.InputFiles.jsonError(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new ConfigException(file, null, "is not a JSON object");
        }
        ConfigFields f = new ConfigFields(file, root, "");
        ModelFamily family = family(f);
        Builder b = new Builder();
        b.source = file;
        b.family = family;
        if (family == ModelFamily.GPT2) {
            parseGpt2(f, b);
        } else {
            parseDecoder(f, family, b);
        }
        b.bosTokenId = f.optInt("bos_token_id");
        b.padTokenId = f.optInt("pad_token_id");
        b.eosTokenIds = eosIds(f);
        validate(f, b);
        return new ModelConfig(b);
    }

    private static ModelFamily family(ConfigFields f) throws ConfigException {
        String modelType = f.optString("model_type", null);
        if (modelType != null) {
            return ModelFamily.fromModelType(modelType).orElseThrow(() -> new ConfigException(f.file(), "model_type",
                    "\"" + modelType + "\" is not supported (supported: " + String.join(", ", ModelFamily.supportedModelTypes()) + ")"));
        }
        JsonNode arch = f.get("architectures");
        if (arch != null && arch.isArray() && !arch.isEmpty()) {
            String a = arch.get(0).asText();
            return ModelFamily.fromArchitecture(a).orElseThrow(() -> new ConfigException(f.file(), "architectures",
                    "\"" + a + "\" is not supported (supported model_type: " + String.join(", ", ModelFamily.supportedModelTypes()) + ")"));
        }
        throw new ConfigException(f.file(), "model_type", "required field is missing (and no architectures to infer it from)");
    }

    private static void parseDecoder(ConfigFields f, ModelFamily family, Builder b) throws ConfigException {
        b.hiddenSize = f.requiredPositive("hidden_size");
        b.numLayers = checkLayers(f, "num_hidden_layers", f.requiredPositive("num_hidden_layers"));
        b.numHeads = f.requiredPositive("num_attention_heads");
        b.vocabSize = f.requiredPositive("vocab_size");
        b.intermediateSize = f.requiredPositive("intermediate_size");
        if (family == ModelFamily.GEMMA2 || family == ModelFamily.QWEN2) {
            b.numKvHeads = f.requiredPositive("num_key_value_heads");
        } else {
            b.numKvHeads = f.optPositive("num_key_value_heads", b.numHeads);
        }
        if (family == ModelFamily.GEMMA2) {
            b.headDim = f.optPositive("head_dim", 256);
        } else {
            b.headDim = f.has("head_dim") ? f.optPositive("head_dim", 0) : divide(f, "hidden_size", b.hiddenSize, b.numHeads);
        }
        b.normKind = NormKind.RMS;
        b.normEps = f.optDouble("rms_norm_eps", family == ModelFamily.PHI3 ? 1e-5 : 1e-6);
        b.maxPositions = f.optPositive("max_position_embeddings", switch (family) {
            case GEMMA2 -> 8192;
            case QWEN2 -> 32768;
            case PHI3 -> 4096;
            default -> 2048;
        });
        b.tieWordEmbeddings = f.optBool("tie_word_embeddings", family == ModelFamily.GEMMA2);
        b.queryPreAttnScalar = b.headDim;
        switch (family) {
            case LLAMA -> {
                b.hiddenActivation = f.optString("hidden_act", "silu");
                b.attentionBias = f.optBool("attention_bias", false);
                b.attentionOutputBias = b.attentionBias;
                b.mlpBias = f.optBool("mlp_bias", false);
            }
            case QWEN2 -> {
                b.hiddenActivation = f.optString("hidden_act", "silu");
                b.attentionBias = true; // q/k/v always carry a bias in Qwen2, o_proj never
            }
            case PHI3 -> b.hiddenActivation = f.optString("hidden_act", "silu");
            case GEMMA2 -> {
                // transformers reads hidden_activation; old configs only had hidden_act
                b.hiddenActivation = f.optString("hidden_activation", f.optString("hidden_act", "gelu_pytorch_tanh"));
                b.queryPreAttnScalar = f.optDouble("query_pre_attn_scalar", 256);
                if (!(b.queryPreAttnScalar > 0)) { // the attention scale is its inverse square root
                    throw new ConfigException(f.file(), "query_pre_attn_scalar", "must be positive, got " + b.queryPreAttnScalar);
                }
                b.attnLogitSoftcap = softcap(f, "attn_logit_softcapping", 50.0);
                b.finalLogitSoftcap = softcap(f, "final_logit_softcapping", 30.0);
                b.attentionBias = f.optBool("attention_bias", false);
                b.attentionOutputBias = b.attentionBias;
            }
            default -> throw new IllegalStateException(family.toString());
        }
        b.rope = rope(f, family, b.headDim);
        layerTypes(f, family, b);
    }

    private static void parseGpt2(ConfigFields f, Builder b) throws ConfigException {
        b.hiddenSize = f.requiredPositive("n_embd", "hidden_size");
        b.numLayers = checkLayers(f, "n_layer", f.requiredPositive("n_layer", "num_hidden_layers"));
        b.numHeads = f.requiredPositive("n_head", "num_attention_heads");
        b.vocabSize = f.requiredPositive("vocab_size");
        b.maxPositions = f.requiredPositive("n_positions", "max_position_embeddings");
        b.numKvHeads = b.numHeads;
        b.headDim = divide(f, "n_embd", b.hiddenSize, b.numHeads);
        b.intermediateSize = f.optPositive("n_inner", 4 * b.hiddenSize);
        b.normKind = NormKind.LAYER;
        b.normEps = f.optDouble("layer_norm_epsilon", 1e-5);
        b.hiddenActivation = f.optString("activation_function", "gelu_new");
        b.tieWordEmbeddings = f.optBool("tie_word_embeddings", true);
        b.attentionBias = true;
        b.attentionOutputBias = true;
        b.mlpBias = true;
        b.queryPreAttnScalar = b.headDim;
        if (!f.optBool("scale_attn_weights", true)) {
            throw new ConfigException(f.file(), "scale_attn_weights", "false is not supported");
        }
        if (f.optBool("scale_attn_by_inverse_layer_idx", false)) {
            throw new ConfigException(f.file(), "scale_attn_by_inverse_layer_idx", "true is not supported");
        }
        b.layerTypes = Collections.nCopies(b.numLayers, AttentionKind.FULL);
    }

    private static OptionalDouble softcap(ConfigFields f, String key, double dflt) throws ConfigException {
        if (f.rawIsNull(key)) {
            return OptionalDouble.empty(); // explicit null disables the cap
        }
        double v = f.optDouble(key, dflt);
        if (!(v > 0)) {
            throw new ConfigException(f.file(), f.path(key), "must be positive (or null to disable), got " + v);
        }
        return OptionalDouble.of(v);
    }

    private static RopeConfig rope(ConfigFields f, ModelFamily family, int headDim) throws ConfigException {
        double defaultTheta = 10000.0; // every supported family's transformers default
        ConfigFields params = f.object("rope_parameters");
        ConfigFields scaling = params != null ? params : f.object("rope_scaling");
        double theta = f.optDouble("rope_theta", defaultTheta);
        double partial = f.optDouble("partial_rotary_factor", 1.0);
        int originalMax = f.optInt("original_max_position_embeddings").orElse(0);
        if (scaling == null) {
            return checkPartial(f, "partial_rotary_factor", new RopeConfig("default", theta, 1.0, Double.NaN, Double.NaN,
                    originalMax, partial, null, null), headDim);
        }
        theta = scaling.optDouble("rope_theta", theta);
        partial = scaling.optDouble("partial_rotary_factor", partial);
        String typeKey = scaling.has("rope_type") ? "rope_type" : "type";
        String type = scaling.optString(typeKey, "default");
        if (type.equals("su")) {
            type = "longrope"; // Phi-3's early name
        }
        if (!RopeConfig.SUPPORTED_TYPES.contains(type)) {
            throw new ConfigException(f.file(), scaling.path(typeKey),
                    "\"" + type + "\" is not supported (supported: " + String.join(", ", RopeConfig.SUPPORTED_TYPES) + ")");
        }
        double factor = 1.0;
        double low = Double.NaN;
        double high = Double.NaN;
        double[] shortF = null;
        double[] longF = null;
        switch (type) {
            case "linear", "dynamic", "yarn" -> {
                factor = scaling.requiredDouble("factor");
                originalMax = scaling.optInt("original_max_position_embeddings").orElse(originalMax);
            }
            case "llama3" -> {
                factor = scaling.requiredDouble("factor");
                low = scaling.requiredDouble("low_freq_factor");
                high = scaling.requiredDouble("high_freq_factor");
                originalMax = scaling.requiredInt("original_max_position_embeddings");
                if (!(high > low)) {
                    throw new ConfigException(f.file(), scaling.path("high_freq_factor"),
                            "must exceed low_freq_factor (" + low + "), got " + high);
                }
            }
            case "longrope" -> {
                factor = scaling.optDouble("factor", 1.0);
                shortF = scaling.optDoubleArray("short_factor");
                longF = scaling.optDoubleArray("long_factor");
                originalMax = scaling.optInt("original_max_position_embeddings").orElse(originalMax);
                int half = (int) Math.round(headDim * partial) / 2;
                for (var e : new Object[][] {{"short_factor", shortF}, {"long_factor", longF}}) {
                    double[] arr = (double[]) e[1];
                    if (arr == null) {
                        throw new ConfigException(f.file(), scaling.path((String) e[0]), "required field is missing");
                    }
                    if (arr.length != half) {
                        throw new ConfigException(f.file(), scaling.path((String) e[0]),
                                "has " + arr.length + " entries, head_dim implies " + half);
                    }
                }
            }
            default -> { }
        }
        if (!(factor > 0)) {
            throw new ConfigException(f.file(), scaling.path("factor"), "must be positive, got " + factor);
        }
        if (!(theta > 0)) {
            throw new ConfigException(f.file(), params != null ? scaling.path("rope_theta") : "rope_theta", "must be positive, got " + theta);
        }
        return checkPartial(f, "partial_rotary_factor", new RopeConfig(type, theta, factor, low, high, originalMax, partial, shortF, longF), headDim);
    }

    private static RopeConfig checkPartial(ConfigFields f, String key, RopeConfig r, int headDim) throws ConfigException {
        double rotary = headDim * r.partialRotaryFactor();
        if (!(r.partialRotaryFactor() > 0 && r.partialRotaryFactor() <= 1) || rotary != Math.rint(rotary) || ((long) rotary) % 2 != 0) {
            throw new ConfigException(f.file(), key, "must be in (0, 1] and give an even number of rotated dimensions, got "
                    + r.partialRotaryFactor() + " of head_dim " + headDim);
        }
        return r;
    }

    private static void layerTypes(ConfigFields f, ModelFamily family, Builder b) throws ConfigException {
        OptionalInt window = f.optInt("sliding_window");
        JsonNode lt = f.get("layer_types");
        List<AttentionKind> types = new ArrayList<>();
        if (lt != null) {
            if (!lt.isArray() || lt.size() != b.numLayers) {
                throw new ConfigException(f.file(), "layer_types", "must be an array of " + b.numLayers + " entries (num_hidden_layers)");
            }
            for (int i = 0; i < lt.size(); i++) {
                String s = lt.get(i).asText();
                AttentionKind k = s.equals("full_attention") ? AttentionKind.FULL
                        : s.equals("sliding_attention") ? AttentionKind.SLIDING : null;
                if (k == null) {
                    throw new ConfigException(f.file(), "layer_types[" + i + "]",
                            "\"" + s + "\" is not supported (full_attention, sliding_attention)");
                }
                types.add(k);
            }
        } else {
            for (int i = 0; i < b.numLayers; i++) {
                types.add(switch (family) {
                    case GEMMA2 -> i % 2 == 0 ? AttentionKind.SLIDING : AttentionKind.FULL;
                    case QWEN2 -> f.optBool("use_sliding_window", false) && window.isPresent()
                            && i >= f.optInt("max_window_layers").orElse(28) ? AttentionKind.SLIDING : AttentionKind.FULL;
                    case PHI3 -> window.isPresent() ? AttentionKind.SLIDING : AttentionKind.FULL;
                    default -> AttentionKind.FULL;
                });
            }
        }
        if (family == ModelFamily.QWEN2 && !f.optBool("use_sliding_window", false)) {
            types.replaceAll(k -> AttentionKind.FULL);
        }
        if (types.contains(AttentionKind.SLIDING)) {
            if (window.isEmpty()) {
                if (family == ModelFamily.GEMMA2) {
                    window = OptionalInt.of(4096);
                } else {
                    throw new ConfigException(f.file(), "sliding_window", "is missing but layer_types has sliding_attention layers");
                }
            }
            if (window.getAsInt() <= 0) {
                throw new ConfigException(f.file(), "sliding_window", "must be positive, got " + window.getAsInt());
            }
            b.slidingWindow = window;
        }
        b.layerTypes = types;
    }

    private static List<Integer> eosIds(ConfigFields f) throws ConfigException {
        JsonNode v = f.get("eos_token_id");
        if (v == null) {
            return List.of();
        }
        if (v.isIntegralNumber()) {
            return List.of(v.intValue());
        }
        if (v.isArray()) {
            List<Integer> ids = new ArrayList<>();
            for (int i = 0; i < v.size(); i++) {
                if (!v.get(i).isIntegralNumber()) {
                    throw new ConfigException(f.file(), "eos_token_id[" + i + "]", "must be an integer, got " + v.get(i));
                }
                ids.add(v.get(i).intValue());
            }
            return ids;
        }
        throw new ConfigException(f.file(), "eos_token_id", "must be an integer or a list of integers, got " + v);
    }

    private static int divide(ConfigFields f, String key, int hidden, int heads) throws ConfigException {
        if (hidden % heads != 0) {
            throw new ConfigException(f.file(), key, hidden + " is not divisible by the number of attention heads (" + heads
                    + "); set head_dim explicitly");
        }
        return hidden / heads;
    }

    private static void validate(ConfigFields f, Builder b) throws ConfigException {
        if (b.numHeads % b.numKvHeads != 0) {
            throw new ConfigException(f.file(), "num_key_value_heads",
                    b.numKvHeads + " does not divide num_attention_heads (" + b.numHeads + ")");
        }
        if (!(b.normEps > 0)) {
            throw new ConfigException(f.file(), b.normKind == NormKind.RMS ? "rms_norm_eps" : "layer_norm_epsilon",
                    "must be positive, got " + b.normEps);
        }
        checkToken(f, "bos_token_id", b.bosTokenId, b.vocabSize);
        checkToken(f, "pad_token_id", b.padTokenId, b.vocabSize);
        for (int id : b.eosTokenIds) {
            checkToken(f, "eos_token_id", OptionalInt.of(id), b.vocabSize);
        }
    }

    private static void checkToken(ConfigFields f, String key, OptionalInt id, int vocab) throws ConfigException {
        if (id.isPresent() && (id.getAsInt() < 0 || id.getAsInt() >= vocab)) {
            throw new ConfigException(f.file(), key, id.getAsInt() + " is outside the vocabulary [0, " + vocab + ")");
        }
    }

    // ---- the normalised view

    /**
     * The config.json this came from (for messages).
     *
     * @return the path, or null when the config was parsed from text without one
     */
    public Path source() { return source; }
    /** {@return the decoder family (model_type)} */
    public ModelFamily family() { return family; }
    /** {@return the hidden width d (hidden_size, n_embd for GPT-2)} */
    public int hiddenSize() { return hiddenSize; }
    /** {@return the number of blocks} */
    public int numLayers() { return numLayers; }
    /** {@return the number of query heads} */
    public int numHeads() { return numHeads; }
    /** {@return the number of key/value heads (fewer than the query heads under grouped-query attention)} */
    public int numKvHeads() { return numKvHeads; }
    /** {@return the width of one attention head} */
    public int headDim() { return headDim; }
    /** {@return the MLP's inner width} */
    public int intermediateSize() { return intermediateSize; }
    /** {@return the vocabulary size V (rows of the embedding and the head)} */
    public int vocabSize() { return vocabSize; }
    /** {@return the longest sequence the model takes, in tokens} */
    public int maxPositions() { return maxPositions; }
    /** {@return the kind of normalisation the blocks use} */
    public NormKind normKind() { return normKind; }
    /**
     * rms_norm_eps, or layer_norm_epsilon for GPT-2.
     *
     * @return the epsilon added to the variance
     */
    public double normEps() { return normEps; }
    /**
     * The MLP's activation as transformers names it: silu, gelu_pytorch_tanh, gelu_new, ...
     *
     * @return the activation's name
     */
    public String hiddenActivation() { return hiddenActivation; }
    /**
     * Rotary embeddings; empty for GPT-2 (learned positions).
     *
     * @return the rotary parameters, or empty
     */
    public Optional<RopeConfig> rope() { return Optional.ofNullable(rope); }
    /** {@return whether the head shares the token embedding's weights (tie_word_embeddings)} */
    public boolean tieWordEmbeddings() { return tieWordEmbeddings; }
    /**
     * q/k/v projections carry a bias.
     *
     * @return true when they do
     */
    public boolean attentionBias() { return attentionBias; }
    /**
     * The attention output projection carries a bias.
     *
     * @return true when it does
     */
    public boolean attentionOutputBias() { return attentionOutputBias; }
    /** {@return whether the MLP's projections carry biases} */
    public boolean mlpBias() { return mlpBias; }
    /**
     * Gemma-2: attention scores become {@code c·tanh(s/c)} before softmax.
     *
     * @return the cap c, or empty
     */
    public OptionalDouble attnLogitSoftcap() { return attnLogitSoftcap; }
    /**
     * Gemma-2: logits become {@code c·tanh(z/c)}; the JSD kernel's soft-cap.
     *
     * @return the cap c, or empty
     */
    public OptionalDouble finalLogitSoftcap() { return finalLogitSoftcap; }
    /**
     * Present when at least one layer attends within a window: on those layers the query at position
     * t sees keys t-w+1..t (w tokens including itself), as transformers' mask {@code kv > q - w}.
     *
     * @return the window w in tokens, or empty
     */
    public OptionalInt slidingWindow() { return slidingWindow; }
    /**
     * Attention span per layer (size {@link #numLayers()}).
     *
     * @return one kind per block, unmodifiable
     */
    public List<AttentionKind> layerTypes() { return layerTypes; }
    /** {@return the value the attention scores are scaled by the inverse square root of (head_dim unless query_pre_attn_scalar is given)} */
    public double queryPreAttnScalar() { return queryPreAttnScalar; }
    /**
     * Scale applied to q·k: {@code 1/sqrt(query_pre_attn_scalar)} for Gemma-2, else {@code 1/sqrt(head_dim)}.
     *
     * @return the scale
     */
    public double attentionScale() { return 1.0 / Math.sqrt(queryPreAttnScalar); }
    /**
     * Gemma multiplies the embedding output by sqrt(hidden_size); 1 elsewhere.
     *
     * @return the multiplier
     */
    public double embeddingMultiplier() { return family == ModelFamily.GEMMA2 ? Math.sqrt(hiddenSize) : 1.0; }
    /**
     * Gemma's RMSNorm computes {@code x̂·(1 + w)}: offset 1; 0 elsewhere.
     *
     * @return the offset, 1 or 0
     */
    public double normWeightOffset() { return family == ModelFamily.GEMMA2 ? 1.0 : 0.0; }
    /** {@return config.json's bos_token_id, if any} */
    public OptionalInt bosTokenId() { return bosTokenId; }
    /** {@return config.json's eos_token_id (one or a list), empty when absent} */
    public List<Integer> eosTokenIds() { return eosTokenIds; }
    /** {@return config.json's pad_token_id, if any} */
    public OptionalInt padTokenId() { return padTokenId; }

    /**
     * The weights a checkpoint for this config must hold, with shapes.
     *
     * @return the specs, in the native layout's order (the token embedding first)
     * @throws dev.cdas.CdasException when libcdas cannot be loaded or refuses the config
     */
    public List<WeightSpec> expectedWeights() {
        return WeightLayout.expected(this);
    }

    @Override
    public String toString() {
        return family.modelType() + "(d=" + hiddenSize + ", layers=" + numLayers + ", heads=" + numHeads + "/" + numKvHeads
                + "x" + headDim + ", ffn=" + intermediateSize + ", vocab=" + vocabSize + ", " + (rope == null ? "learned positions" : rope)
                + (slidingWindow.isPresent() ? ", window=" + slidingWindow.getAsInt() : "")
                + (finalLogitSoftcap.isPresent() ? ", final_softcap=" + finalLogitSoftcap.getAsDouble() : "")
                + (tieWordEmbeddings ? ", tied" : "") + ")";
    }

    private static final class Builder {
        Path source;
        ModelFamily family;
        int hiddenSize, numLayers, numHeads, numKvHeads, headDim, intermediateSize, vocabSize, maxPositions;
        NormKind normKind;
        double normEps;
        String hiddenActivation;
        RopeConfig rope;
        boolean tieWordEmbeddings, attentionBias, attentionOutputBias, mlpBias;
        OptionalDouble attnLogitSoftcap = OptionalDouble.empty();
        OptionalDouble finalLogitSoftcap = OptionalDouble.empty();
        OptionalInt slidingWindow = OptionalInt.empty();
        List<AttentionKind> layerTypes = List.of();
        double queryPreAttnScalar;
        OptionalInt bosTokenId = OptionalInt.empty();
        List<Integer> eosTokenIds = List.of();
        OptionalInt padTokenId = OptionalInt.empty();
    }
}
