package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Generates with and without a steering vector, side by side. */
@Command(name = "steer", mixinStandardHelpOptions = true,
        header = "Generates unsteered and steered replies side by side.",
        description = {"Generates unsteered and steered replies side by side. Steering acts on every",
            "prompt and generated token from prefix_len on, with the factors from the",
            "vector file's metadata, as the vector's method says:",
            "  cdas, das  clamp h_L's component along w to a = m * a+ (--inject) or",
            "             a = m * a- (--suppress);",
            "  diffmean   add m * f+ * w (--inject) or m * f- * w (--suppress) to h_L,",
            "             f+ = -f- = ||mu+ - mu-||;",
            "  prompt     no vector: the file's inject instruction (m * s > 0) or",
            "             suppress instruction (m * s < 0; s+ = 1, s- = -1) goes before",
            "             each prompt in its user turn, separated by a blank line;",
            "             m = 0 leaves it unsteered."})
final class SteerCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder.")
    Path model;

    @Option(names = "--vector", required = true, paramLabel = "FILE", description = "A vector written by train.")
    Path vector;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Mode mode;

    static final class Mode {
        @Option(names = "--inject", required = true, description = "Steer with m * factor_positive.")
        boolean inject;

        @Option(names = "--suppress", required = true, description = "Steer with m * factor_negative.")
        boolean suppress;
    }

    @ArgGroup(exclusive = true)
    Factor factor;

    static final class Factor {
        @Option(names = "--multiplier", paramLabel = "M", description = "The factor's multiplier m (default 1, the unit factor).")
        Double multiplier;

        @Option(names = "--grid", split = ",", paramLabel = "M1,M2,...", description = "Several multipliers, one column each.")
        double[] grid;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Prompts prompts;

    static final class Prompts {
        @Option(names = "--prompt", required = true, paramLabel = "TEXT", description = "A user message (repeatable).")
        List<String> text;

        @Option(names = "--prompts", required = true, paramLabel = "FILE", description = "User messages, one per line.")
        Path file;
    }

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "48", description = "Default: ${DEFAULT-VALUE}.")
    int maxNewTokens;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampling seed, the same for every column (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--temperature", paramLabel = "T", description = "0 = greedy (default: generation_config.json's, else 0).")
    Float temperature;

    @Option(names = "--top-p", paramLabel = "P", description = "Default: generation_config.json's, else 1.")
    Float topP;


    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        List<String> texts = prompts.text != null ? prompts.text : readPrompts(prompts.file);
        if (texts.isEmpty()) {
            throw new InvalidArgumentException((prompts.file != null ? prompts.file + ": " : "") + "no prompts");
        }
        if (maxNewTokens < 1) {
            throw new InvalidArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        }
        double[] ms = factor == null ? new double[] {1} : factor.grid != null ? factor.grid : new double[] {factor.multiplier};
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkVector(v, vector, folder);
            float temp = temperature != null ? temperature : CliSupport.generationDefault(folder, "temperature").orElse(0.0).floatValue();
            float p = topP != null ? topP : CliSupport.generationDefault(folder, "top_p").orElse(1.0).floatValue();
            GenerationOptions gen = new GenerationOptions(maxNewTokens, temp, p, 0, seed, CliSupport.stopIds(folder));
            try (Model m = runtime.create(folder)) {
                List<String> plain = CliSupport.generate(folder, m, texts, null, null, gen);
                List<List<String>> steered = new ArrayList<>();
                for (double mult : ms) {
                    steered.add(CliSupport.generate(folder, m, texts, v, v.values(mode.inject, mult), gen));
                }
                System.out.printf(Locale.ROOT, "%s \"%s\" %s (%s), %s; temperature %s, top-p %s, seed %d%n",
                        mode.inject ? "injecting" : "suppressing", v.concept(),
                        v.steersByPrompt() ? "by prompt" : "at layer " + v.layer(), CliSupport.action(v, mode.inject),
                        CliSupport.factor(v, mode.inject), temp, p, seed);
                for (int i = 0; i < texts.size(); i++) {
                    System.out.println("prompt: " + texts.get(i));
                    System.out.println("  unsteered:        " + CliSupport.oneLine(plain.get(i)));
                    for (int k = 0; k < ms.length; k++) {
                        String label = String.format(Locale.ROOT, "%s x%s:", mode.inject ? "inject" : "suppress", ms[k]);
                        System.out.printf(Locale.ROOT, "  %-17s %s%n", label, CliSupport.oneLine(steered.get(k).get(i)));
                    }
                }
            }
        }
        return 0;
    }

    private static List<String> readPrompts(Path file) throws IOException {
        return dev.cdas.io.InputFiles.readString(file).lines().filter(s -> !s.isBlank()).toList();
    }
}
