package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.eval.MultipleChoiceData;
import dev.cdas.eval.MultipleChoiceFormat;
import dev.cdas.eval.MultipleChoiceItem;
import dev.cdas.eval.MultipleChoiceResult;
import dev.cdas.eval.MultipleChoiceScorer;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/** Multiple-choice utility benchmarks scored by log-likelihood, steered or not (dev.cdas.eval). */
@Command(name = "mc", mixinStandardHelpOptions = true,
        header = "Scores MMLU or TruthfulQA by log-likelihood, steered or not.",
        description = {"Scores each question's choices by their log-likelihood after the prompt, as lm-evaluation-harness",
            "does, and writes every item's log-likelihoods, prediction and answer with the accuracy to --out:",
            "  mmlu            zero-shot, continuations \" A\" \" B\" ...; accuracy of the argmax",
            "  truthfulqa-mc1  \"Q: {question}\\nA:\" and \" {choice}\"; correct when the argmax is the first true choice",
            "  truthfulqa-mc2  the probability mass of the true choices, normalised over all (mean as accuracy)",
            "With --vector the vector steers every position from prefix_len on (1 with a BOS, else 0) as in steer:",
            "the clamp to m * a+ (--inject) or m * a- (--suppress) for cdas/das, the addition of m * f+- * w for diffmean;",
            "a prompt file (train --method prompt) puts its inject or suppress instruction and a blank line before the",
            "context (and any --preamble) instead.",
            "Data: JSONL or Parquet as downloaded (MMLU: question, choices, answer, subject; TruthfulQA: question,",
            "mc1_targets / mc2_targets with choices and labels). See docs/evaluation.md."})
final class McCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder (with tokenizer.json).")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Questions: .jsonl or .parquet.")
    Path data;

    @Option(names = "--format", required = true, paramLabel = "FORMAT", converter = FormatConverter.class,
            description = "mmlu, truthfulqa-mc1 or truthfulqa-mc2.")
    MultipleChoiceFormat format;

    @Option(names = "--out", required = true, paramLabel = "R.json", description = "The report (written atomically).")
    Path out;

    @Option(names = "--vector", paramLabel = "FILE", description = "Steer with this vector (written by train).")
    Path vector;

    @Option(names = "--multiplier", paramLabel = "M", description = "The factor's multiplier m, with --vector (default 1).")
    Double multiplier;

    @ArgGroup(exclusive = true)
    Mode mode;

    static final class Mode {
        @Option(names = "--inject", required = true, description = "With --vector: steer with m * factor_positive.")
        boolean inject;

        @Option(names = "--suppress", required = true, description = "With --vector: steer with m * factor_negative.")
        boolean suppress;
    }

    @Option(names = "--limit", paramLabel = "N", description = "Score only the first N questions.")
    Integer limit;

    @Option(names = "--preamble", paramLabel = "FILE",
            description = "Text put verbatim before every prompt (e.g. a few-shot block); default none.")
    Path preamble;

    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        if (vector == null && (mode != null || multiplier != null)) {
            throw new InvalidArgumentException("--inject, --suppress and --multiplier steer with a vector: give --vector");
        }
        if (vector != null && mode == null) {
            throw new InvalidArgumentException("--vector needs --inject or --suppress");
        }
        if (limit != null && limit < 1) {
            throw new InvalidArgumentException("--limit must be at least 1, got " + limit);
        }
        if (multiplier != null && !Double.isFinite(multiplier)) {
            throw new InvalidArgumentException("--multiplier must be a finite number, got " + multiplier);
        }
        dev.cdas.io.InputFiles.requireReplaceable(out);
        String pre = preamble == null ? "" : dev.cdas.io.InputFiles.readString(preamble);
        List<MultipleChoiceItem> items = MultipleChoiceData.read(data, format, pre);
        if (limit != null && limit < items.size()) {
            items = items.subList(0, limit);
        }
        double m = multiplier == null ? 1 : multiplier;
        SteeringVectorFile v = vector == null ? null : SteeringVectorFile.read(vector);
        Map<String, String> about = new LinkedHashMap<>();
        about.put("model", model.toAbsolutePath().toString());
        about.put("data", data.toAbsolutePath().toString());
        if (preamble != null) {
            about.put("preamble", preamble.toAbsolutePath().toString());
        }
        try (ModelFolder folder = ModelFolder.open(model)) {
            double[] values = null;
            if (v != null) {
                CliSupport.checkVector(v, vector, folder);
                values = v.values(mode.inject, m);
                about.put("vector", vector.toAbsolutePath().toString());
                about.put("steering", mode.inject ? "inject" : "suppress");
                about.put("multiplier", Double.toString(m));
                about.put("action", CliSupport.action(v, mode.inject));
                about.put("factor", CliSupport.factor(v, mode.inject));
            }
            MultipleChoiceResult result;
            try (Model mdl = runtime.create(folder)) {
                MultipleChoiceScorer scorer = new MultipleChoiceScorer(mdl, folder.tokenizer(), v, values);
                if (v != null) {
                    about.put("prefix_len", Integer.toString(scorer.prefixLen()));
                }
                about.put("dtype", mdl.dtype().toString());
                about.put("device", mdl.deviceName());
                long start = System.nanoTime();
                result = scorer.score(items, format, new ConsoleProgress(System.err));
                about.put("seconds", String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9));
            }
            result.write(out, about);
            System.out.printf(Locale.ROOT, "%s: %s %.4f over %d questions%s; wrote %s%n", format.id(),
                    format == MultipleChoiceFormat.TRUTHFULQA_MC2 ? "mc2 score" : "accuracy", result.accuracy(), result.items().size(),
                    v == null ? ", unsteered" : String.format(Locale.ROOT, ", %s \"%s\" x%s (%s, %s)", mode.inject ? "injecting" : "suppressing",
                            v.concept(), m, CliSupport.action(v, mode.inject), CliSupport.factor(v, mode.inject)),
                    out);
        }
        return 0;
    }

    /** The --format value, with the choices in the error. */
    static final class FormatConverter implements ITypeConverter<MultipleChoiceFormat> {
        @Override
        public MultipleChoiceFormat convert(String value) {
            try {
                return MultipleChoiceFormat.parse(value);
            } catch (InvalidArgumentException e) {
                throw new TypeConversionException(e.getMessage());
            }
        }
    }
}
