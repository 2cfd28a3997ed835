package dev.cdas.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.InterventionMode;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.AtomicFiles;
import dev.cdas.train.SteeringEvaluation;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Measures what a steering vector does on held-out pairs. */
@Command(name = "eval", mixinStandardHelpOptions = true,
        header = "Measures a steering vector on held-out pairs.",
        description = {"Evaluates a steering vector on held-out pairs, steering from prefix_len on with the factors from",
            "the vector's metadata as its method says (cdas, das: clamp h_L's component along w to a = m * a+ to inject,",
            "m * a- to suppress; diffmean: add m * f+ * w or m * f- * w to h_L; prompt: put the file's inject",
            "(m * s > 0) or suppress (m * s < 0) instruction before the prompt, in its user turn, and compare at the",
            "same response or continuation tokens):",
            " * on neutral prompts (the pairs' negative_input prompts, distinct, or --prompts), teacher-forced over the",
            "   prompt plus its unsteered continuation (greedy unless --temperature), the per-token KL(unsteered||steered)",
            "   and JSD of the next-token distributions at the positions predicting the continuation, for both;",
            " * the mean per-token log-likelihood of concept responses (positive_output after negative_input) injected",
            "   vs unsteered, and of neutral responses (negative_output after positive_input) suppressed vs unsteered.",
            "Prints a summary and then one JSON object (its last line), also written atomically to --out; its",
            "clamp_inject/clamp_suppress are the values used (clamp values, or added amounts for diffmean)."})
final class EvalCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder.")
    Path model;

    @Option(names = "--vector", required = true, paramLabel = "FILE", description = "A vector written by train.")
    Path vector;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Held-out pairs, .jsonl or .parquet.")
    Path data;

    @Option(names = "--concept", paramLabel = "C",
            description = "Only the pairs of this concept (default: all pairs, or the vector's concept when the file holds several).")
    String concept;

    @Option(names = "--columns", paramLabel = "FIELD=COLUMN,...", description = CliSupport.COLUMNS_HELP)
    String columns;

    @Option(names = "--multiplier", paramLabel = "M", defaultValue = "1", description = "The factors' multiplier m (default: ${DEFAULT-VALUE}).")
    double multiplier;

    @Option(names = "--prompts", paramLabel = "FILE", description = "Neutral prompts, one per line (default: the pairs' negative_input).")
    Path promptsFile;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "32",
            description = "Length of the unsteered continuations of the neutral prompts (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--max-response-tokens", paramLabel = "N", defaultValue = "" + ResponseTruncation.DEFAULT_MAX_TOKENS,
            description = "Responses are cut to N tokens (default: ${DEFAULT-VALUE}).")
    int maxResponseTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0",
            description = "Of the neutral continuations: 0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Sampling seed when --temperature > 0 (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--out", paramLabel = "FILE", description = "Also write the JSON object here (atomically).")
    Path out;



    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        if (concept != null && concept.isBlank()) {
            throw new InvalidArgumentException("--concept is empty");
        }
        if (!Double.isFinite(multiplier)) {
            throw new InvalidArgumentException("--multiplier must be a finite number, got " + multiplier);
        }
        if (maxNewTokens < 1) {
            throw new InvalidArgumentException("--max-new-tokens must be at least 1, got " + maxNewTokens);
        }
        if (maxResponseTokens < 1) {
            throw new InvalidArgumentException("--max-response-tokens must be at least 1, got " + maxResponseTokens);
        }
        if (!(temperature >= 0)) {
            throw new InvalidArgumentException("--temperature must be >= 0, got " + temperature);
        }
        if (out != null && Files.isDirectory(out)) {
            throw new InvalidArgumentException("--out " + out + " is a folder; give a file name");
        }
        if (out != null) {
            dev.cdas.io.InputFiles.requireReplaceable(out);
        }
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        List<ConceptPair> pairs = readPairs(v);
        String used = pairs.getFirst().concept();
        List<String> neutral = promptsFile != null ? readPrompts(promptsFile)
                : new ArrayList<String>(new LinkedHashSet<>(pairs.stream().map(ConceptPair::negativeInput).toList()));
        double[] aInject = v.values(true, multiplier);
        double[] aSuppress = v.values(false, multiplier);
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkVector(v, vector, folder);
            GenerationOptions gen = new GenerationOptions(maxNewTokens, temperature, 1f, 0, seed, CliSupport.stopIds(folder));
            try (Model m = runtime.create(folder)) {
                SteeringEvaluation eval = new SteeringEvaluation(m, folder.prompts(), v, multiplier, maxResponseTokens);
                SteeringEvaluation.Divergences div = eval.divergences(neutral, gen);
                SteeringEvaluation.LogLikelihood conceptLl = eval.logLikelihood(pairs, true);
                SteeringEvaluation.LogLikelihood neutralLl = eval.logLikelihood(pairs, false);
                printSummary(v, used, pairs.size(), aInject, aSuppress, div, conceptLl, neutralLl);
                String json = json(v, used, aInject, aSuppress, div, conceptLl, neutralLl);
                if (out != null) {
                    AtomicFiles.write(out, (json + "\n").getBytes(StandardCharsets.UTF_8));
                    System.out.println("wrote " + out);
                }
                System.out.println(json);
            }
        }
        return 0;
    }

    private List<ConceptPair> readPairs(SteeringVectorFile v) throws IOException {
        if (concept != null) {
            return PairReader.read(data, concept, CliSupport.columns(columns));
        }
        List<ConceptPair> all = PairReader.read(data, null, CliSupport.columns(columns));
        if (all.stream().map(ConceptPair::concept).distinct().count() > 1) {
            // several concepts: the vector's own
            return PairReader.read(data, v.concept(), CliSupport.columns(columns));
        }
        return all;
    }

    private static List<String> readPrompts(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new InvalidArgumentException(file + ": no such prompts file");
        }
        List<String> texts = dev.cdas.io.InputFiles.readString(file).lines().filter(s -> !s.isBlank()).toList();
        if (texts.isEmpty()) {
            throw new InvalidArgumentException(file + ": no prompts");
        }
        return texts;
    }

    private void printSummary(SteeringVectorFile v, String used, int pairs, double[] aInject, double[] aSuppress,
            SteeringEvaluation.Divergences div, SteeringEvaluation.LogLikelihood c, SteeringEvaluation.LogLikelihood n) {
        String f = v.steeringMethod().valueName();
        System.out.printf(Locale.ROOT, "eval of \"%s\" (%s, %s) on %d held-out pairs of %s; multiplier %s: "
                + "inject %s = %s, suppress %s = %s (%s)%n", used, v.method(),
                v.steersByPrompt() ? "no layer" : "layer " + v.layer() + ", rank " + v.rank(), pairs, data, multiplier,
                f, TrainCommand.fmt(aInject), f, TrainCommand.fmt(aSuppress), intervention(v));
        System.out.printf(Locale.ROOT, "neutral prompts (%d, %d continuation tokens, %s, teacher-forced), per token:%n",
                div.prompts(), div.tokens(), temperature == 0 ? "greedy" : "temperature " + temperature);
        for (var e : List.of(java.util.Map.entry("inject:  ", div.inject()), java.util.Map.entry("suppress:", div.suppress()))) {
            System.out.printf(Locale.ROOT, "  %s KL(unsteered||steered) %.5f (max %.5f), JSD %.5f (max %.5f)%n", e.getKey(),
                    e.getValue().meanKl(), e.getValue().maxKl(), e.getValue().meanJsd(), e.getValue().maxJsd());
        }
        System.out.println("mean log-likelihood per response token:");
        System.out.printf(Locale.ROOT, "  concept responses after neutral prompts (%d pairs, %d tokens): unsteered %.4f, "
                + "injected %.4f, change %+.4f%n", c.pairs(), c.tokens(), c.unsteered(), c.steered(), c.change());
        System.out.printf(Locale.ROOT, "  neutral responses after concept prompts (%d pairs, %d tokens): unsteered %.4f, "
                + "suppressed %.4f, change %+.4f%n", n.pairs(), n.tokens(), n.unsteered(), n.steered(), n.change());
    }

    private String json(SteeringVectorFile v, String used, double[] aInject, double[] aSuppress,
            SteeringEvaluation.Divergences div, SteeringEvaluation.LogLikelihood c, SteeringEvaluation.LogLikelihood n)
            throws IOException {
        StringWriter s = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(s)) {
            g.writeStartObject();
            g.writeStringField("model", model.toString());
            g.writeStringField("vector", vector.toString());
            g.writeStringField("data", data.toString());
            g.writeStringField("concept", used);
            g.writeStringField("method", v.method());
            g.writeStringField("intervention", v.steersByPrompt() ? "prompt" : v.steeringMethod().mode().name().toLowerCase(Locale.ROOT));
            if (v.steersByPrompt()) {
                g.writeNullField("layer");
            } else {
                g.writeNumberField("layer", v.layer());
            }
            g.writeNumberField("rank", v.rank());
            g.writeNumberField("multiplier", multiplier);
            array(g, "factor_positive", v.factorPositive());
            array(g, "factor_negative", v.factorNegative());
            array(g, "clamp_inject", aInject);
            array(g, "clamp_suppress", aSuppress);
            g.writeNumberField("max_new_tokens", maxNewTokens);
            g.writeNumberField("max_response_tokens", maxResponseTokens);
            g.writeNumberField("temperature", temperature);
            g.writeNumberField("seed", seed);
            g.writeObjectFieldStart("neutral_prompts");
            g.writeNumberField("prompts", div.prompts());
            g.writeNumberField("tokens", div.tokens());
            divergence(g, "inject", div.inject());
            divergence(g, "suppress", div.suppress());
            g.writeEndObject();
            logLikelihood(g, "concept_responses", "loglik_injected", c);
            logLikelihood(g, "neutral_responses", "loglik_suppressed", n);
            g.writeEndObject();
        }
        return s.toString();
    }

    private static String intervention(SteeringVectorFile v) {
        if (v.steersByPrompt()) {
            return "signs choosing the instruction put before the prompt";
        }
        return switch (v.steeringMethod()) {
            case REPS -> "added along w; a negative value removes the positive part along w (RePS's null-out)";
            case LOREFT -> "signs picking the injecting or suppressing LoReFT edit";
            default -> v.steeringMethod().mode() == InterventionMode.ADD ? "added along w" : "clamp values";
        };
    }

    private static void array(JsonGenerator g, String name, double[] values) throws IOException {
        g.writeArrayFieldStart(name);
        for (double x : values) {
            g.writeNumber(x);
        }
        g.writeEndArray();
    }

    private static void divergence(JsonGenerator g, String name, SteeringEvaluation.Divergence d) throws IOException {
        g.writeObjectFieldStart(name);
        g.writeNumberField("kl", d.meanKl());
        g.writeNumberField("jsd", d.meanJsd());
        g.writeNumberField("kl_max", d.maxKl());
        g.writeNumberField("jsd_max", d.maxJsd());
        g.writeEndObject();
    }

    private static void logLikelihood(JsonGenerator g, String name, String steeredName, SteeringEvaluation.LogLikelihood l)
            throws IOException {
        g.writeObjectFieldStart(name);
        g.writeNumberField("pairs", l.pairs());
        g.writeNumberField("tokens", l.tokens());
        g.writeNumberField("loglik_unsteered", l.unsteered());
        g.writeNumberField(steeredName, l.steered());
        g.writeNumberField("delta", l.change());
        g.writeEndObject();
    }
}
