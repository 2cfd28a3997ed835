package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.DType;
import dev.cdas.InvalidArgumentException;
import dev.cdas.NonFiniteException;
import dev.cdas.io.Checkpoint;
import dev.cdas.io.Safetensors;
import dev.cdas.io.Tensor;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The native model runtime through {@link Model} on the fixture checkpoints: transformers' logits
 * and hidden states (fp32, max abs difference on logits <= 1e-4), the clamp, padding, cached
 * generation, the objective, and typed errors naming the field or tensor.
 */
class ModelTest {
    static final List<String> FAMILIES = Fixtures.FAMILIES;
    static final EnumSet<ForwardOutput> ALL = EnumSet.allOf(ForwardOutput.class);
    /**
     * One libtorch thread: these models are tiny, and on a loaded two-core machine every parallel
     * region waits for a descheduled OpenMP thread (60 ms instead of 0.3 ms per forward).
     */
    static final RuntimeOptions CPU = RuntimeOptions.defaults().withThreads(1);

    record Reference(int[] ids, float[] logits, Map<Integer, float[]> hidden, int layer) {
        static Reference load(String family) throws Exception {
            try (Safetensors ref = Safetensors.open(Fixtures.dir(family).resolve("reference.safetensors"))) {
                long[] ids = ref.tensor("input_ids").toLongArray();
                int[] tokens = new int[ids.length];
                for (int i = 0; i < ids.length; i++) {
                    tokens[i] = Math.toIntExact(ids[i]);
                }
                Map<Integer, float[]> hidden = new LinkedHashMap<>();
                for (String name : ref.names()) {
                    if (name.startsWith("hidden_states.")) {
                        hidden.put(Integer.parseInt(name.substring("hidden_states.".length())), ref.tensor(name).toFloatArray());
                    }
                }
                return new Reference(tokens, ref.tensor("logits").toFloatArray(), hidden,
                        Integer.parseInt(ref.metadata().get("layer")));
            }
        }
    }

    static double maxAbsDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length, "lengths");
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            double d = Math.abs((double) a[i] - b[i]);
            worst = Double.isNaN(d) ? Double.POSITIVE_INFINITY : Math.max(worst, d);
        }
        return worst;
    }

    static float[] slice(float[] a, int from, int to) {
        return java.util.Arrays.copyOfRange(a, from, to);
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void matchesTransformersOnTheFixture(String family) throws Exception {
        Reference ref = Reference.load(family);
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            ModelConfig c = model.config();
            assertEquals(DType.F32, model.dtype());
            assertTrue(model.borrowsWeights(), "fp32 weights on CPU are read in place from the mapped file");
            ForwardOutputs out = model.forward(TokenBatch.single(ref.ids()), null, ref.layer(), ALL);
            double logits = maxAbsDiff(out.logits(), ref.logits());
            double hidden = maxAbsDiff(out.hidden(), ref.hidden().get(ref.layer() + 1));
            double last = maxAbsDiff(out.finalHidden(), ref.hidden().get(c.numLayers()));
            System.out.printf("%-7s fp32 max |diff| vs transformers: logits %.2e, h_%d %.2e, final norm %.2e%n", family, logits,
                    ref.layer(), hidden, last);
            assertTrue(logits <= 1e-4, family + " logits differ by " + logits);
            assertTrue(hidden <= 1e-4, family + " hidden_states[" + (ref.layer() + 1) + "] differ by " + hidden);
            assertTrue(last <= 1e-4, family + " final hidden states differ by " + last);
            for (int layer = 0; layer < c.numLayers() - 1; layer++) {
                float[] h = model.forward(TokenBatch.single(ref.ids()), null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
                double diff = maxAbsDiff(h, ref.hidden().get(layer + 1));
                assertTrue(diff <= 1e-4, family + " hidden_states[" + (layer + 1) + "] differ by " + diff);
            }
        }
    }

    /**
     * transformers' Phi-3 has no biases whatever config.json says (Phi3Attention and Phi3MLP are
     * bias=False): a config with attention_bias and mlp_bias true loads without biases and computes
     * what transformers computes.
     */
    @Test
    void phi3IgnoresBiasFlagsLikeTransformers() throws Exception {
        ModelConfig c = ModelConfig.load(Fixtures.dir("phi3-bias-flags"));
        assertTrue(c.expectedWeights().stream().noneMatch(w -> w.name().endsWith(".bias")), c.expectedWeights().toString());
        matchesTransformersOnTheFixture("phi3-bias-flags");
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void runsInBf16AndF16(String family) throws Exception {
        Reference ref = Reference.load(family);
        for (DType dtype : List.of(DType.BF16, DType.F16)) {
            try (Model model = Model.load(Fixtures.dir(family), CPU.withDtype(dtype))) {
                assertEquals(dtype, model.dtype());
                assertFalse(model.borrowsWeights(), "converted weights are copies");
                float[] logits = model.logits(TokenBatch.single(ref.ids()));
                double err = 0;
                double scale = 0;
                for (int i = 0; i < logits.length; i++) {
                    err += Math.abs(logits[i] - ref.logits()[i]);
                    scale += Math.abs(ref.logits()[i]);
                }
                // Mean |error| relative to the mean |logit|, measured on these fixtures (2026-12): bf16
                // 0.6-2.0% (qwen2 the worst), f16 0.07-0.30%: the unit roundoffs (2^-9, 2^-12) grown
                // about tenfold through the blocks. The bound is twice the worst measured value.
                double bound = dtype == DType.BF16 ? 0.04 : 0.006;
                assertTrue(err <= bound * scale, family + " " + dtype + ": mean |error| " + err / scale
                        + " of the mean |logit| (bound " + bound + ")");
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void leftPaddedBatchEqualsUnpaddedRuns(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            int v = model.config().vocabSize();
            int d = model.config().hiddenSize();
            Random rng = new Random(7);
            int[][] rows = {tokens(rng, 9, v), tokens(rng, 4, v), tokens(rng, 12, v)};
            TokenBatch batch = TokenBatch.leftPadded(0, rows);
            ForwardOutputs padded = model.forward(batch, null, 1, ALL);
            for (int b = 0; b < rows.length; b++) {
                ForwardOutputs single = model.forward(TokenBatch.single(rows[b]), null, 1, ALL);
                int off = b * batch.seqLen() + batch.firstReal(b);
                int n = rows[b].length;
                assertTrue(maxAbsDiff(slice(padded.logits(), off * v, (off + n) * v), single.logits()) <= 1e-5, family + " row " + b);
                assertTrue(maxAbsDiff(slice(padded.hidden(), off * d, (off + n) * d), single.hidden()) <= 1e-5, family + " row " + b);
                for (int i = b * batch.seqLen() * v; i < off * v; i++) {
                    assertEquals(0f, padded.logits()[i], "padding logits are 0");
                }
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void clampSetsTheProjectionFromPrefixLenOn(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            int d = model.config().hiddenSize();
            int layer = 1;
            Random rng = new Random(11);
            int[][] rows = {tokens(rng, 8, model.config().vocabSize()), tokens(rng, 5, model.config().vocabSize())};
            TokenBatch batch = TokenBatch.leftPadded(0, rows);
            float[] w = unit(rng, d);
            float[] values = {2.5f, -4f};
            int[] prefix = {3, 1};
            float[] plain = model.forward(batch, null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            float[] clamped = model.forward(batch, Intervention.clamp(layer, 1, w, values, prefix), layer,
                    EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (int b = 0; b < rows.length; b++) {
                for (int p = 0; p < rows[b].length; p++) {
                    int row = (b * batch.seqLen() + batch.firstReal(b) + p) * d;
                    if (p < prefix[b]) {
                        assertArrayEquals(slice(plain, row, row + d), slice(clamped, row, row + d), family + ": before prefix_len");
                    } else {
                        assertEquals(values[b], dot(w, clamped, row), 1e-4, family + ": w.h' = a at row " + b + " position " + p);
                    }
                }
            }
            // a from the un-clamped h_L at a source position of the same row
            int[] source = {6, 2};
            float[] fromSource = model.forward(batch, Intervention.fromSource(layer, 1, w, source, prefix), layer,
                    EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (int b = 0; b < rows.length; b++) {
                double a = dot(w, plain, (b * batch.seqLen() + batch.firstReal(b) + source[b]) * d);
                assertEquals(a, dot(w, fromSource, (b * batch.seqLen() + batch.seqLen() - 1) * d), 1e-4, family);
            }
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void cachedGenerationEqualsGreedyRecomputation(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            int v = model.config().vocabSize();
            int d = model.config().hiddenSize();
            Random rng = new Random(3);
            int[][] rows = {tokens(rng, 5, v), tokens(rng, 2, v), tokens(rng, 7, v)};
            float[] w = unit(rng, d);
            float[] values = {3f, -2f, 1.5f};
            int[] prefix = {1, 0, 2};
            int steps = 6;
            for (boolean clamp : new boolean[] {false, true}) {
                Intervention iv = clamp ? Intervention.clamp(1, 1, w, values, prefix) : null;
                int[][] generated = model.generate(TokenBatch.leftPadded(0, rows), iv, GenerationOptions.greedy(steps));
                for (int b = 0; b < rows.length; b++) {
                    int[] seq = java.util.Arrays.copyOf(rows[b], rows[b].length + steps);
                    for (int s = 0; s < steps; s++) {
                        int n = rows[b].length + s;
                        Intervention one = clamp ? Intervention.clamp(1, 1, w, new float[] {values[b]}, new int[] {prefix[b]}) : null;
                        float[] logits = model.forward(TokenBatch.single(java.util.Arrays.copyOf(seq, n)), one, 0,
                                EnumSet.of(ForwardOutput.LOGITS)).logits();
                        seq[n] = argmax(logits, (n - 1) * v, v);
                    }
                    assertArrayEquals(java.util.Arrays.copyOfRange(seq, rows[b].length, seq.length), generated[b],
                            family + (clamp ? " clamped" : "") + " row " + b);
                }
            }
            // seeded sampling is reproducible; eos ends a row
            GenerationOptions sampled = new GenerationOptions(8, 1.2f, 0.9f, 30, 42L, null);
            int[][] a = model.generate(TokenBatch.leftPadded(0, rows), null, sampled);
            assertArrayEquals(a[0], model.generate(TokenBatch.leftPadded(0, rows), null, sampled)[0]);
            int eos = a[0][1];
            int[][] stopped = model.generate(TokenBatch.leftPadded(0, rows), null,
                    new GenerationOptions(8, 1.2f, 0.9f, 30, 42L, new int[] {eos}));
            int first = 0;
            while (a[0][first] != eos) {
                first++;
            }
            assertArrayEquals(java.util.Arrays.copyOf(a[0], first + 1), stopped[0]);
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void objectiveGivesABoundedLossAndAScaledGradient(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            int v = model.config().vocabSize();
            int d = model.config().hiddenSize();
            Random rng = new Random(5);
            int[][] x = {tokens(rng, 4, v), tokens(rng, 6, v)};
            int[][] xc = {tokens(rng, 5, v), tokens(rng, 3, v)};
            int[][] yc = {tokens(rng, 3, v), tokens(rng, 4, v)};
            int[][] base = {concat(x[0], yc[0]), concat(x[1], yc[1])};
            int[][] target = {concat(xc[0], yc[0]), concat(xc[1], yc[1])};
            ObjectiveBatch batch = new ObjectiveBatch(TokenBatch.leftPadded(0, base), TokenBatch.leftPadded(0, xc),
                    TokenBatch.leftPadded(0, target), new int[] {1, 1}, new int[] {4, 2}, new int[] {3, 5}, new int[] {4, 2},
                    new int[] {3, 4});
            float[] w = unit(rng, d);
            ObjectiveResult full = model.cdasObjective(1, 1, w, batch, 1f, true);
            ObjectiveResult half = model.cdasObjective(1, 1, w, batch, 0.5f, true);
            ObjectiveResult lossOnly = model.cdasObjective(1, 1, w, batch, 1f, false);
            assertTrue(full.loss() > 0 && full.loss() <= Math.log(2), family + " loss " + full.loss());
            assertEquals(full.loss(), lossOnly.loss(), 1e-7);
            assertNull(lossOnly.gradDirections());
            double norm = 0;
            for (int i = 0; i < d; i++) {
                assertEquals(0.5 * full.gradDirections()[i], half.gradDirections()[i], 1e-7 + 1e-5 * Math.abs(full.gradDirections()[i]));
                norm += full.gradDirections()[i] * full.gradDirections()[i];
            }
            assertTrue(norm > 0 && Double.isFinite(norm), family + " gradient norm " + norm);
        }
    }

    @Test
    void badArgumentsGiveTypedExceptionsNamingTheField() throws Exception {
        try (Model model = Model.load(Fixtures.dir("llama"), CPU)) {
            int v = model.config().vocabSize();
            TokenBatch ok = TokenBatch.single(1, 2, 3);
            var hidden = EnumSet.of(ForwardOutput.HIDDEN);
            assertMessage(InvalidArgumentException.class, "hidden_layer = 3 is out of range: the model has blocks 0..2",
                    () -> model.forward(ok, null, 3, hidden));
            assertMessage(InvalidArgumentException.class, "input.tokens[0, 1] = " + v + " is outside the vocabulary [0, " + v + ")",
                    () -> model.forward(TokenBatch.single(1, v, 3), null, 0, hidden));
            assertMessage(InvalidArgumentException.class, "input.tokens[0, 0] = -5",
                    () -> model.forward(TokenBatch.single(-5, 2), null, 0, hidden));
            float[] w = new float[model.config().hiddenSize()];
            w[0] = 1;
            assertMessage(InvalidArgumentException.class, "intervention.layer = 9 is out of range",
                    () -> model.forward(ok, Intervention.clamp(9, 1, w, new float[] {1}, null), 0, hidden));
            assertMessage(InvalidArgumentException.class, "intervention.source_positions[0] = 3",
                    () -> model.forward(ok, Intervention.fromSource(1, 1, w, new int[] {3}, null), 0, hidden));
            assertMessage(InvalidArgumentException.class, "values must hold batch x rank = 1",
                    () -> model.forward(ok, Intervention.clamp(1, 1, w, new float[] {1, 2}, null), 0, hidden));
            assertMessage(NonFiniteException.class, "intervention.values",
                    () -> model.forward(ok, Intervention.clamp(1, 1, w, new float[] {Float.NaN}, null), 0, hidden));
            TokenBatch rightPadded = new TokenBatch(1, 4, new int[] {1, 2, 3, 0}, new byte[] {1, 1, 1, 0});
            assertMessage(InvalidArgumentException.class, "left-padded",
                    () -> model.generate(rightPadded, null, GenerationOptions.greedy(3)));
            assertMessage(InvalidArgumentException.class, "options.eos_ids[0]",
                    () -> model.generate(ok, null, GenerationOptions.greedy(3, v + 1)));
            assertMessage(InvalidArgumentException.class, "device must be cpu, cuda or cuda:N",
                    () -> CPU.withDevice("tpu"));
        }
    }

    @Test
    void missingOrWrongShapedTensorsAreNamed() throws Exception {
        Path dir = Fixtures.dir("qwen2");
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            CheckpointValidator.Weights weights = CheckpointValidator.validate(config, ckpt);
            Map<String, Tensor> missing = new LinkedHashMap<>(weights.byCanonicalName());
            missing.remove("model.layers.2.self_attn.v_proj.bias");
            assertMessage(InvalidArgumentException.class, "missing tensor model.layers.2.self_attn.v_proj.bias (expected shape [16]",
                    () -> Model.create(config, new CheckpointValidator.Weights(missing, weights.dtype(), weights.unused()), null,
                            CPU).close());
            Map<String, Tensor> wrong = new LinkedHashMap<>(weights.byCanonicalName());
            Tensor q = wrong.get("model.layers.0.self_attn.q_proj.weight");
            wrong.put("model.layers.0.self_attn.k_proj.weight", q);
            assertMessage(InvalidArgumentException.class,
                    "tensor model.layers.0.self_attn.k_proj.weight has shape [48, 48] but the config implies [16, 48]",
                    () -> Model.create(config, new CheckpointValidator.Weights(wrong, weights.dtype(), weights.unused()), null,
                            CPU).close());
            Map<String, Tensor> extra = new LinkedHashMap<>(weights.byCanonicalName());
            extra.put("model.layers.0.self_attn.rotary_emb.inv_freq", weights.get("model.norm.weight"));
            assertMessage(InvalidArgumentException.class, "unexpected tensor model.layers.0.self_attn.rotary_emb.inv_freq",
                    () -> Model.create(config, new CheckpointValidator.Weights(extra, weights.dtype(), weights.unused()), null,
                            CPU).close());
        }
    }

    @Test
    void publishedConfigsMapToTheNativeConfig() throws Exception {
        // Phi-3.5-mini: longrope without a factor (transformers derives 131072 / 4096), top-level original length
        StringBuilder shortF = new StringBuilder();
        StringBuilder longF = new StringBuilder();
        for (int i = 0; i < 48; i++) {
            shortF.append(i == 0 ? "" : ",").append(1.0 + i * 0.01);
            longF.append(i == 0 ? "" : ",").append(1.0 + i);
        }
        ModelConfig phi = ModelConfig.parse("""
                {"model_type": "phi3", "hidden_size": 3072, "num_hidden_layers": 32, "num_attention_heads": 32,
                 "num_key_value_heads": 32, "intermediate_size": 8192, "vocab_size": 32064, "rms_norm_eps": 1e-05,
                 "max_position_embeddings": 131072, "original_max_position_embeddings": 4096, "rope_theta": 10000.0,
                 "sliding_window": 262144, "tie_word_embeddings": false, "hidden_act": "silu",
                 "rope_scaling": {"type": "longrope", "short_factor": [%s], "long_factor": [%s]}}
                """.formatted(shortF, longF), Path.of("config.json"));
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            var s = NativeModelConfig.build(phi, DType.BF16, CPU, arena);
            assertEquals(dev.cdas.bindings.cdas_h.CDAS_ROPE_LONGROPE(), dev.cdas.bindings.cdas_model_config.rope_type(s));
            assertEquals(0.0, dev.cdas.bindings.cdas_model_config.rope_factor(s), "derived natively as max / original");
            assertEquals(4096, dev.cdas.bindings.cdas_model_config.rope_original_max_positions(s));
            assertEquals(48, dev.cdas.bindings.cdas_model_config.rope_factor_count(s));
            assertEquals(47f, dev.cdas.bindings.cdas_model_config.rope_long_factor(s).reinterpret(48 * 4)
                    .getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, 46));
            assertEquals(262144, dev.cdas.bindings.cdas_model_config.sliding_window(s));
            assertEquals(dev.cdas.bindings.cdas_h.CDAS_MODEL_FAMILY_PHI3(), dev.cdas.bindings.cdas_model_config.family(s));
            assertEquals(DType.BF16.code(), dev.cdas.bindings.cdas_model_config.dtype(s));
        }
        ModelConfig gemma = ModelConfig.load(Fixtures.dir("gemma2"));
        try (java.lang.foreign.Arena arena = java.lang.foreign.Arena.ofConfined()) {
            var s = NativeModelConfig.build(gemma, DType.F32, CPU, arena);
            var sliding = dev.cdas.bindings.cdas_model_config.layer_sliding(s).reinterpret(3);
            assertEquals(1, sliding.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0), "layer 0 slides");
            assertEquals(0, sliding.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 1));
            assertEquals(1, sliding.get(java.lang.foreign.ValueLayout.JAVA_BYTE, 2));
            assertEquals(4, dev.cdas.bindings.cdas_model_config.sliding_window(s));
            assertEquals(3.0, dev.cdas.bindings.cdas_model_config.attn_logit_softcap(s));
            assertEquals(5.0, dev.cdas.bindings.cdas_model_config.final_logit_softcap(s));
            assertEquals(24.0, dev.cdas.bindings.cdas_model_config.query_pre_attn_scalar(s));
            assertEquals(Math.sqrt(48), dev.cdas.bindings.cdas_model_config.embedding_multiplier(s), 1e-12);
            assertEquals(dev.cdas.bindings.cdas_h.CDAS_ACTIVATION_GELU_TANH(), dev.cdas.bindings.cdas_model_config.activation(s));
        }
    }

    @Test
    void closeIsIdempotentAndCallsAfterCloseFail() throws Exception {
        Model model = Model.load(Fixtures.dir("gpt2"), CPU);
        model.close();
        model.close();
        assertThrows(IllegalStateException.class, () -> model.logits(TokenBatch.single(1, 2)));
    }

    static <T extends Throwable> void assertMessage(Class<T> type, String needle, org.junit.jupiter.api.function.Executable call) {
        T e = assertThrows(type, call);
        assertTrue(e.getMessage().contains(needle), "message lacks \"" + needle + "\": " + e.getMessage());
    }

    static int[] tokens(Random rng, int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = rng.nextInt(vocab);
        }
        return t;
    }

    static int[] concat(int[] a, int[] b) {
        int[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    static float[] unit(Random rng, int d) {
        float[] w = new float[d];
        double n = 0;
        for (int i = 0; i < d; i++) {
            w[i] = (float) rng.nextGaussian();
            n += w[i] * w[i];
        }
        for (int i = 0; i < d; i++) {
            w[i] /= (float) Math.sqrt(n);
        }
        return w;
    }

    static double dot(float[] w, float[] h, int offset) {
        double s = 0;
        for (int i = 0; i < w.length; i++) {
            s += (double) w[i] * h[offset + i];
        }
        return s;
    }

    static int argmax(float[] z, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) {
            if (z[offset + i] > z[offset + best]) {
                best = i;
            }
        }
        return best;
    }

    /** Model.defaultDtype: the checkpoint's type, except F32 on a CPU-only model whose type has no vector kernels there. */
    @Test
    void defaultComputeTypeFallsBackToF32OnlyOnACpuWithoutFastHalfProducts() {
        for (DType stored : DType.values()) {
            assertEquals(stored, Model.defaultDtype(stored, true, t -> true), stored + " on a CPU with fast products");
            assertEquals(stored, Model.defaultDtype(stored, false, t -> false), stored + " on a GPU");
            assertEquals(DType.F32, Model.defaultDtype(stored, true, t -> t == DType.F32),
                    stored + " on a CPU with fast F32 products only");
        }
        assertEquals(DType.BF16, Model.defaultDtype(DType.BF16, true, t -> t == DType.BF16), "BF16 fast, F16 slow");
        assertEquals(DType.F32, Model.defaultDtype(DType.F16, true, t -> t == DType.BF16), "BF16 fast, F16 slow");
    }

    /**
     * The bundled demo model is stored in F16: with no dtype it computes in F16 where this CPU has
     * AVX512-FP16 or AVX-NE-CONVERT (read here from /proc/cpuinfo, independently of libcdas's CPUID
     * code) and in F32 elsewhere; an explicit dtype is always kept.
     */
    @Test
    void theF16DemoModelComputesInTheTypeThisCpuMultipliesFast() throws Exception {
        Path demo = null;
        for (Path p = Path.of("").toAbsolutePath(); p != null && demo == null; p = p.getParent()) {
            if (java.nio.file.Files.isRegularFile(p.resolve("demo/model/config.json"))) {
                demo = p.resolve("demo/model");
            }
        }
        assertTrue(demo != null, "demo/model not found above " + Path.of("").toAbsolutePath());
        List<String> flags = dev.cdas.ProcCpuInfo.read().flags();
        boolean fastF16 = flags.contains("avx512_fp16") || flags.contains("avx_ne_convert");
        assertEquals(fastF16, Model.cpuFastMatmul(DType.F16), "cdas_cpu_fast_matmul(F16) against /proc/cpuinfo's flags");
        assertTrue(Model.cpuFastMatmul(DType.F32));
        try (Model model = Model.load(demo, CPU)) {
            assertEquals(fastF16 ? DType.F16 : DType.F32, model.dtype());
        }
        try (Model model = Model.load(demo, CPU.withDtype(DType.F16))) {
            assertEquals(DType.F16, model.dtype(), "an explicit dtype is kept");
        }
    }
}
