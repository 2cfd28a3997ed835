package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.io.Checkpoint;
import dev.cdas.io.Safetensors;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The double-precision Java reference forward against transformers' outputs stored with each
 * fixture: checks that ModelConfig's normalised fields (attention scale, soft-caps, sliding window,
 * llama3 rope, GQA, fused projections, Conv1D layout, Gemma's norm offset and embedding scale) mean
 * what the runtime will take them to mean. The native runtime gets the same comparison.
 */
class ReferenceDecoderTest {
    static final List<String> FAMILIES = Fixtures.FAMILIES;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void matchesTransformers(String family) throws Exception {
        Path dir = Fixtures.dir(family);
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir); Safetensors ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
            ReferenceDecoder decoder = new ReferenceDecoder(config, CheckpointValidator.validate(config, ckpt));
            ReferenceDecoder.Result out = decoder.forward(ref.tensor("input_ids").toLongArray());
            for (int i = 0; i <= config.numLayers(); i++) {
                assertClose(ref.tensor("hidden_states." + i).toFloatArray(), out.hidden().get(i), family + " hidden_states." + i);
            }
            assertClose(ref.tensor("logits").toFloatArray(), out.logits(), family + " logits");
        }
    }

    /** fp32 transformers against double: |a - b| <= 1e-4 + 1e-4 |b|. */
    static void assertClose(float[] expected, double[][] actual, String what) {
        int k = 0;
        double worst = 0;
        for (double[] row : actual) {
            for (double v : row) {
                double err = Math.abs(v - expected[k]) / (1e-4 + 1e-4 * Math.abs(expected[k]));
                worst = Math.max(worst, err);
                k++;
            }
        }
        assertTrue(k == expected.length, what + ": " + k + " values vs " + expected.length);
        assertTrue(worst <= 1, what + ": worst error " + worst + " tolerances");
    }
}
