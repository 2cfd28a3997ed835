package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {
    private static final Path CFG = Path.of("some/model/config.json");

    private static final AttentionKind F = AttentionKind.FULL;
    private static final AttentionKind S = AttentionKind.SLIDING;

    static ConfigException bad(String json, String... mentions) {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.parse(json, CFG));
        assertTrue(e.getMessage().startsWith(CFG.toString() + ": "), e.getMessage());
        for (String m : mentions) {
            assertTrue(e.getMessage().contains(m), "expected '" + m + "' in: " + e.getMessage());
        }
        return e;
    }

    // ---- the fixtures (transformers 5 writes rope_parameters and layer_types)

    @Test
    void llamaFixture() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("llama"));
        assertEquals(ModelFamily.LLAMA, c.family());
        assertEquals(48, c.hiddenSize());
        assertEquals(3, c.numLayers());
        assertEquals(4, c.numHeads());
        assertEquals(2, c.numKvHeads());
        assertEquals(12, c.headDim());
        assertEquals(80, c.intermediateSize());
        assertEquals(101, c.vocabSize());
        assertEquals(1e-5, c.normEps());
        assertEquals(NormKind.RMS, c.normKind());
        assertFalse(c.tieWordEmbeddings());
        RopeConfig r = c.rope().orElseThrow();
        assertEquals("llama3", r.type());
        assertEquals(500000.0, r.theta());
        assertEquals(8.0, r.factor());
        assertEquals(1.0, r.lowFreqFactor());
        assertEquals(4.0, r.highFreqFactor());
        assertEquals(16, r.originalMaxPositions());
        assertEquals(List.of(F, F, F), c.layerTypes());
        assertTrue(c.slidingWindow().isEmpty());
        assertTrue(c.finalLogitSoftcap().isEmpty());
        assertEquals(1 / Math.sqrt(12), c.attentionScale(), 1e-15);
        assertEquals(OptionalInt.of(0), c.bosTokenId());
        assertEquals(List.of(4), c.eosTokenIds());
        assertEquals(Fixtures.dir("llama").resolve("config.json"), c.source());
    }

    @Test
    void gemma2Fixture() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("gemma2"));
        assertEquals(ModelFamily.GEMMA2, c.family());
        assertEquals(16, c.headDim(), "head_dim is explicit and differs from hidden/heads");
        assertEquals(2, c.numKvHeads());
        assertEquals(24.0, c.queryPreAttnScalar());
        assertEquals(1 / Math.sqrt(24), c.attentionScale(), 1e-15);
        assertEquals(OptionalDouble.of(3.0), c.attnLogitSoftcap());
        assertEquals(OptionalDouble.of(5.0), c.finalLogitSoftcap());
        assertEquals(OptionalInt.of(4), c.slidingWindow());
        assertEquals(List.of(S, F, S), c.layerTypes());
        assertEquals("gelu_pytorch_tanh", c.hiddenActivation());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(Math.sqrt(48), c.embeddingMultiplier());
        assertEquals(1.0, c.normWeightOffset());
        assertEquals(OptionalInt.of(0), c.padTokenId());
        assertEquals(OptionalInt.of(2), c.bosTokenId());
    }

    @Test
    void qwen2Fixture() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("qwen2"));
        assertEquals(ModelFamily.QWEN2, c.family());
        assertEquals(6, c.numHeads());
        assertEquals(8, c.headDim());
        assertTrue(c.attentionBias());
        assertFalse(c.attentionOutputBias());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(1_000_000.0, c.rope().orElseThrow().theta());
        assertTrue(c.bosTokenId().isEmpty());
        assertTrue(c.slidingWindow().isEmpty());
    }

    @Test
    void phi3Fixture() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("phi3"));
        assertEquals(ModelFamily.PHI3, c.family());
        assertEquals(2, c.numKvHeads());
        assertEquals("default", c.rope().orElseThrow().type());
        assertEquals(1.0, c.rope().orElseThrow().partialRotaryFactor());
        assertTrue(c.slidingWindow().isEmpty());
        assertFalse(c.tieWordEmbeddings());
    }

    @Test
    void gpt2Fixture() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("gpt2"));
        assertEquals(ModelFamily.GPT2, c.family());
        assertEquals(48, c.hiddenSize());
        assertEquals(3, c.numLayers());
        assertEquals(4, c.numHeads());
        assertEquals(4, c.numKvHeads());
        assertEquals(12, c.headDim());
        assertEquals(192, c.intermediateSize());
        assertEquals(32, c.maxPositions());
        assertEquals(NormKind.LAYER, c.normKind());
        assertEquals(1e-5, c.normEps());
        assertEquals("gelu_new", c.hiddenActivation());
        assertTrue(c.rope().isEmpty());
        assertTrue(c.tieWordEmbeddings());
    }

    // ---- configs as published on the Hub (transformers 4.x: rope_theta + rope_scaling)

    static final String LLAMA31_8B = """
            {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
             "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
             "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
             "pretraining_tp": 1, "rms_norm_eps": 1e-05,
             "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                              "original_max_position_embeddings": 8192, "rope_type": "llama3"},
             "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
             "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256}""";

    static final String GEMMA2_2B = """
            {"architectures": ["Gemma2ForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
             "attn_logit_softcapping": 50.0, "bos_token_id": 2, "cache_implementation": "hybrid",
             "eos_token_id": [1, 107], "final_logit_softcapping": 30.0, "head_dim": 256,
             "hidden_act": "gelu_pytorch_tanh", "hidden_activation": "gelu_pytorch_tanh", "hidden_size": 2304,
             "initializer_range": 0.02, "intermediate_size": 9216, "max_position_embeddings": 8192,
             "model_type": "gemma2", "num_attention_heads": 8, "num_hidden_layers": 26, "num_key_value_heads": 4,
             "pad_token_id": 0, "query_pre_attn_scalar": 256, "rms_norm_eps": 1e-06, "rope_theta": 10000.0,
             "sliding_window": 4096, "torch_dtype": "float32", "transformers_version": "4.42.4",
             "use_cache": true, "vocab_size": 256000}""";

    static final String QWEN2_05B = """
            {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 151643,
             "eos_token_id": 151645, "hidden_act": "silu", "hidden_size": 896, "initializer_range": 0.02,
             "intermediate_size": 4864, "max_position_embeddings": 32768, "max_window_layers": 24,
             "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
             "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768, "tie_word_embeddings": true,
             "torch_dtype": "bfloat16", "transformers_version": "4.40.1", "use_cache": true,
             "use_sliding_window": false, "vocab_size": 151936}""";

    static final String PHI3_MINI = """
            {"architectures": ["Phi3ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "embd_pdrop": 0.0,
             "eos_token_id": 32000, "hidden_act": "silu", "hidden_size": 3072, "initializer_range": 0.02,
             "intermediate_size": 8192, "max_position_embeddings": 4096, "model_type": "phi3",
             "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 32,
             "original_max_position_embeddings": 4096, "pad_token_id": 32000, "resid_pdrop": 0.0,
             "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0, "sliding_window": 2047,
             "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.40.2",
             "use_cache": true, "attention_bias": false, "vocab_size": 32064}""";

    static final String GPT2_SMALL = """
            {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
             "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
             "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
             "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null,
             "summary_first_dropout": 0.1, "summary_proj_to_labels": true, "summary_type": "cls_index",
             "summary_use_proj": true, "vocab_size": 50257}""";

    @Test
    void llama31() throws Exception {
        ModelConfig c = ModelConfig.parse(LLAMA31_8B, CFG);
        assertEquals(128, c.headDim());
        assertEquals(8, c.numKvHeads());
        RopeConfig r = c.rope().orElseThrow();
        assertEquals("llama3", r.type());
        assertEquals(500000.0, r.theta());
        assertEquals(8192, r.originalMaxPositions());
        assertEquals(List.of(128001, 128008, 128009), c.eosTokenIds());
        assertEquals(OptionalInt.of(128000), c.bosTokenId());
        assertEquals(32 * 9 + 3, c.expectedWeights().size());
    }

    @Test
    void gemma2Published() throws Exception {
        ModelConfig c = ModelConfig.parse(GEMMA2_2B, CFG);
        assertEquals(256, c.headDim());
        assertEquals(OptionalInt.of(4096), c.slidingWindow());
        assertEquals(26, c.layerTypes().size());
        assertEquals(S, c.layerTypes().get(0));
        assertEquals(F, c.layerTypes().get(1));
        assertEquals(OptionalDouble.of(30.0), c.finalLogitSoftcap());
        assertEquals(OptionalDouble.of(50.0), c.attnLogitSoftcap());
        assertTrue(c.tieWordEmbeddings(), "Gemma ties by default");
        assertEquals(List.of(1, 107), c.eosTokenIds());
        WeightSpec q = c.expectedWeights().stream().filter(w -> w.name().equals("model.layers.0.self_attn.q_proj.weight"))
                .findFirst().orElseThrow();
        assertEquals(List.of(2048L, 2304L), java.util.Arrays.stream(q.shape()).boxed().toList());
    }

    @Test
    void gemma2SoftcapsCanBeDisabledWithNull() throws Exception {
        ModelConfig c = ModelConfig.parse(GEMMA2_2B.replace("\"final_logit_softcapping\": 30.0", "\"final_logit_softcapping\": null"), CFG);
        assertTrue(c.finalLogitSoftcap().isEmpty());
        ModelConfig d = ModelConfig.parse(GEMMA2_2B.replace("\"final_logit_softcapping\": 30.0,", ""), CFG);
        assertEquals(OptionalDouble.of(30.0), d.finalLogitSoftcap(), "absent means the family default");
    }

    @Test
    void qwen2Published() throws Exception {
        ModelConfig c = ModelConfig.parse(QWEN2_05B, CFG);
        assertEquals(64, c.headDim());
        assertTrue(c.slidingWindow().isEmpty(), "use_sliding_window is false");
        assertTrue(c.attentionBias());
    }

    @Test
    void phi3Published() throws Exception {
        ModelConfig c = ModelConfig.parse(PHI3_MINI, CFG);
        assertEquals(96, c.headDim());
        assertEquals(OptionalInt.of(2047), c.slidingWindow());
        assertTrue(c.layerTypes().stream().allMatch(k -> k == S));
        assertEquals("default", c.rope().orElseThrow().type());
    }

    @Test
    void phi3LongRope() throws Exception {
        String factors = "[" + "1.0,".repeat(47) + "1.0]";
        ModelConfig c = ModelConfig.parse(PHI3_MINI.replace("\"rope_scaling\": null",
                "\"rope_scaling\": {\"type\": \"su\", \"short_factor\": " + factors + ", \"long_factor\": " + factors + "}"), CFG);
        assertEquals("longrope", c.rope().orElseThrow().type());
        assertEquals(48, c.rope().orElseThrow().longFactor().length);
        bad(PHI3_MINI.replace("\"rope_scaling\": null", "\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1.0], \"long_factor\": " + factors + "}"),
                "rope_scaling.short_factor", "head_dim implies 48");
    }

    @Test
    void gpt2Published() throws Exception {
        ModelConfig c = ModelConfig.parse(GPT2_SMALL, CFG);
        assertEquals(768, c.hiddenSize());
        assertEquals(3072, c.intermediateSize());
        assertEquals(1024, c.maxPositions());
        assertTrue(c.tieWordEmbeddings());
        assertEquals(12 * 12 + 5, c.expectedWeights().size());
    }

    // ---- errors name config.json and the field

    @Test
    void unknownArchitecture() {
        bad("{\"model_type\": \"mistral\", \"hidden_size\": 8}", "model_type", "mistral", "llama, gemma2, qwen2, phi3, gpt2");
        bad("{\"architectures\": [\"MambaForCausalLM\"]}", "architectures", "MambaForCausalLM");
        bad("{\"hidden_size\": 8}", "model_type", "missing");
    }

    @Test
    void missingRequiredFields() {
        bad(LLAMA31_8B.replace("\"hidden_size\": 4096,", ""), "hidden_size", "missing");
        bad(LLAMA31_8B.replace("\"vocab_size\": 128256", "\"foo\": 1"), "vocab_size", "missing");
        bad(GEMMA2_2B.replace("\"num_key_value_heads\": 4,", ""), "num_key_value_heads", "missing");
        bad(GPT2_SMALL.replace("\"n_embd\": 768,", ""), "n_embd", "missing");
    }

    @Test
    void wrongTypesAndValues() {
        bad(LLAMA31_8B.replace("\"hidden_size\": 4096", "\"hidden_size\": \"4096\""), "hidden_size", "integer");
        bad(LLAMA31_8B.replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 0"), "num_hidden_layers", "positive");
        bad(LLAMA31_8B.replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5"), "num_key_value_heads", "does not divide");
        bad(LLAMA31_8B.replace("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": \"small\""), "rms_norm_eps", "number");
        bad(LLAMA31_8B.replace("\"tie_word_embeddings\": false", "\"tie_word_embeddings\": 0"), "tie_word_embeddings");
        bad(LLAMA31_8B.replace("128009]", "999999]"), "eos_token_id", "outside the vocabulary");
        bad(LLAMA31_8B.replace("\"hidden_size\": 4096", "\"hidden_size\": 4097"), "hidden_size", "not divisible");
        bad("{\"model_type\": \"llama\",", "malformed JSON");
        bad("[1, 2]", "not a JSON object");
    }

    /**
     * A value or field name quoted from the file stays on the message's one line: its line breaks are
     * written as escapes (the fuzzer's config crash-de838649...: a layer_types entry "\\\n").
     */
    @Test
    void quotedLineBreaksStayOnOneLine() {
        String[][] cases = {
            {LLAMA31_8B.replace("\"model_type\": \"llama\"", "\"model_type\": \"lla\\nma\""), "\"lla\\nma\" is not supported"},
            {LLAMA31_8B.replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"a\\r\\nb\""), "\"a\\r\\nb\" is not supported"},
            {GEMMA2_2B.replace("\"sliding_window\": 4096,", "\"sliding_window\": 4096, \"layer_types\": "
                    + "[\"full_attention\"" + ", \"x\\u2028\\n\"".repeat(25) + "],"), "layer_types[1]: \"x\\u2028\\n\" is not supported"},
        };
        for (String[] c : cases) {
            ConfigException e = bad(c[0], c[1]);
            assertFalse(e.getMessage().contains("\n") || e.getMessage().contains("\r") || e.getMessage().contains("\u2028"),
                    e.getMessage());
        }
    }

    @Test
    void ropeErrors() {
        bad(LLAMA31_8B.replace("\"low_freq_factor\": 1.0,", ""), "rope_scaling.low_freq_factor", "missing");
        bad(LLAMA31_8B.replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"wobbly\""), "rope_scaling.rope_type", "wobbly");
        bad(LLAMA31_8B.replace("\"high_freq_factor\": 4.0", "\"high_freq_factor\": 0.5"), "rope_scaling.high_freq_factor");
        bad("{\"model_type\": \"llama\", \"hidden_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                + " \"vocab_size\": 5, \"intermediate_size\": 4, \"rope_parameters\": {\"rope_type\": \"linear\"}}",
                "rope_parameters.factor", "missing");
    }

    /** Issue 16 items 10 and 14: values transformers refuses, refused here in config.json's name, not later in native code. */
    @Test
    void hostileNumbersAreRefusedNamingTheFile() {
        bad(LLAMA31_8B.replace("\"rope_theta\": 500000.0", "\"rope_theta\": 1e999"), "rope_theta", "must be a finite number");
        bad(GEMMA2_2B.replace("\"query_pre_attn_scalar\": 256", "\"query_pre_attn_scalar\": 0"),
                "query_pre_attn_scalar", "must be positive, got 0.0");
        bad(GEMMA2_2B.replace("\"query_pre_attn_scalar\": 256", "\"query_pre_attn_scalar\": -4"), "query_pre_attn_scalar");
    }

    /** Issue 16 item 4: num_hidden_layers 10^9 ran 55 s to an OutOfMemoryError; now refused at once, naming the file. */
    @Test
    void absurdLayerCountsAreRefusedBeforeAllocating(@TempDir Path tmp) throws Exception {
        assertTimeoutPreemptively(java.time.Duration.ofSeconds(10), () -> bad(
                LLAMA31_8B.replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 1000000000"),
                "num_hidden_layers", "is 1000000000, more than the limit of 65536 blocks"));
        // within the bound, but more blocks than the checkpoint has tensors: refused before the per-layer lists
        Path model = Files.createDirectories(tmp.resolve("m"));
        try (var files = Files.list(Fixtures.dir("llama"))) {
            for (Path f : files.toList()) {
                if (!f.getFileName().toString().equals("config.json")) {
                    Files.copy(f, model.resolve(f.getFileName()));
                }
            }
        }
        String cfg = Files.readString(Fixtures.dir("llama").resolve("config.json"));
        Files.writeString(model.resolve("config.json"), cfg.replaceFirst("\"num_hidden_layers\": *\\d+", "\"num_hidden_layers\": 60000"));
        var e = assertThrows(dev.cdas.io.SafetensorsFormatException.class, () -> ModelFolder.open(model).close());
        assertTrue(e.getMessage().contains("too few for the 60000 blocks config.json declares"), e.getMessage());
    }

    @Test
    void layerTypesAreChecked() {
        bad(GEMMA2_2B.replace("\"sliding_window\": 4096,", "\"sliding_window\": 4096, \"layer_types\": [\"full_attention\"],"),
                "layer_types", "26");
    }

    @Test
    void missingConfigFile(@TempDir Path dir) throws Exception {
        ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.load(dir));
        assertEquals(dir.resolve("config.json"), e.file());
        assertTrue(e.getMessage().contains("not found"), e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{");
        assertTrue(assertThrows(ConfigException.class, () -> ModelConfig.load(dir)).getMessage().contains("config.json: malformed JSON"));
    }
}
