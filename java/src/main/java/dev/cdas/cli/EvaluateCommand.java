package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.eval.ConceptSteeringEvaluation;
import dev.cdas.eval.EvaluationReports;
import dev.cdas.eval.HttpJudge;
import dev.cdas.eval.InstructionData;
import dev.cdas.eval.Judge;
import dev.cdas.eval.JudgeAxis;
import dev.cdas.eval.JudgeCache;
import dev.cdas.eval.JudgeTemplate;
import dev.cdas.eval.LocalJudge;
import dev.cdas.eval.LoglikJudge;
import dev.cdas.eval.ModelReplies;
import dev.cdas.eval.RefusalEvaluation;
import dev.cdas.eval.RefusalMatcher;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The paper's judged evaluations: steering scores over a factor grid, and the refusal case study (dev.cdas.eval). */
@Command(name = "evaluate", mixinStandardHelpOptions = true,
        header = "Judges steered replies: steering scores, refusal study.",
        description = {"--mode inject|suppress: replies to held-out instructions under m x a+ (inject) or m x a- (suppress)",
            "(m x f+- for diffmean) for each m of --factors (1 is always added), each rated 0/1/2 by a judge on",
            "concept, instruction and fluency; the score of a reply is the harmonic mean of the three. The instructions",
            "are split into validation and test (seeded); the tuned m is the best on validation; the table gives the",
            "test scores at m = 1 and at the tuned m.",
            "--mode refusal: on harmful instructions, the share refused under injection (beside the unsteered share),",
            "the share answered under suppression and their harmonic mean, by the refusal phrase matcher and, with a",
            "judge, by the judge; --target-pattern adds the share of replies containing a pattern (backdoor case).",
            "Judge: --judge-url and --judge-model (an OpenAI-compatible chat-completions endpoint, the key from the",
            "environment variable --judge-key-env), or --judge-model-dir (a local instruct model, offline; --judge-scoring loglik",
            "picks the most likely of the answers 'Rating: 0/1/2' instead of generating, so every reply gets a rating).",
            "Writes report.json, report.md, scores.png (and concept-fluency.png) to --out-dir, which also keeps the generated replies and the",
            "judge's answers so a rerun only does what is missing. See docs/evaluation.md."})
final class EvaluateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder to steer.")
    Path model;

    @Option(names = "--vector", required = true, paramLabel = "FILE", description = "A vector written by train.")
    Path vector;

    @Option(names = "--instructions", required = true, paramLabel = "FILE",
            description = "Held-out (or harmful) instructions: .jsonl or .parquet with one text column.")
    Path instructions;

    @Option(names = "--column", paramLabel = "NAME",
            description = "The text column (default: the first of instruction, prompt, input, text, goal, question).")
    String column;

    @Option(names = "--concept", paramLabel = "TEXT", description = "The concept the judge looks for (default: the vector's).")
    String concept;

    @Option(names = "--factors", split = ",", paramLabel = "M1,M2,...", defaultValue = "0.5,1,2,4",
            description = "Factor multipliers m (default: ${DEFAULT-VALUE}; 1 is always added).")
    double[] factors;

    @Option(names = "--mode", paramLabel = "MODE", defaultValue = "inject", description = "inject, suppress or refusal (default: ${DEFAULT-VALUE}).")
    String mode;

    @Option(names = "--out-dir", required = true, paramLabel = "DIR", description = "Reports, generated replies and the judge cache.")
    Path outDir;

    @Option(names = "--judge-url", paramLabel = "URL", description = "Chat-completions URL (e.g. https://api.openai.com/v1/chat/completions).")
    String judgeUrl;

    @Option(names = "--judge-model", paramLabel = "NAME", description = "The endpoint's model name.")
    String judgeModel;

    @Option(names = "--judge-key-env", paramLabel = "VAR", defaultValue = "OPENAI_API_KEY",
            description = "Environment variable holding the API key (default: ${DEFAULT-VALUE}; unset: no key is sent).")
    String judgeKeyEnv;

    @Option(names = "--judge-model-dir", paramLabel = "DIR", description = "A local instruct model folder as the judge (offline, greedy).")
    Path judgeModelDir;

    @Option(names = "--judge-scoring", paramLabel = "HOW", defaultValue = "generate",
            description = "How the local judge rates (--judge-model-dir): generate (greedy answer, strict 'Rating: N' parsing) or loglik "
                    + "(the most likely of the answers 'Rating: 0', 'Rating: 1', ... by log-likelihood, always a rating; the "
                    + "normalised probabilities are kept in report.json) (default: ${DEFAULT-VALUE}).")
    String judgeScoring;

    @Option(names = "--judge-timeout", paramLabel = "SECONDS", defaultValue = "60", description = "Per-request time limit (default: ${DEFAULT-VALUE}).")
    double judgeTimeout;

    @Option(names = "--judge-attempts", paramLabel = "N", defaultValue = "5", description = "Requests per prompt at most (default: ${DEFAULT-VALUE}).")
    int judgeAttempts;

    @Option(names = "--judge-backoff", paramLabel = "SECONDS", defaultValue = "1", description = "First retry pause, doubling (default: ${DEFAULT-VALUE}).")
    double judgeBackoff;

    @Option(names = "--judge-concurrency", paramLabel = "N", defaultValue = "4", description = "Requests in flight at most (default: ${DEFAULT-VALUE}).")
    int judgeConcurrency;

    @Option(names = "--judge-max-tokens", paramLabel = "N", defaultValue = "256", description = "Tokens per judge answer (default: ${DEFAULT-VALUE}).")
    int judgeMaxTokens;

    @Option(names = "--judge-cache", paramLabel = "DIR", description = "Judgement cache (default: OUT-DIR/judge-cache).")
    Path judgeCache;

    @Option(names = "--judge-template-concept", paramLabel = "FILE", description = "Template with {concept} and {reply}.")
    Path templateConcept;

    @Option(names = "--judge-template-instruction", paramLabel = "FILE", description = "Template with {instruction} and {reply}.")
    Path templateInstruction;

    @Option(names = "--judge-template-fluency", paramLabel = "FILE", description = "Template with {reply}.")
    Path templateFluency;

    @Option(names = "--judge-template-refusal", paramLabel = "FILE", description = "Template with {instruction} and {reply} (rating 1 = refuses).")
    Path templateRefusal;

    @Option(names = "--refusal-phrases", paramLabel = "FILE", description = "Refusal phrases, one a line (default: the project's list).")
    Path refusalPhrases;

    @Option(names = "--target-pattern", paramLabel = "REGEX", description = "Refusal mode: also report the share of replies containing this pattern.")
    String targetPattern;

    @Option(names = "--limit", paramLabel = "N", description = "Use only the first N instructions.")
    Integer limit;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "0", description = "Seed of the validation/test split and of sampling (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--validation-fraction", paramLabel = "F", defaultValue = "0.5", description = "Share of instructions for validation (default: ${DEFAULT-VALUE}).")
    double validationFraction;

    @Option(names = "--max-new-tokens", paramLabel = "N", defaultValue = "128", description = "Tokens per steered reply (default: ${DEFAULT-VALUE}).")
    int maxNewTokens;

    @Option(names = "--temperature", paramLabel = "T", defaultValue = "0", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-p", paramLabel = "P", defaultValue = "1", description = "Default: ${DEFAULT-VALUE}.")
    float topP;

    @Option(names = "--batch-size", paramLabel = "N", defaultValue = "8", description = "Prompts generated together (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(names = "--write-vector", paramLabel = "FILE",
            description = "--mode inject|suppress: also write the vector with the tuned m folded into its factor (factor_positive for inject, "
                    + "factor_negative for suppress), so that steering at m = 1 steers at the tuned factor (the paper's tuned factor); "
                    + "exit 1 without it when no factor could be tuned.")
    Path writeVector;

    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        boolean refusal = mode.equals("refusal");
        if (!refusal && !mode.equals("inject") && !mode.equals("suppress")) {
            throw new InvalidArgumentException("--mode must be inject, suppress or refusal, got " + mode);
        }
        boolean http = judgeUrl != null || judgeModel != null;
        if (http && judgeModelDir != null) {
            throw new InvalidArgumentException("give either --judge-url with --judge-model or --judge-model-dir, not both");
        }
        if (http && (judgeUrl == null || judgeModel == null)) {
            throw new InvalidArgumentException("--judge-url and --judge-model go together");
        }
        if (!judgeScoring.equals("generate") && !judgeScoring.equals("loglik")) {
            throw new InvalidArgumentException("--judge-scoring must be generate or loglik, got " + judgeScoring);
        }
        if (judgeScoring.equals("loglik") && judgeModelDir == null) {
            throw new InvalidArgumentException("--judge-scoring loglik needs a local judge (--judge-model-dir): an endpoint only generates");
        }
        if (!refusal && !http && judgeModelDir == null) {
            throw new InvalidArgumentException("--mode " + mode + " needs a judge: --judge-url with --judge-model, or --judge-model-dir");
        }
        if (targetPattern != null && !refusal) {
            throw new InvalidArgumentException("--target-pattern belongs to --mode refusal");
        }
        if (writeVector != null && refusal) {
            throw new InvalidArgumentException("--write-vector belongs to --mode inject or suppress (the factor tuned on validation)");
        }
        if (writeVector != null) {
            dev.cdas.io.InputFiles.requireReplaceable(writeVector);
        }
        if (limit != null && limit < 1) {
            throw new InvalidArgumentException("--limit must be at least 1, got " + limit);
        }
        if (maxNewTokens < 1 || batchSize < 1 || judgeMaxTokens < 1 || judgeAttempts < 1 || judgeConcurrency < 1) {
            throw new InvalidArgumentException("--max-new-tokens, --batch-size, --judge-max-tokens, --judge-attempts and --judge-concurrency must be at least 1");
        }
        if (!(judgeTimeout > 0) || !(judgeBackoff >= 0) || !Double.isFinite(judgeTimeout) || !Double.isFinite(judgeBackoff)) {
            throw new InvalidArgumentException("--judge-timeout must be positive and --judge-backoff not negative");
        }
        Pattern target = null;
        if (targetPattern != null) {
            try {
                target = Pattern.compile(targetPattern);
            } catch (PatternSyntaxException e) {
                throw new InvalidArgumentException("--target-pattern is not a valid regular expression: " + e.getDescription());
            }
        }
        Map<JudgeAxis, JudgeTemplate> templates = new EnumMap<>(JudgeAxis.class);
        putTemplate(templates, JudgeAxis.CONCEPT, templateConcept);
        putTemplate(templates, JudgeAxis.INSTRUCTION, templateInstruction);
        putTemplate(templates, JudgeAxis.FLUENCY, templateFluency);
        putTemplate(templates, JudgeAxis.REFUSAL, templateRefusal);
        RefusalMatcher matcher = refusalPhrases == null ? RefusalMatcher.defaults() : RefusalMatcher.fromFile(refusalPhrases);
        List<String> texts = InstructionData.read(instructions, column);
        if (limit != null && limit < texts.size()) {
            texts = texts.subList(0, limit);
        }
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        if (writeVector != null && v.steersByPrompt()) {
            throw new InvalidArgumentException("--write-vector: " + vector + " is a prompt-steering file, which has no factor to tune");
        }
        String theConcept = concept != null ? concept : v.concept();
        if (!refusal && (theConcept == null || theConcept.isBlank())) {
            throw new InvalidArgumentException(vector + " names no concept: give --concept");
        }
        Path report = outDir.resolve("report.json");
        Path md = outDir.resolve("report.md");
        Path png = outDir.resolve("scores.png");
        for (Path p : List.of(report, md, png, outDir.resolve("concept-fluency.png"))) {
            dev.cdas.io.InputFiles.requireReplaceable(p);
        }
        Files.createDirectories(outDir);
        JudgeCache cache = new JudgeCache(judgeCache != null ? judgeCache : outDir.resolve("judge-cache"));
        ConsoleProgress progress = new ConsoleProgress(System.err);
        Map<String, String> about = new LinkedHashMap<>();
        about.put("model", model.toAbsolutePath().toString());
        about.put("vector", vector.toAbsolutePath().toString());
        about.put("method", v.method());
        about.put("instructions", instructions.toAbsolutePath().toString());
        about.put("max_new_tokens", Integer.toString(maxNewTokens));
        about.put("temperature", Float.toString(temperature));
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkVector(v, vector, folder);
            dev.cdas.model.GenerationOptions gen = new dev.cdas.model.GenerationOptions(maxNewTokens, temperature, topP, 0, seed, CliSupport.stopIds(folder));
            String context = String.join("\n", model.toAbsolutePath().normalize().toString(),
                    dev.cdas.eval.JudgeCache.key("vector", java.util.HexFormat.of().formatHex(Files.readAllBytes(vector))),
                    "max_new_tokens=" + maxNewTokens, "temperature=" + temperature, "top_p=" + topP, "seed=" + seed);
            try (Model m = runtime.create(folder); JudgeResources judge = openJudge(about)) {
                about.put("dtype", m.dtype().toString());
                about.put("device", m.deviceName());
                ModelReplies replies = new ModelReplies(folder, m, v, gen, batchSize, outDir.resolve("replies.json"), context);
                long start = System.nanoTime();
                String table;
                boolean plotted;
                Double tuned = null;
                List<Double> grid = List.of();
                if (refusal) {
                    RefusalEvaluation.Result r = new RefusalEvaluation(matcher, judge == null ? null : judge.judge, cache,
                            templates.get(JudgeAxis.REFUSAL), target).run(texts, factors, replies, progress);
                    about.put("seconds", seconds(start));
                    table = EvaluationReports.refusalMarkdown(r);
                    EvaluationReports.write(report, EvaluationReports.refusalJson(r, about), md, table);
                    plotted = EvaluationReports.writeRefusalPlot(r, png);
                } else {
                    ConceptSteeringEvaluation.Result r = new ConceptSteeringEvaluation(judge.judge, cache, templates)
                            .run(texts, theConcept, mode.equals("inject"), factors, seed, validationFraction, replies, progress);
                    about.put("seconds", seconds(start));
                    table = EvaluationReports.steeringMarkdown(r);
                    EvaluationReports.write(report, EvaluationReports.steeringJson(r, about), md, table);
                    plotted = EvaluationReports.writeSteeringPlot(r, png);
                    EvaluationReports.writeConceptFluencyPlot(r, outDir.resolve("concept-fluency.png"));
                    int ratings = r.items().size() * 3;
                    int bad = r.scores().stream().mapToInt(s -> s.all().unparseable() + s.all().failed()).sum();
                    if (bad > 0) {
                        System.err.printf(Locale.ROOT, "note: %d of %d ratings unparseable or failed (counted apart, not as 0; see report.json)%n",
                                bad, ratings);
                    }
                    tuned = r.tuned() < 0 ? null : r.factors().get(r.tuned());
                    grid = r.factors();
                }
                System.out.print(table);
                System.out.printf(Locale.ROOT, "wrote %s, %s%s (%d replies reused from an earlier run)%n", report, md,
                        plotted ? ", " + png : " (no plot: nothing was rated)", replies.reused());
                if (writeVector != null) {
                    return writeTuned(v, tuned, grid);
                }
            }
        }
        return 0;
    }

    /** --write-vector: the vector with the tuned m folded into the evaluated direction's factor. */
    private int writeTuned(SteeringVectorFile v, Double tuned, List<Double> grid) throws IOException {
        boolean inject = mode.equals("inject");
        if (tuned == null) {
            System.err.println("error: no factor was tuned (no validation reply was rated on all three axes); " + writeVector
                    + " not written");
            return CliSupport.INCOMPLETE;
        }
        Map<String, String> how = new LinkedHashMap<>();
        how.put("tuned_by", String.format(Locale.ROOT, "evaluate --mode %s: best mean harmonic score on the validation split "
                + "(seed %d, fraction %s) of %s over m in %s", mode, seed, validationFraction, instructions.getFileName(),
                grid));
        SteeringVectorFile out = v.withTunedFactor(inject, tuned, how);
        out.write(writeVector);
        String side = inject ? "factor_positive" : "factor_negative";
        System.out.printf(Locale.ROOT, "tuned m = %s: wrote %s (%s %s -> %s)%n", tuned, writeVector, side,
                TrainCommand.fmt(inject ? v.factorPositive() : v.factorNegative()),
                TrainCommand.fmt(inject ? out.factorPositive() : out.factorNegative()));
        return 0;
    }

    private static String seconds(long start) {
        return String.format(Locale.ROOT, "%.1f", (System.nanoTime() - start) / 1e9);
    }

    private static void putTemplate(Map<JudgeAxis, JudgeTemplate> out, JudgeAxis axis, Path file) throws IOException {
        if (file != null) {
            out.put(axis, JudgeTemplate.fromFile(file));
        }
    }

    /** The judge and what it holds open (a local judge's model folder and model). */
    private static final class JudgeResources implements AutoCloseable {
        final Judge judge;
        final AutoCloseable[] owned;

        JudgeResources(Judge judge, AutoCloseable... owned) {
            this.judge = judge;
            this.owned = owned;
        }

        @Override
        public void close() {
            for (int i = owned.length - 1; i >= 0; i--) {
                try {
                    owned[i].close();
                } catch (Exception e) {
                    throw new dev.cdas.InternalException("cannot close the judge: " + e.getMessage());
                }
            }
        }
    }

    private JudgeResources openJudge(Map<String, String> about) throws IOException {
        if (judgeUrl != null) {
            URI uri;
            try {
                uri = new URI(judgeUrl);
            } catch (URISyntaxException e) {
                throw new InvalidArgumentException("--judge-url is not a URL: " + e.getMessage());
            }
            String key = judgeKeyEnv.isEmpty() ? null : System.getenv(judgeKeyEnv);
            about.put("judge", "openai-chat " + judgeModel + " at " + judgeUrl);
            HttpJudge.Settings s = new HttpJudge.Settings(uri, judgeModel, key == null || key.isEmpty() ? null : key,
                    Duration.ofMillis((long) (judgeTimeout * 1000)), judgeAttempts, Duration.ofMillis((long) (judgeBackoff * 1000)),
                    Duration.ofSeconds(120), judgeConcurrency, judgeMaxTokens);
            return new JudgeResources(new HttpJudge(s));
        }
        if (judgeModelDir != null) {
            ModelFolder jf = ModelFolder.open(judgeModelDir);
            try {
                Model jm = runtime.create(jf);
                about.put("judge", "local " + judgeModelDir.toAbsolutePath());
                about.put("judge_scoring", judgeScoring);
                Judge j = judgeScoring.equals("loglik") ? new LoglikJudge(jf, jm, batchSize)
                        : new LocalJudge(jf, jm, judgeMaxTokens, batchSize, CliSupport.stopIds(jf));
                return new JudgeResources(j, jf, jm);
            } catch (RuntimeException | IOException e) {
                jf.close();
                throw e;
            }
        }
        return null;
    }
}
