package dev.cdas.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.InvalidArgumentException;
import dev.cdas.api.SteeringVectors;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/** What the train, steer and objective commands share: the demo's location, layer checks, generation. */
final class CliSupport {
    static final String DEMO_MODEL = "demo/model";
    static final String DEMO_DATA = "demo/data/startrek.jsonl";
    static final String DEMO_HELDOUT = "demo/data/startrek.heldout.jsonl";
    /** Exit code of a run that finished but left work undone (failed or missing concepts); the reason is on stderr. */
    static final int INCOMPLETE = 1;

    private CliSupport() {}

    /**
     * The folder holding {@code demo/}: the distribution beside the jar ({@code dist/demo}, put there by
     * scripts/build.sh), else searched upwards from the jar's folder (the checkout) and from the
     * working directory.
     */
    static Path demoRoot() {
        List<Path> starts = new ArrayList<>();
        try {
            var src = CliSupport.class.getProtectionDomain().getCodeSource();
            if (src != null && src.getLocation() != null) {
                starts.add(Path.of(src.getLocation().toURI()).toAbsolutePath());
            }
        } catch (URISyntaxException | IllegalArgumentException e) {
            // Deliberate: Path.of(URI) throws the JDK's IllegalArgumentException for a non-file code source.
            // fall back to the working directory
        }
        starts.add(Path.of("").toAbsolutePath());
        for (Path start : starts) {
            for (Path p = start; p != null; p = p.getParent()) {
                if (Files.isRegularFile(p.resolve(DEMO_MODEL).resolve("config.json")) && Files.isRegularFile(p.resolve(DEMO_DATA))) {
                    return p;
                }
            }
        }
        throw new InvalidArgumentException("the bundled demo (" + DEMO_MODEL + ", " + DEMO_DATA
                + ") was not found beside the jar (demo/ in the distribution's folder), above it or above the working directory "
                + starts + "; pass --model, --data, --layer and --out, or run the launcher of a complete distribution (dist/bin/cdas-native)");
    }

    /** The --columns option's help text (train, objective, eval). */
    static final String COLUMNS_HELP = "Reads the pair fields from other columns (or JSON keys): FIELD=COLUMN[,FIELD=COLUMN...], "
            + "e.g. negative_input=instruction,positive_input=instruction,positive_output=output_concept; "
            + "fields left out keep their own names.";

    /** The --columns option's mapping, its errors naming the option. */
    static dev.cdas.data.PairColumns columns(String mapping) {
        try {
            return dev.cdas.data.PairColumns.parse(mapping);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException("--columns: " + e.getMessage());
        }
    }

    static void checkLayer(int layer, ModelFolder folder) {
        checkLayer(layer, folder, "--layer " + layer);
    }

    /** A layer read from a vector file's metadata: the message names the file. */
    static void checkLayer(int layer, ModelFolder folder, Path vectorFile) {
        checkLayer(layer, folder, vectorFile + ": metadata \"layer\" = " + layer);
    }

    private static void checkLayer(int layer, ModelFolder folder, String what) {
        int n = folder.config().numLayers();
        if (layer < 0 || layer >= n) {
            throw new InvalidArgumentException(what + " is out of range: " + folder.folder() + " has blocks 0.." + (n - 1));
        }
    }

    /**
     * A vector file against the model it will steer: its layer and its rows' size (a prompt file has
     * neither and fits every model).
     */
    static void checkVector(SteeringVectorFile v, Path file, ModelFolder folder) {
        if (v.steersByPrompt()) {
            return;
        }
        checkLayer(v.layer(), folder, file);
        rankOf(v.w(), file, folder);
    }

    /** The rows of W, checked against the model's hidden size. */
    static int rankOf(float[] w, Path file, ModelFolder folder) {
        int d = folder.config().hiddenSize();
        if (w.length == 0 || w.length % d != 0) {
            throw new InvalidArgumentException(file + ": the vector holds " + w.length
                    + " floats, but the model's hidden size is " + d + " (a vector for another model?)");
        }
        return w.length / d;
    }

    /**
     * Ids generation stops at: config.json's and generation_config.json's eos_token_id(s) and the
     * tokenizer's eos token.
     */
    static int[] stopIds(ModelFolder folder) throws IOException {
        Set<Integer> ids = new LinkedHashSet<>(folder.stopTokenIds());
        Path gen = folder.folder().resolve("generation_config.json");
        if (Files.exists(gen)) {
            JsonNode eos = new ObjectMapper().readTree(dev.cdas.io.InputFiles.readString(gen)).get("eos_token_id");
            if (eos != null && eos.isInt()) {
                ids.add(eos.asInt());
            } else if (eos != null && eos.isArray()) {
                eos.forEach(n -> ids.add(n.asInt()));
            }
        }
        return ids.stream().mapToInt(Integer::intValue).toArray();
    }

    /** generation_config.json's number {@code key}, if any. */
    static Optional<Double> generationDefault(ModelFolder folder, String key) throws IOException {
        Path gen = folder.folder().resolve("generation_config.json");
        if (!Files.exists(gen)) {
            return Optional.empty();
        }
        JsonNode v = new ObjectMapper().readTree(dev.cdas.io.InputFiles.readString(gen)).get(key);
        return v != null && v.isNumber() ? Optional.of(v.asDouble()) : Optional.empty();
    }

    /**
     * Continues each prompt (one user turn, chat template) with {@code vector} applied at its
     * layer with {@code values} (per row of W, the same for every prompt; usually
     * {@link SteeringVectorFile#values}) from prefix_len on, as the vector's method applies it
     * (the clamp for cdas/das, the addition for diffmean), or without intervention when
     * {@code vector == null}; returns the decoded replies.
     */
    static List<String> generate(ModelFolder folder, Model model, List<String> prompts, SteeringVectorFile vector,
            double[] values, GenerationOptions options) {
        return SteeringVectors.steer(folder, model, vector, values, prompts, options);
    }

    /** What steering with the vector does, for messages: "cdas: clamp w.h to m * a+" or "diffmean: add m * f+ * w". */
    static String action(SteeringVectorFile v, boolean inject) {
        if (v.steersByPrompt()) {
            return v.method() + ": the " + (inject ? "inject" : "suppress") + " instruction (by the sign of m * s"
                    + (inject ? "+" : "-") + ") before the user's message";
        }
        String f = v.steeringMethod().valueName() + (inject ? "+" : "-");
        if (v.steeringMethod() == SteeringMethod.REPS && !inject) {
            return v.method() + ": remove the positive part of h_L along w (RePS's null-out)";
        }
        if (v.steeringMethod() == SteeringMethod.LOREFT) {
            return v.method() + ": apply the " + (inject ? "injecting" : "suppressing") + " LoReFT edit h_L + R^T (M h_L + b - R h_L)";
        }
        return v.method() + ": " + switch (v.steeringMethod().mode()) {
            case CLAMP -> "clamp w.h_L to m * " + f;
            case ADD -> "add m * " + f + " * w to h_L";
            case LOREFT -> "apply the LoReFT edit h_L + R^T (M h_L + b - R h_L)";
            case NULL_OUT -> "remove the positive part of h_L along w";
        };
    }

    /** The factor steering uses, for messages: "a+ = 2.5000" or "f- = -3.1000". */
    static String factor(SteeringVectorFile v, boolean inject) {
        if (v.steersByPrompt()) {
            String instruction = v.promptSteering().instruction(inject ? v.factorPositive()[0] : v.factorNegative()[0]);
            return "s" + (inject ? "+" : "-") + " = " + TrainCommand.fmt(inject ? v.factorPositive() : v.factorNegative())
                    + (instruction == null ? " (no instruction)" : " (\"" + oneLine(instruction) + "\")");
        }
        return v.steeringMethod().valueName() + (inject ? "+" : "-") + " = "
                + TrainCommand.fmt(inject ? v.factorPositive() : v.factorNegative());
    }

    static String oneLine(String s) {
        return s.replace("\r", "").replace("\n", " / ").strip();
    }
}
