package dev.cdas.model;

import dev.cdas.Cdas;
import dev.cdas.DType;
import dev.cdas.Device;
import dev.cdas.Native;
import dev.cdas.UnsupportedFeatureException;
import dev.cdas.bindings.cdas_h;
import dev.cdas.bindings.cdas_model_config;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/** Fills a cdas_model_config from a {@link ModelConfig}: the one place Java meets the C config struct. */
final class NativeModelConfig {
    private NativeModelConfig() {
    }

    static MemorySegment build(ModelConfig c, DType dtype, RuntimeOptions options, Arena arena) {
        MemorySegment s = build(c, dtype, options.device(), options.deviceIndex(), options.threads(), arena);
        List<SplitDevice> split = splitDevices(options);
        if (!split.isEmpty()) {
            int[] types = new int[split.size()];
            int[] indices = new int[split.size()];
            for (int k = 0; k < types.length; k++) {
                types[k] = split.get(k).device().code();
                indices[k] = split.get(k).index();
            }
            cdas_model_config.split_count(s, types.length);
            cdas_model_config.split_device_types(s, arena.allocateFrom(ValueLayout.JAVA_INT, types));
            cdas_model_config.split_device_indices(s, arena.allocateFrom(ValueLayout.JAVA_INT, indices));
            cdas_model_config.split_auto(s, options.autoSplit() ? 1 : 0);
        }
        return s;
    }

    /**
     * The devices the native config lists: the split's, or for autoSplit every CUDA device (none
     * without one: the model then runs unsplit on the CPU).
     */
    static List<SplitDevice> splitDevices(RuntimeOptions options) {
        if (!options.autoSplit()) {
            return options.split();
        }
        int gpus = Cdas.cudaDeviceCount();
        List<SplitDevice> all = new ArrayList<>();
        for (int k = 0; k < gpus; k++) {
            all.add(new SplitDevice(Device.CUDA, k));
        }
        return all;
    }

    static MemorySegment build(ModelConfig c, DType dtype, Device device, int deviceIndex, int threads, Arena arena) {
        MemorySegment s = cdas_model_config.allocate(arena);
        Native.check(cdas_h.cdas_model_config_default(s));
        cdas_model_config.family(s, c.family().code());
        cdas_model_config.num_layers(s, c.numLayers());
        cdas_model_config.hidden_size(s, c.hiddenSize());
        cdas_model_config.num_heads(s, c.numHeads());
        cdas_model_config.num_kv_heads(s, c.numKvHeads());
        cdas_model_config.head_dim(s, c.headDim());
        cdas_model_config.intermediate_size(s, c.intermediateSize());
        cdas_model_config.vocab_size(s, c.vocabSize());
        cdas_model_config.max_positions(s, c.maxPositions());
        cdas_model_config.activation(s, activation(c));
        cdas_model_config.norm_eps(s, c.normEps());
        cdas_model_config.attention_bias(s, c.attentionBias() ? 1 : 0);
        cdas_model_config.attention_output_bias(s, c.attentionOutputBias() ? 1 : 0);
        cdas_model_config.mlp_bias(s, c.mlpBias() ? 1 : 0);
        cdas_model_config.tie_word_embeddings(s, c.tieWordEmbeddings() ? 1 : 0);
        c.rope().ifPresent(r -> rope(c, r, s, arena));
        cdas_model_config.query_pre_attn_scalar(s, c.queryPreAttnScalar());
        cdas_model_config.attn_logit_softcap(s, c.attnLogitSoftcap().orElse(0));
        cdas_model_config.final_logit_softcap(s, c.finalLogitSoftcap().orElse(0));
        cdas_model_config.embedding_multiplier(s, c.embeddingMultiplier());
        if (c.slidingWindow().isPresent()) {
            cdas_model_config.sliding_window(s, c.slidingWindow().getAsInt());
            byte[] sliding = new byte[c.numLayers()];
            for (int i = 0; i < sliding.length; i++) {
                sliding[i] = (byte) (c.layerTypes().get(i) == AttentionKind.SLIDING ? 1 : 0);
            }
            cdas_model_config.layer_sliding(s, arena.allocateFrom(ValueLayout.JAVA_BYTE, sliding));
        }
        cdas_model_config.dtype(s, dtype.code());
        cdas_model_config.device_type(s, device.code());
        cdas_model_config.device_index(s, deviceIndex);
        cdas_model_config.num_threads(s, threads);
        return s;
    }

    private static int activation(ModelConfig c) {
        return switch (c.hiddenActivation()) {
            case "silu", "swish" -> cdas_h.CDAS_ACTIVATION_SILU();
            case "gelu_pytorch_tanh" -> cdas_h.CDAS_ACTIVATION_GELU_TANH();
            case "gelu_new", "gelu_fast", "gelu_python_tanh" -> cdas_h.CDAS_ACTIVATION_GELU_NEW();
            case "gelu" -> cdas_h.CDAS_ACTIVATION_GELU();
            case "relu" -> cdas_h.CDAS_ACTIVATION_RELU();
            default -> throw new UnsupportedFeatureException(c.source() + ": activation \"" + c.hiddenActivation()
                    + "\" is not supported (silu, gelu_pytorch_tanh, gelu_new, gelu, relu)");
        };
    }

    private static void rope(ModelConfig c, RopeConfig r, MemorySegment s, Arena arena) {
        cdas_model_config.rope_type(s, switch (r.type()) {
            case "default" -> cdas_h.CDAS_ROPE_DEFAULT();
            case "linear" -> cdas_h.CDAS_ROPE_LINEAR();
            case "llama3" -> cdas_h.CDAS_ROPE_LLAMA3();
            case "longrope" -> cdas_h.CDAS_ROPE_LONGROPE();
            case "yarn" -> cdas_h.CDAS_ROPE_YARN();
            default -> throw new UnsupportedFeatureException(c.source() + ": rope_type \"" + r.type()
                    + "\" is not supported by the runtime (default, linear, llama3, longrope, yarn)");
        });
        cdas_model_config.rope_theta(s, r.theta());
        cdas_model_config.rope_partial_factor(s, r.partialRotaryFactor());
        cdas_model_config.rope_original_max_positions(s, r.originalMaxPositions());
        // Phi-3 configs leave longrope's factor out and transformers derives it from the context
        // lengths; RopeConfig reports 1.0 then, which the runtime reads as "derive" (0).
        boolean derive = r.type().equals("longrope") && r.factor() == 1.0;
        cdas_model_config.rope_factor(s, r.type().equals("default") || derive ? 0 : r.factor());
        if (r.type().equals("llama3")) {
            cdas_model_config.rope_low_freq_factor(s, r.lowFreqFactor());
            cdas_model_config.rope_high_freq_factor(s, r.highFreqFactor());
        }
        if (r.shortFactor() != null && r.longFactor() != null) {
            cdas_model_config.rope_short_factor(s, floats(r.shortFactor(), arena));
            cdas_model_config.rope_long_factor(s, floats(r.longFactor(), arena));
            cdas_model_config.rope_factor_count(s, r.shortFactor().length);
        }
    }

    private static MemorySegment floats(double[] values, Arena arena) {
        MemorySegment m = arena.allocate(ValueLayout.JAVA_FLOAT, values.length);
        for (int i = 0; i < values.length; i++) {
            m.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) values[i]);
        }
        return m;
    }
}
