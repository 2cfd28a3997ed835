package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.io.Checkpoint;
import dev.cdas.io.StorageType;
import dev.cdas.io.ModelFormatException;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The committed fixtures (tools/make_fixtures.py) against their configs: names, shapes, dtypes,
 * and the reference outputs' layout. The numbers are compared in ModelTest (the native runtime
 * against reference.safetensors: logits [T, V] and hidden_states.{L+1}); the one double-precision
 * reference decoder is native/tests/model_reference.cpp.
 */
class CheckpointValidatorTest {
    static final java.util.List<String> FAMILIES = Fixtures.FAMILIES;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void fixtureCheckpointMatchesItsConfig(String family) throws Exception {
        Path dir = Fixtures.dir(family);
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            CheckpointValidator.Weights w = CheckpointValidator.validate(config, ckpt);
            assertEquals(StorageType.F32, w.dtype());
            assertEquals(Set.of(), w.unused(), "every tensor in the fixture is accounted for");
            Tensor head = w.lmHead(config);
            assertArrayEquals(new long[] {config.vocabSize(), config.hiddenSize()}, head.shape());
            if (config.tieWordEmbeddings()) {
                assertTrue(head.name().endsWith("wte.weight") || head.name().equals("model.embed_tokens.weight"));
            } else {
                assertEquals("lm_head.weight", head.name());
            }
            if (family.equals("llama")) {
                assertEquals(2, ckpt.files().size(), "the llama fixture is sharded");
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void referenceOutputsHaveTheDocumentedLayout(String family) throws Exception {
        Path dir = Fixtures.dir(family);
        ModelConfig config = ModelConfig.load(dir);
        try (Safetensors ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
            long t = Long.parseLong(ref.metadata().get("seq_len"));
            int layer = Integer.parseInt(ref.metadata().get("layer"));
            assertEquals(family, ref.metadata().get("family"));
            Tensor ids = ref.tensor("input_ids");
            assertEquals(StorageType.I64, ids.dtype());
            assertArrayEquals(new long[] {t}, ids.shape());
            for (long id : ids.toLongArray()) {
                assertTrue(id >= 0 && id < config.vocabSize());
            }
            assertArrayEquals(new long[] {t, config.vocabSize()}, ref.tensor("logits").shape());
            for (int i = 0; i <= config.numLayers(); i++) {
                assertArrayEquals(new long[] {t, config.hiddenSize()}, ref.tensor("hidden_states." + i).shape());
            }
            assertTrue(layer < config.numLayers());
            float[] logits = ref.tensor("logits").toFloatArray();
            double maxAbs = 0;
            for (float v : logits) {
                assertTrue(Float.isFinite(v));
                maxAbs = Math.max(maxAbs, Math.abs(v));
            }
            if (config.finalLogitSoftcap().isPresent()) {
                assertTrue(maxAbs < config.finalLogitSoftcap().getAsDouble(), "logits are soft-capped");
            }
            assertTrue(maxAbs > 1, "weights were drawn large enough to matter");
            if (family.equals("gemma2")) {
                assertTrue(t > config.slidingWindow().orElseThrow(), "the sequence is longer than the window");
            }
        }
    }

    @Test
    void wrongShapeIsReportedWithFileTensorAndImpliedShape() throws Exception {
        Path dir = Fixtures.dir("llama");
        String json = Files.readString(dir.resolve("config.json")).replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 4");
        ModelConfig config = ModelConfig.parse(json, dir.resolve("config.json"));
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> CheckpointValidator.validate(config, ckpt));
            String first = e.getMessage().lines().findFirst().orElseThrow();
            assertEquals(ckpt.fileOf("model.layers.0.self_attn.k_proj.weight")
                    + ": tensor model.layers.0.self_attn.k_proj.weight has shape [24, 48], config.json implies [48, 48]", first);
            assertEquals("tensor model.layers.0.self_attn.k_proj.weight", e.field());
            assertTrue(e.getMessage().contains("(5 more problems)"), e.getMessage());
            assertTrue(e.getMessage().contains("model.layers.2.self_attn.v_proj.weight"), e.getMessage());
        }
    }

    @Test
    void missingTensorAndUntiedHead(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("phi3");
        ModelConfig config = ModelConfig.load(dir);
        SafetensorsWriter w = new SafetensorsWriter();
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            for (String n : ckpt.names()) {
                if (!n.equals("lm_head.weight")) {
                    w.add(ckpt.tensor(n));
                }
            }
            w.write(tmp.resolve("model.safetensors"));
        }
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> CheckpointValidator.validate(config, ckpt));
            assertEquals(tmp.resolve("model.safetensors") + ": tensor lm_head.weight is missing (config.json implies [101, 48])",
                    e.getMessage());
        }
    }

    @Test
    void integerWeightsAreRejected(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("gpt2");
        ModelConfig config = ModelConfig.load(dir);
        SafetensorsWriter w = new SafetensorsWriter();
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            for (String n : ckpt.names()) {
                if (n.equals("transformer.ln_f.bias")) {
                    w.add(n, new long[] {48}, new int[48]);
                } else {
                    w.add(ckpt.tensor(n));
                }
            }
            w.write(tmp.resolve("model.safetensors"));
        }
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> CheckpointValidator.validate(config, ckpt));
            assertEquals(tmp.resolve("model.safetensors") + ": tensor transformer.ln_f.bias has dtype I32, a floating-point type is needed",
                    e.getMessage());
        }
    }

    @Test
    void gpt2HubNamesWithoutPrefixAreAccepted(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("gpt2");
        ModelConfig config = ModelConfig.load(dir);
        SafetensorsWriter w = new SafetensorsWriter();
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            for (String n : ckpt.names()) {
                Tensor t = ckpt.tensor(n);
                w.add(n.substring("transformer.".length()), t.dtype(), t.shape(), t.data());
            }
            // the original hub file also carries the causal-mask buffers
            w.add("h.0.attn.bias", new long[] {1, 1, 2, 2}, new float[] {1, 0, 1, 1});
            w.write(tmp.resolve("model.safetensors"));
        }
        try (Checkpoint ckpt = Checkpoint.open(tmp)) {
            CheckpointValidator.Weights weights = CheckpointValidator.validate(config, ckpt);
            assertEquals(Set.of("h.0.attn.bias"), weights.unused());
            assertSame(weights.get("transformer.wte.weight"), weights.lmHead(config));
            assertEquals("wte.weight", weights.lmHead(config).name());
        }
    }
}
