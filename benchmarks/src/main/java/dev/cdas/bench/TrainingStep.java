package dev.cdas.bench;

import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.StorageType;
import dev.cdas.model.Model;
import dev.cdas.model.ObjectiveBatch;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.model.ObjectiveResult;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.AdamW;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.Directions;
import dev.cdas.train.ExampleEncoder;
import dev.cdas.train.GradientClipping;
import dev.cdas.train.ObjectiveStateCache;
import dev.cdas.train.Rng;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.SplittableRandom;

/**
 * One CDAS training step on a GPT-2-124M-shaped model (12 blocks, d = 768, 12 heads, V = 50 257,
 * random weights, fp32), as {@link dev.cdas.train.Trainer} runs it: the D⁺ and D⁻ minibatches
 * through {@link Model#cdasObjective} (each ½; the no-grad target/source pass, the base up to the
 * layer, the intervened pass with autograd above it, the loss and its backward), then gradient
 * clipping, AdamW and re-normalisation. The two implementations differ in the loss only: the fused
 * LM-head + JSD kernel, or the same JSD composed from libtorch operations ([rows x V] logits
 * materialised). A step of the first epoch runs every pass in the call; a step of a later epoch
 * reads the w-independent states (source, teacher rows, base h_L) from the trainer's
 * {@link ObjectiveStateCache} and runs only the intervened pass above the layer and the loss.
 * Shared by {@link TrainingStepBenchmark} (time) and {@link MemoryProbe} (peak memory).
 */
final class TrainingStep implements AutoCloseable {
    /** The step's shape: pairs per minibatch, prompt and response tokens per sequence, layer. */
    record Shape(int pairs, int promptTokens, int responseTokens, int layer) {
        /** Response rows the loss compares per direction. */
        int rows() {
            return pairs * responseTokens;
        }
    }

    static final int LAYERS = 12;
    static final int HIDDEN = 768;
    static final int HEADS = 12;
    static final int VOCAB = 50257;
    static final int POSITIONS = 1024;

    static Shape shape(String name) {
        return switch (name) {
            // the reference batch of 8 pairs, responses of 64 tokens (half the default cut), middle layer
            case "gpt2" -> new Shape(8, 32, 64, 6);
            // a smoke shape for quick runs: same model, 2 pairs
            case "gpt2-small-batch" -> new Shape(2, 16, 16, 6);
            default -> throw new IllegalArgumentException("unknown training-step shape '" + name + "' (gpt2, gpt2-small-batch)");
        };
    }

    static ObjectiveLoss loss(String impl) {
        return switch (impl) {
            case "fused" -> ObjectiveLoss.JSD;
            case "torch-composed" -> ObjectiveLoss.JSD_COMPOSED;
            default -> throw new IllegalArgumentException("unknown implementation '" + impl + "' (fused, torch-composed)");
        };
    }

    private final Model model;
    private final Shape shape;
    private final ObjectiveLoss loss;
    private final List<ExampleEncoder.EncodedExample> inject;
    private final List<ExampleEncoder.EncodedExample> suppress;
    private final ObjectiveStateCache states;
    private final float[] w;
    private final AdamW adam;

    /**
     * @param cached false: the step of the first epoch (every pass in the call); true: a step of a
     *               later epoch, the w-independent states read from the trainer's cache
     */
    TrainingStep(Shape shape, ObjectiveLoss loss, boolean cached, int threads) throws IOException {
        this.shape = shape;
        this.loss = loss;
        Path folder = randomGpt2();
        this.model = Model.load(folder, RuntimeOptions.defaults().withThreads(threads));
        SplittableRandom random = new SplittableRandom(20261125L);
        this.inject = examples(shape, random);
        this.suppress = examples(shape, random);
        this.states = cached ? new ObjectiveStateCache(model, shape.layer(), 0, true, Long.MAX_VALUE) : null;
        this.w = Directions.randomUnit(1, HIDDEN, new Rng(42));
        this.adam = new AdamW(HIDDEN);
    }

    /**
     * A tiny call that loads libtorch and touches every weight (all blocks and the head); with the
     * cache, also fills it (what the first epoch does).
     */
    void warmUp() {
        SplittableRandom random = new SplittableRandom(1);
        model.cdasObjective(shape.layer(), 1, w, CdasObjective.objectiveBatch(examples(new Shape(1, 4, 2, shape.layer()), random), 0),
                loss, 0.5f, true);
        if (states != null) {
            batch(inject);
            batch(suppress);
        }
    }

    private ObjectiveBatch batch(List<ExampleEncoder.EncodedExample> examples) {
        ObjectiveBatch b = CdasObjective.objectiveBatch(examples, 0);
        return states == null ? b : states.complete(examples, b);
    }

    /** Bytes the state cache holds (0 without it). */
    long stateCacheBytes() {
        return states == null ? 0 : states.usedBytes();
    }

    /** One step; returns the loss. */
    double step() {
        ObjectiveResult p = model.cdasObjective(shape.layer(), 1, w, batch(inject), loss, 0.5f, true);
        ObjectiveResult m = model.cdasObjective(shape.layer(), 1, w, batch(suppress), loss, 0.5f, true);
        float[] grad = new float[w.length];
        for (int i = 0; i < grad.length; i++) {
            grad[i] = p.gradDirections()[i] + m.gradDirections()[i];
        }
        GradientClipping.clipGlobalNorm(grad, GradientClipping.DEFAULT_MAX_NORM);
        adam.step(w, grad, 1e-3);
        Directions.renormalizeRows(w, 1);
        return 0.5 * p.loss() + 0.5 * m.loss();
    }

    @Override
    public void close() {
        model.close();
    }

    /**
     * One direction's minibatch as the trainer encodes it: base = x ⊕ y, source = xᶜ, target =
     * xᶜ ⊕ y (random tokens; prompts of different lengths so rows are padded), compared rows from
     * the last prompt token.
     */
    static List<ExampleEncoder.EncodedExample> examples(Shape s, SplittableRandom random) {
        List<ExampleEncoder.EncodedExample> out = new ArrayList<>();
        for (int i = 0; i < s.pairs(); i++) {
            int xLen = s.promptTokens() - (i % 3);
            int xcLen = s.promptTokens() - ((i + 1) % 3);
            int[] x = tokens(random, xLen);
            int[] xc = tokens(random, xcLen);
            int[] y = tokens(random, s.responseTokens());
            out.add(new ExampleEncoder.EncodedExample(concat(x, y), 1, xLen, xc, xcLen - 1, concat(xc, y), xcLen,
                    s.responseTokens(), "random " + i));
        }
        return out;
    }

    private static int[] tokens(SplittableRandom random, int n) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = random.nextInt(VOCAB);
        }
        return t;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] c = new int[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    /**
     * A GPT-2-124M-shaped checkpoint with random weights (N(0, 0.02), LayerNorms 1 and 0, as
     * transformers initialises GPT-2), written once under the system temp folder and reused.
     */
    static Path randomGpt2() throws IOException {
        Path folder = Path.of(System.getProperty("java.io.tmpdir"), "cdas-bench-gpt2-124m-random");
        Path weights = folder.resolve("model.safetensors");
        if (Files.isRegularFile(weights) && Files.isRegularFile(folder.resolve("config.json"))) {
            return folder;
        }
        Files.createDirectories(folder);
        SafetensorsWriter writer = new SafetensorsWriter();
        long d = HIDDEN;
        long[] seed = {1};
        java.util.function.BiConsumer<String, long[]> gaussian = (name, shape) -> writer.add(name, StorageType.F32, shape,
                dst -> fillGaussian(dst, seed[0]++));
        java.util.function.BiConsumer<String, long[]> ones = (name, shape) -> writer.add(name, StorageType.F32, shape,
                dst -> fillConstant(dst, 1f));
        java.util.function.BiConsumer<String, long[]> zeros = (name, shape) -> writer.add(name, StorageType.F32, shape,
                dst -> fillConstant(dst, 0f));
        gaussian.accept("transformer.wte.weight", new long[] {VOCAB, d});
        gaussian.accept("transformer.wpe.weight", new long[] {POSITIONS, d});
        for (int i = 0; i < LAYERS; i++) {
            String p = "transformer.h." + i + ".";
            ones.accept(p + "ln_1.weight", new long[] {d});
            zeros.accept(p + "ln_1.bias", new long[] {d});
            gaussian.accept(p + "attn.c_attn.weight", new long[] {d, 3 * d});
            zeros.accept(p + "attn.c_attn.bias", new long[] {3 * d});
            gaussian.accept(p + "attn.c_proj.weight", new long[] {d, d});
            zeros.accept(p + "attn.c_proj.bias", new long[] {d});
            ones.accept(p + "ln_2.weight", new long[] {d});
            zeros.accept(p + "ln_2.bias", new long[] {d});
            gaussian.accept(p + "mlp.c_fc.weight", new long[] {d, 4 * d});
            zeros.accept(p + "mlp.c_fc.bias", new long[] {4 * d});
            gaussian.accept(p + "mlp.c_proj.weight", new long[] {4 * d, d});
            zeros.accept(p + "mlp.c_proj.bias", new long[] {d});
        }
        ones.accept("transformer.ln_f.weight", new long[] {d});
        zeros.accept("transformer.ln_f.bias", new long[] {d});
        writer.write(weights);
        String config = """
                {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": %d, "n_positions": %d,
                 "n_embd": %d, "n_layer": %d, "n_head": %d, "n_inner": null, "activation_function": "gelu_new",
                 "layer_norm_epsilon": 1e-05, "tie_word_embeddings": true, "bos_token_id": 50256, "eos_token_id": 50256,
                 "dtype": "float32"}
                """.formatted(VOCAB, POSITIONS, HIDDEN, LAYERS, HEADS);
        Path tmp = folder.resolve("config.json.tmp");
        Files.writeString(tmp, config);
        Files.move(tmp, folder.resolve("config.json"), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        return folder;
    }

    private static void fillGaussian(MemorySegment dst, long seed) {
        Random random = new Random(seed);
        long n = dst.byteSize() / 4;
        for (long i = 0; i < n; i++) {
            dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, (float) (0.02 * random.nextGaussian()));
        }
    }

    private static void fillConstant(MemorySegment dst, float value) {
        long n = dst.byteSize() / 4;
        for (long i = 0; i < n; i++) {
            dst.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i, value);
        }
    }
}
