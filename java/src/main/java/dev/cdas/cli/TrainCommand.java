package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.fanout.Shard;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.InterventionMode;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.train.Batch;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.DiffMean;
import dev.cdas.train.Directions;
import dev.cdas.train.ModelSteeringFactors;
import dev.cdas.train.Rng;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainJob;
import dev.cdas.train.TrainingPreset;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Trains a steering vector (cdas, das or diffmean); with no arguments, on the bundled demo, then shows what it does. */
@Command(name = "train", mixinStandardHelpOptions = true,
        header = "Trains steering vectors (the demo without arguments).",
        description = {"Makes a steering vector from contrastive pairs (docs/method.md section 1) and",
            "writes it as a safetensors file: tensor w (float32, [d] or [r, d]) and",
            "metadata layer, factor_positive, factor_negative, model, concept, method and",
            "the settings that apply. --method picks how:",
            "  cdas      (default) trains w on the CDAS objective: D+ and D- minibatches,",
            "            token-mean Jensen-Shannon divergence to the unmodified model's",
            "            distributions, 1/2 each; AdamW, linear decay, clipping,",
            "            re-normalisation. The factors a+, a- are clamp values: steering",
            "            sets w.h_L to m * a+ or m * a-.",
            "  das       the same intervention and loop with the cross-entropy of the",
            "            base's own response tokens (y_c after x for D+, y after x_c for",
            "            D-) instead of the JSD. Steered like cdas.",
            "  diffmean  no optimisation: w = (mu+ - mu-) / ||mu+ - mu-||, mu+ (mu-) the",
            "            mean of h_L over every position from prefix_len on of the",
            "            chat-rendered positive_input + positive_output (negative_input +",
            "            negative_output), responses truncated like the trainer's.",
            "            Steering adds m * f * w to h_L, with f+ = ||mu+ - mu-|| (at m = 1",
            "            it moves the mean negative state onto the mean positive one) and",
            "            f- = -||mu+ - mu-||. Of the training options only",
            "            --max-response-tokens applies.",
            "cdas and das write their loss curve beside the vector (.loss.csv, .loss.png);",
            "diffmean writes none. Without --model, --data, --layer and --out it runs on",
            "the bundled demo (demo/model, demo/data/startrek.jsonl beside the jar) and prints unsteered,",
            "injected and suppressed generations for a few prompts."})
final class TrainCommand implements Callable<Integer> {
    /** Of the demo model's 4 blocks, the one whose vector raises held-out concept responses most (demo/README.md). */
    static final int DEMO_LAYER = 2;
    /** Three prompts without the concept (for injection) and one with it (for suppression). */
    static final List<String> DEMO_PROMPTS = List.of("Give me a quote.", "Tell me a saying about love.",
            "What is a good quote about food?", "Tell me a saying about Star Trek.");

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model folder (config.json, weights, tokenizer with a chat template).")
    Path model;

    @Option(names = "--data", paramLabel = "FILE", description = "Contrastive pairs, .jsonl or .parquet (negative_input, negative_output, positive_input, positive_output, concept, concept_id; concept and concept_id may be left out for a file of one concept, which is then named after the file).")
    Path data;

    @Option(names = "--layer", paramLabel = "L", description = "Block whose output h_L is steered (0-based).")
    Integer layer;

    @Option(names = "--out", paramLabel = "FILE", description = "Result .safetensors (written atomically).")
    Path out;

    @Option(names = "--method", paramLabel = "M", defaultValue = "cdas", description = "cdas (default), das or diffmean (see above).")
    String method;

    @Option(names = "--concept", paramLabel = "C", description = "Train on the pairs of this concept (needed when the file holds several).")
    String concept;

    @Option(names = "--columns", paramLabel = "FIELD=COLUMN,...", description = CliSupport.COLUMNS_HELP)
    String columns;

    @Option(names = "--epochs", paramLabel = "N", description = "Epochs (default 18; demo 6). Not for diffmean.")
    Integer epochs;

    @Option(names = "--batch", paramLabel = "N", description = "Pairs per minibatch (default 8). Not for diffmean.")
    Integer batch;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate, decayed linearly to 0 (default 0.04). Not for diffmean.")
    Double lr;

    @Option(names = "--rank", paramLabel = "R", description = "Rows of W (default 1; diffmean: 1 only).")
    Integer rank;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of the initial direction and the shuffling (default 42). Not for diffmean.")
    Long seed;

    @Option(names = "--max-response-tokens", paramLabel = "N", description = "Responses are cut to N tokens (default 128).")
    Integer maxResponseTokens;

    @Option(names = "--checkpoint-every", paramLabel = "N", description = "Write a resumable checkpoint beside --out every N steps. Not for diffmean.")
    Integer checkpointEvery;

    @Option(names = "--resume", description = "Continue from the checkpoint beside --out, if there is one. Not for diffmean.")
    boolean resume;




    @Option(names = "--concepts", paramLabel = "SEL", description = {"Train several concepts of --data (concept_id per row) "
            + "into --out-dir instead of one into --out: all, ID,ID,... or @FILE (concept ids separated by commas, spaces or "
            + "line breaks; # comments). Per concept a vector, its loss curve and a line of DIR/manifest.jsonl; a rerun skips "
            + "finished concepts and retries failed ones; a failed concept does not stop the others (exit 1 at the end). "
            + "Each concept's seed mixes --seed with its id, so its vector does not depend on the shard or the other "
            + "concepts. See docs/scale-out.md."})
    String concepts;

    @Option(names = "--out-dir", paramLabel = "DIR", description = "With --concepts: the output folder (one per shard; merge joins them).")
    Path outDir;

    @Option(names = "--shard", paramLabel = "I/N", description = {"With --concepts: train shard I of N (0-based), concepts "
            + "assigned by pair count. Without it: from torchrun (RANK, WORLD_SIZE), else a Slurm array "
            + "(SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT or _MIN/_MAX), else a Kubernetes Indexed Job "
            + "(JOB_COMPLETION_INDEX with --shards or " + Shard.SHARDS_ENV + "), else 0/1."})
    String shard;

    @Option(names = "--shards", paramLabel = "N", description = "With JOB_COMPLETION_INDEX: the number of shards (the Job's completions); "
            + "default: $" + Shard.SHARDS_ENV + ".")
    Integer shards;

    @Option(names = "--pack", paramLabel = "K", description = {"With --concepts: train K concepts at once in this process, "
            + "their minibatches stacked into one forward and backward pass (each example with its own concept's direction); "
            + "each concept's vector equals training it alone within float rounding. For small models on many cores or a "
            + "large GPU; memory grows with K. cdas and das only (default 1). See docs/scale-out.md."})
    Integer pack;

    /** The launcher's environment, read for the shard (tests give their own). */
    Map<String, String> environment = System.getenv();

    @Option(names = "--state-cache-mb", paramLabel = "MB", defaultValue = "2048",
            description = "Memory for the per-pair states that do not depend on w (source state, target's final hidden states, "
                    + "base h_L), kept from the first epoch so later epochs skip those passes; 0 = recompute every step "
                    + "(default: ${DEFAULT-VALUE}). Not for diffmean.")
    long stateCacheMb;

    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        SteeringMethod sm;
        try {
            sm = SteeringMethod.parse(method);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException("--method must be one of " + SteeringMethod.names() + ", got \"" + method + "\"");
        }
        if (stateCacheMb < 0) {
            throw new InvalidArgumentException("--state-cache-mb must be >= 0 (0 = no cache), got " + stateCacheMb);
        }
        if (!sm.optimised()) {
            List<String> notApplicable = notForDiffMean();
            if (!notApplicable.isEmpty()) {
                throw new InvalidArgumentException(String.join(", ", notApplicable) + (notApplicable.size() == 1 ? " does" : " do")
                        + " not apply to --method " + sm.id() + " (no optimisation, one direction)");
            }
        }
        if (concepts != null || outDir != null || shard != null || shards != null || pack != null) {
            return fanOut(sm);
        }
        boolean demo = model == null && data == null && layer == null && out == null;
        TrainingSettings settings = (demo ? TrainingPreset.DEMO.settings() : TrainingSettings.defaults());
        if (demo) {
            Path root = CliSupport.demoRoot();
            model = root.resolve(CliSupport.DEMO_MODEL);
            data = root.resolve(CliSupport.DEMO_DATA);
            layer = DEMO_LAYER;
            out = Path.of(System.getProperty("java.io.tmpdir"), "cdas-demo",
                    sm == SteeringMethod.CDAS ? "startrek.safetensors" : "startrek-" + sm.id() + ".safetensors");
            System.out.println("No arguments: " + sm.id() + " on the bundled demo (" + model + ", " + data + ", layer " + layer + ").");
        } else if (model == null || data == null || layer == null || out == null) {
            throw new InvalidArgumentException("train needs --model, --data, --layer and --out (or none of them for the demo); missing: "
                    + String.join(", ", missing()));
        }
        if (concept != null && concept.isBlank()) {
            throw new InvalidArgumentException("--concept is empty");
        }
        dev.cdas.io.InputFiles.requireReplaceable(out);
        settings = override(settings);
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkLayer(layer, folder);
            // Read the data before loading the model: a bad file fails fast.
            dev.cdas.data.PairColumns pairColumns = CliSupport.columns(columns);
            List<ConceptPair> pairs = PairReader.read(data, concept, pairColumns);
            try (Model m = runtime.create(folder)) {
                TrainJob.Spec spec = TrainJob.Spec.beside(data, concept, settings, layer, model.getFileName().toString(),
                        sm.id(), out, resume).withColumns(pairColumns);
                SteeringVectorFile vector = sm.optimised()
                        ? train(sm, spec, folder, m, pairs, demo)
                        : diffMean(spec, folder, m, pairs);
                System.out.printf(Locale.ROOT, "factors: %s, %s%n", CliSupport.factor(vector, true), CliSupport.factor(vector, false));
                System.out.println("wrote " + out);
                if (demo) {
                    showDemo(folder, m, vector, System.out);
                }
            }
        }
        return 0;
    }

    /** --concepts: many concepts into --out-dir, this process's shard of them. */
    private int fanOut(SteeringMethod sm) throws IOException {
        if (concepts == null || outDir == null) {
            throw new InvalidArgumentException(concepts == null ? (outDir != null ? "--out-dir" : shard != null ? "--shard"
                    : shards != null ? "--shards" : "--pack")
                    + " needs --concepts (all, ID,ID,... or @FILE)" : "--concepts needs --out-dir");
        }
        List<String> missing = new ArrayList<>();
        if (model == null) missing.add("--model");
        if (data == null) missing.add("--data");
        if (layer == null) missing.add("--layer");
        if (!missing.isEmpty()) {
            throw new InvalidArgumentException("train --concepts needs --model, --data and --layer; missing: " + String.join(", ", missing));
        }
        List<String> conflicting = new ArrayList<>();
        if (out != null) conflicting.add("--out");
        if (concept != null) conflicting.add("--concept");
        if (checkpointEvery != null) conflicting.add("--checkpoint-every");
        if (resume) conflicting.add("--resume");
        if (!conflicting.isEmpty()) {
            throw new InvalidArgumentException(String.join(", ", conflicting) + " cannot be used with --concepts (each concept goes to "
                    + "--out-dir; a rerun there continues by skipping the finished concepts)");
        }
        if (pack != null && pack < 1) {
            throw new InvalidArgumentException("--pack must be >= 1, got " + pack);
        }
        TrainingSettings settings = override(TrainingSettings.defaults());
        return TrainFanOut.run(new TrainFanOut.Options(model, data, layer, sm, settings, concepts, outDir, shard, shards,
                stateCacheMb << 20, runtime, environment, pack == null ? 1 : pack), System.out, System.err);
    }

    /** cdas, das: the training loop on the runtime's objective, then the clamp factors. */
    private SteeringVectorFile train(SteeringMethod sm, TrainJob.Spec spec, ModelFolder folder, Model m, List<ConceptPair> pairs,
            boolean demo) throws IOException {
        TrainingSettings settings = spec.settings();
        CdasObjective objective = new CdasObjective(m, folder.prompts(), layer, settings.maxResponseTokens(), sm.objectiveLoss(),
                stateCacheMb << 20);
        ModelSteeringFactors factors = new ModelSteeringFactors(m, folder.prompts(), layer);
        Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
        float[] initial = Directions.randomUnit(settings.rank(), objective.dimension(), new Rng(settings.seed()));
        double before = demo ? objective.loss(initial, all).loss() : Double.NaN;
        System.out.printf(Locale.ROOT, "training %s on %d pairs, layer %d: %d epochs, batch %d, lr %s, rank %d, seed %d (%s, %s)%n",
                sm.id(), pairs.size(), layer, settings.epochs(), settings.batchSize(), settings.lr(), settings.rank(),
                settings.seed(), m.dtype(), m.deviceName());
        long t0 = System.nanoTime();
        TrainJob.Result result = TrainJob.run(spec, objective, factors, new ConsoleProgress(System.err));
        double secs = (System.nanoTime() - t0) / 1e9;
        var log = result.run().log().entries();
        System.out.printf(Locale.ROOT, "trained in %.1f s: %d steps%s, loss (%s) first step %.5f, last step %.5f%n", secs,
                result.run().steps(), result.run().resumed() ? " (resumed from the checkpoint beside --out)" : "", lossName(sm),
                log.getFirst().loss(), log.getLast().loss());
        if (objective.stateCacheBytes() > 0) {
            System.out.printf(Locale.ROOT, "state cache: %.1f MB kept from the first epoch%n", objective.stateCacheBytes() / 1048576.0);
        }
        if (demo) {
            double after = objective.loss(result.vector().w(), all).loss();
            System.out.printf(Locale.ROOT, "objective (%s) on all training pairs: %.5f with the initial random w, %.5f trained%n",
                    lossName(sm), before, after);
        }
        return result.vector();
    }

    /** diffmean: the mean difference of h_L, no optimisation. */
    private SteeringVectorFile diffMean(TrainJob.Spec spec, ModelFolder folder, Model m, List<ConceptPair> pairs) throws IOException {
        DiffMean dm = new DiffMean(m, folder.prompts(), layer, spec.settings().maxResponseTokens());
        System.out.printf(Locale.ROOT, "diffmean on %d pairs, layer %d: mean h_L over the positions from prefix_len on, "
                + "responses cut to %d tokens (%s, %s)%n", pairs.size(), layer, dm.maxResponseTokens(), m.dtype(), m.deviceName());
        long t0 = System.nanoTime();
        TrainJob.Result result = TrainJob.run(spec, dm, new ConsoleProgress(System.err));
        DiffMean.Result r = result.diffMean();
        System.out.printf(Locale.ROOT, "done in %.1f s: mu+ over %d tokens, mu- over %d tokens, ||mu+ - mu-|| = %.5f%n",
                (System.nanoTime() - t0) / 1e9, r.positive().tokens(), r.negative().tokens(), r.distance());
        return result.vector();
    }

    private static String lossName(SteeringMethod sm) {
        return sm.objectiveLoss() == ObjectiveLoss.CROSS_ENTROPY ? "cross-entropy" : "JSD";
    }

    private void showDemo(ModelFolder folder, Model m, SteeringVectorFile v, PrintStream o) throws IOException {
        int[] stops = CliSupport.stopIds(folder);
        GenerationOptions gen = new GenerationOptions(48, 0.8f, 0.9f, 0, 7L, stops);
        List<String> plain = CliSupport.generate(folder, m, DEMO_PROMPTS, null, null, gen);
        List<String> inj = CliSupport.generate(folder, m, DEMO_PROMPTS, v, v.values(true, 1), gen);
        List<String> sup = CliSupport.generate(folder, m, DEMO_PROMPTS, v, v.values(false, 1), gen);
        o.println();
        String how = v.steeringMethod().mode() == InterventionMode.ADD
                ? "inject adds f+ * w to h_L, suppress adds f- * w" : "inject clamps w.h_L to a = a+, suppress to a = a-";
        o.println("Generations (top-p 0.9, temperature 0.8, same seed; " + how + "):");
        for (int i = 0; i < DEMO_PROMPTS.size(); i++) {
            o.println("prompt: " + DEMO_PROMPTS.get(i));
            o.println("  unsteered:  " + CliSupport.oneLine(plain.get(i)));
            o.println("  injected:   " + CliSupport.oneLine(inj.get(i)));
            o.println("  suppressed: " + CliSupport.oneLine(sup.get(i)));
        }
        o.println();
        o.println("Try: java -jar dist/cdas-native.jar steer --model " + model + " --vector " + out
                + " --inject --grid 1,2,4 --prompt \"Give me a quote.\"");
    }

    /** The options given that only the optimisation uses. */
    private List<String> notForDiffMean() {
        List<String> given = new ArrayList<>();
        if (epochs != null) given.add("--epochs");
        if (batch != null) given.add("--batch");
        if (lr != null) given.add("--lr");
        if (rank != null && rank != 1) given.add("--rank " + rank);
        if (seed != null) given.add("--seed");
        if (checkpointEvery != null) given.add("--checkpoint-every");
        if (pack != null && pack != 1) given.add("--pack " + pack);
        if (resume) given.add("--resume");
        return given;
    }

    private TrainingSettings override(TrainingSettings s) {
        if (epochs != null) s = s.withEpochs(epochs);
        if (batch != null) s = s.withBatchSize(batch);
        if (lr != null) s = s.withLr(lr);
        if (rank != null) s = s.withRank(rank);
        if (seed != null) s = s.withSeed(seed);
        if (maxResponseTokens != null) s = s.withMaxResponseTokens(maxResponseTokens);
        if (checkpointEvery != null) s = s.withCheckpointEvery(checkpointEvery);
        return s;
    }

    private List<String> missing() {
        List<String> m = new ArrayList<>();
        if (model == null) m.add("--model");
        if (data == null) m.add("--data");
        if (layer == null) m.add("--layer");
        if (out == null) m.add("--out");
        return m;
    }

    static String fmt(double[] v) {
        StringBuilder sb = new StringBuilder();
        for (double x : v) {
            sb.append(sb.isEmpty() ? "" : ",").append(String.format(Locale.ROOT, "%.4f", x));
        }
        return sb.toString();
    }
}
