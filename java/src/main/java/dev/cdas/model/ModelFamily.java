package dev.cdas.model;

import dev.cdas.bindings.cdas_h;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/**
 * The decoder families the runtime knows, by config.json's {@code model_type}. Their checkpoint
 * layouts and block variants live in one native table ({@code native/src/model/family.cpp});
 * {@link ModelConfig#expectedWeights()} reads it through {@code cdas_model_expected_weights}.
 */
public enum ModelFamily {
    /** Llama: RMSNorm, rotary positions, gated MLP, separate projections. */
    LLAMA("llama", "LlamaForCausalLM", cdas_h.CDAS_MODEL_FAMILY_LLAMA()),
    /** Gemma 2: sandwich norms, logit soft-capping, alternating sliding-window layers. */
    GEMMA2("gemma2", "Gemma2ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_GEMMA2()),
    /** Qwen2: Llama's layout with biases on the query, key and value projections. */
    QWEN2("qwen2", "Qwen2ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_QWEN2()),
    /** Phi-3: fused QKV and gate-up projections. */
    PHI3("phi3", "Phi3ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_PHI3()),
    /** GPT-2: learned positions, LayerNorm, Conv1D-stored projections. */
    GPT2("gpt2", "GPT2LMHeadModel", cdas_h.CDAS_MODEL_FAMILY_GPT2());

    private final String modelType;
    private final String architecture;
    private final int code;

    ModelFamily(String modelType, String architecture, int code) {
        this.modelType = modelType;
        this.architecture = architecture;
        this.code = code;
    }

    /** The cdas_model_family value. */
    int code() {
        return code;
    }

    /**
     * config.json's model_type.
     *
     * @return for example "llama"
     */
    public String modelType() {
        return modelType;
    }

    /**
     * The transformers class name in config.json's architectures.
     *
     * @return for example "LlamaForCausalLM"
     */
    public String architecture() {
        return architecture;
    }

    /**
     * The family of a config.json's {@code model_type}.
     *
     * @param modelType the value of model_type
     * @return the family, or empty when the runtime does not know it
     */
    public static Optional<ModelFamily> fromModelType(String modelType) {
        return Arrays.stream(values()).filter(f -> f.modelType.equals(modelType)).findFirst();
    }

    /**
     * The family of a transformers class name from config.json's {@code architectures}.
     *
     * @param architecture the class name, for example "Qwen2ForCausalLM"
     * @return the family, or empty when the runtime does not know it
     */
    public static Optional<ModelFamily> fromArchitecture(String architecture) {
        return Arrays.stream(values()).filter(f -> f.architecture.equals(architecture)).findFirst();
    }

    /**
     * The model_type values the runtime reads, for messages.
     *
     * @return every family's model_type, in declaration order
     */
    public static List<String> supportedModelTypes() {
        return Arrays.stream(values()).map(ModelFamily::modelType).toList();
    }
}
