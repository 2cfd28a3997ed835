package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.ForwardOutputs;
import dev.cdas.model.Intervention;
import dev.cdas.model.InterventionMode;
import dev.cdas.model.Model;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.model.Tokenizer;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Runs a model folder on one sequence and writes what the runtime computed, so users can check
 * that their checkpoint loads and matches transformers.
 */
@Command(name = "logits", mixinStandardHelpOptions = true,
        header = "Writes a model's logits for one sequence to safetensors.",
        description = {"Runs a Hugging Face model folder on one sequence and writes its logits to a safetensors file:",
            "  logits  float32 [tokens x vocab] (after Gemma-2's final soft-cap)",
            "  hidden  float32 [tokens x d], with --layer: h_L, the output of block L (transformers' hidden_states[L+1]),",
            "          after the clamp when --vector is given",
            "  input_ids int32 [tokens]",
            "With --vector V.safetensors --factor A the clamp h <- h + W^T (A - W h) is applied at block L to every",
            "position from prefix_len on; V holds W as 'directions' [r x d] or 'direction' [d] (fp32; its metadata",
            "'layer' is used when --layer is not given). When V's metadata 'method' is diffmean (a vector written by",
            "train --method diffmean), A is added along W instead: h <- h + W^T A. When it is prompt (train --method",
            "prompt; needs --text), nothing is applied at a layer: the file's inject instruction (A > 0) or suppress",
            "instruction (A < 0) and a blank line go before the text (inside the user turn with --chat); A = 0 adds none."})
final class LogitsCommand implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Model folder: config.json, model.safetensors (or sharded with its index), tokenizer.json for --text.")
    Path model;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Input input;

    static final class Input {
        @Option(names = "--tokens", split = ",", paramLabel = "IDS", description = "Token ids, comma-separated (e.g. 5,17,42).")
        int[] tokens;

        @Option(names = "--text", paramLabel = "TEXT", description = "Text to tokenise with the folder's tokenizer.json.")
        String text;
    }

    @Option(names = "--chat", description = "With --text: render it as one user turn with the chat template (generation prompt included).")
    boolean chat;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "Output .safetensors file (written atomically).")
    Path out;

    @Option(names = "--layer", paramLabel = "L", description = "Also write h_L, the output of block L (0-based).")
    Integer layer;

    @Option(names = "--vector", paramLabel = "V.safetensors", description = "Steering directions to clamp with at the layer.")
    Path vector;

    @Option(names = "--factor", paramLabel = "A", description = "The clamp value a (for every direction), with --vector; for a diffmean vector the amount added.")
    Float factor;

    @Option(names = "--prefix-len", paramLabel = "N",
            description = "Positions before N are not clamped (default: the chat template's shared opening with --chat, the tokenizer's BOS with --text, 0 with --tokens).")
    Integer prefixLen;




    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        if (chat && input.text == null) {
            throw new InvalidArgumentException("--chat needs --text");
        }
        if ((vector == null) != (factor == null)) {
            throw new InvalidArgumentException("--vector and --factor go together");
        }
        RuntimeOptions options = runtime.options();
        dev.cdas.io.InputFiles.requireReplaceable(out);
        SteeringVectorFile promptFile = vector != null && isPromptFile(vector) ? SteeringVectorFile.read(vector) : null;
        if (promptFile != null && input.text == null) {
            throw new InvalidArgumentException(vector + " steers by rewriting the prompt (method prompt): give --text, not --tokens");
        }
        if (promptFile != null && !Float.isFinite(factor)) {
            throw new InvalidArgumentException("--factor must be finite, got " + factor);
        }
        int[] ids;
        int defaultPrefix = 0;
        String instruction = promptFile == null ? null : promptFile.promptSteering().instruction(factor);
        if (input.text != null) {
            try (Tokenizer tokenizer = Tokenizer.load(model)) {
                PromptEncoder encoder = chat ? PromptEncoder.of(tokenizer) : PromptEncoder.raw(tokenizer);
                if (chat && !encoder.usesChatTemplate()) {
                    throw new InvalidArgumentException(model.resolve(Tokenizer.TOKENIZER_CONFIG)
                            + " has no chat_template (and there is no chat_template.jinja): drop --chat");
                }
                String text = promptFile == null ? input.text : promptFile.message(input.text, new double[] {factor});
                PromptEncoder.EncodedPrompt prompt = encoder.encodePrompt(text);
                ids = prompt.ids();
                defaultPrefix = prompt.prefixLen();
            }
        } else {
            ids = input.tokens;
        }
        if (ids.length == 0) {
            throw new InvalidArgumentException("no tokens to run");
        }
        Directions directions = vector == null || promptFile != null ? null : Directions.read(vector);
        Integer hiddenLayer = layer != null ? layer : directions != null ? directions.layer : null;
        if (directions != null && hiddenLayer == null) {
            throw new InvalidArgumentException("--vector needs --layer: " + vector + " has no 'layer' metadata");
        }
        try (Model m = ModelOptions.announce(Model.load(model, options))) {
            int d = m.config().hiddenSize();
            int v = m.config().vocabSize();
            Intervention iv = null;
            if (directions != null) {
                if (directions.values.length % d != 0) {
                    throw new InvalidArgumentException(vector + ": the directions hold " + directions.values.length
                            + " floats, not a multiple of the model's hidden size " + d);
                }
                int rank = directions.values.length / d;
                double[] a = new double[rank];
                Arrays.fill(a, factor);
                iv = directions.method().intervention(hiddenLayer, rank, directions.values, a,
                        new int[] {prefixLen != null ? prefixLen : defaultPrefix}, directions.loreft());
            }
            EnumSet<ForwardOutput> outputs = EnumSet.of(ForwardOutput.LOGITS);
            if (hiddenLayer != null) {
                outputs.add(ForwardOutput.HIDDEN);
            }
            ForwardOutputs result = m.forward(TokenBatch.single(ids), iv, hiddenLayer == null ? 0 : hiddenLayer, outputs);
            SafetensorsWriter writer = new SafetensorsWriter()
                    .metadata("model", model.toAbsolutePath().toString())
                    .metadata("family", m.config().family().modelType())
                    .metadata("dtype", m.dtype().toString())
                    .metadata("device", m.deviceName())
                    .add("logits", new long[] {ids.length, v}, result.logits())
                    .add("input_ids", new long[] {ids.length}, ids);
            if (hiddenLayer != null) {
                writer.metadata("layer", hiddenLayer.toString()).add("hidden", new long[] {ids.length, d}, result.hidden());
            }
            if (iv != null) {
                writer.metadata("vector", vector.toAbsolutePath().toString()).metadata("factor", factor.toString())
                        .metadata("prefix_len", Integer.toString(iv.prefixLen()[0]))
                        .metadata("intervention", iv.mode().name().toLowerCase(java.util.Locale.ROOT));
            }
            if (promptFile != null) {
                writer.metadata("vector", vector.toAbsolutePath().toString()).metadata("factor", factor.toString())
                        .metadata("intervention", "prompt");
                if (instruction != null) {
                    writer.metadata("instruction", instruction);
                }
            }
            writer.write(out);
            System.out.println("wrote " + out + ": logits [" + ids.length + " x " + v + "]"
                    + (hiddenLayer != null ? ", hidden [" + ids.length + " x " + d + "] at layer " + hiddenLayer : "")
                    + (iv != null ? switch (iv.mode()) {
                        case ADD -> ", " + factor + " added along W";
                        case CLAMP -> ", clamped to " + factor;
                        case NULL_OUT -> ", the positive part along W removed (factor " + factor + " < 0)";
                        case LOREFT -> ", the LoReFT " + (factor > 0 ? "injecting" : "suppressing") + " edit";
                    } + " from position " + iv.prefixLen()[0] : "")
                    + (promptFile != null ? (instruction == null ? ", no instruction (factor 0)"
                            : ", the " + (factor > 0 ? "inject" : "suppress") + " instruction before the text") : "")
                    + " (" + m.config().family().modelType() + ", " + m.dtype() + ", " + m.deviceName() + ")");
        }
        return 0;
    }

    /** Whether a vector file's metadata says method prompt (no directions: it rewrites the text). */
    private static boolean isPromptFile(Path file) throws IOException {
        try (Safetensors st = Safetensors.open(file)) {
            return SteeringMethod.PROMPT.id().equals(st.metadata().get("method"));
        }
    }

    /**
     * Directions W [r x d] (fp32) from a vector file, the layer it names, and how to apply them
     * (its 'method' metadata; a file without one is clamped).
     */
    record Directions(float[] values, Integer layer, SteeringMethod method, float[] loreft) {
        static Directions read(Path file) throws IOException {
            SteeringVectorFile.Directions d = SteeringVectorFile.readDirections(file);
            String layer = d.metadata().get("layer");
            Integer parsed = null;
            if (layer != null) {
                try {
                    parsed = Integer.parseInt(layer.trim());
                } catch (NumberFormatException e) {
                    throw new InvalidArgumentException(file + ": metadata layer \"" + layer + "\" is not an integer");
                }
            }
            SteeringMethod method = SteeringMethod.CDAS;
            String m = d.metadata().get("method");
            if (m != null) {
                try {
                    method = SteeringMethod.parse(m);
                } catch (InvalidArgumentException e) {
                    throw new InvalidArgumentException(file + ": metadata \"method\": " + e.getMessage());
                }
            }
            // a loreft file's edits (its loreft_* tensors), read and checked by the vector file reader
            float[] loreft = method == SteeringMethod.LOREFT ? SteeringVectorFile.read(file).loreft() : null;
            return new Directions(d.w(), parsed, method, loreft);
        }
    }
}
