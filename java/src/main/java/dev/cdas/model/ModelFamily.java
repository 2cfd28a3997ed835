package dev.cdas.model;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/** The decoder families the runtime knows, by config.json's {@code model_type}. */
public enum ModelFamily {
    LLAMA("llama", "LlamaForCausalLM"),
    GEMMA2("gemma2", "Gemma2ForCausalLM"),
    QWEN2("qwen2", "Qwen2ForCausalLM"),
    PHI3("phi3", "Phi3ForCausalLM"),
    GPT2("gpt2", "GPT2LMHeadModel");

    private final String modelType;
    private final String architecture;

    ModelFamily(String modelType, String architecture) {
        this.modelType = modelType;
        this.architecture = architecture;
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
