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
    LLAMA("llama", "LlamaForCausalLM", cdas_h.CDAS_MODEL_FAMILY_LLAMA()),
    GEMMA2("gemma2", "Gemma2ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_GEMMA2()),
    QWEN2("qwen2", "Qwen2ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_QWEN2()),
    PHI3("phi3", "Phi3ForCausalLM", cdas_h.CDAS_MODEL_FAMILY_PHI3()),
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

    /** config.json's model_type. */
    public String modelType() {
        return modelType;
    }

    /** The transformers class name in config.json's architectures. */
    public String architecture() {
        return architecture;
    }

    public static Optional<ModelFamily> fromModelType(String modelType) {
        return Arrays.stream(values()).filter(f -> f.modelType.equals(modelType)).findFirst();
    }

    public static Optional<ModelFamily> fromArchitecture(String architecture) {
        return Arrays.stream(values()).filter(f -> f.architecture.equals(architecture)).findFirst();
    }

    public static List<String> supportedModelTypes() {
        return Arrays.stream(values()).map(ModelFamily::modelType).toList();
    }
}
