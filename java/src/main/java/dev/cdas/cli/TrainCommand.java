package dev.cdas.cli;

import dev.cdas.DType;
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
import dev.cdas.train.DataParallelObjective;
import dev.cdas.train.ProcessGroup;
import dev.cdas.train.DiffMean;
import dev.cdas.train.LogProbObjective;
import dev.cdas.train.ModelLogProbScorer;
import dev.cdas.train.Directions;
import dev.cdas.train.ModelSteeringFactors;
import dev.cdas.train.PromptSteering;
import dev.cdas.train.Rng;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainJob;
import dev.cdas.train.Trainer;
import dev.cdas.train.TrainingCheckpoint;
import dev.cdas.train.TrainingPreset;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
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

/** Trains a steering vector (cdas, das or diffmean) or writes a prompt-steering file; with no arguments, on the bundled demo, then shows what it does. */
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
            "  prompt    no vector, no training: the file records two instructions naming",
            "            the concept (templates with {concept}; ours, or --prompt-template",
            "            FILE: {\"inject\": \"...\", \"suppress\": \"...\"}). Steering puts",
            "            the inject instruction (or, to suppress, the suppress one) and a",
            "            blank line before the user's message, in its user turn. --data",
            "            only names the concept; --layer and the training options do not",
            "            apply.",
            "  reps      RePS (Wu et al. 2025): an additive v trained with the reference-free",
            "            bi-directional preference loss on the steered model's per-token",
            "            log-likelihoods of y_c and y after x (h + alpha v, alpha drawn from",
            "            --reps-factors) and after x_c (null-out h - ReLU(v.h)/|v|^2 v).",
            "            Written as w = v/|v|, f+ = |v|, f- = -|v|: inject adds m * f+ * w,",
            "            suppress (a negative value) nulls out the positive part along w.",
            "            Rank 1.",
            "  bipo      BiPO (Cao et al. 2024): an additive v trained with DPO against the",
            "            unsteered model (--bipo-beta), a random sign per example (+v: y_c",
            "            preferred after x; -v: y preferred after x_c). Steered like diffmean",
            "            with f+- = +-|v|. Rank 1.",
            "  loreft    LoReFT (Wu et al. 2024): two edits h + R^T(W h + b - R h), R with",
            "            orthonormal rows (re-orthonormalised after every step), trained with",
            "            the cross-entropy of y_c after x (injecting edit) and of y after x_c",
            "            (suppressing edit). A positive value applies the first, a negative",
            "            one the second, as trained.",
            "See docs/method.md, \"Baselines\". cdas, das, reps, bipo and loreft write",
            "their loss curve beside the vector (.loss.csv, .loss.png); diffmean and",
            "prompt write none. Without --model, --data, --layer and --out it runs on",
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

    @Option(names = "--method", paramLabel = "M", defaultValue = "cdas", description = "cdas (default), das, diffmean, prompt, reps, bipo or loreft (see above).")
    String method;

    @Option(names = "--prompt-template", paramLabel = "FILE",
            description = "With --method prompt: the instructions, a JSON object {\"inject\": \"...\", \"suppress\": \"...\"} whose strings hold {concept} (default: the project's own).")
    Path promptTemplate;

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

    @Option(names = "--checkpoint-every", paramLabel = "N", description = "Write a resumable checkpoint beside --out every N steps. Without it too, a run stopped by SIGTERM or Ctrl-C writes one of the last finished step there (--resume continues from it). Not for diffmean.")
    Integer checkpointEvery;

    @Option(names = "--resume", description = "Continue from the checkpoint beside --out, if there is one, in the dtype it "
            + "was trained in unless --dtype says otherwise (another dtype or device kind is refused). Not for diffmean.")
    boolean resume;




    @Option(names = "--reps-factors", paramLabel = "A,A,...", description = "reps only: the steering factors alpha, one "
            + "drawn per example and step (default 0.5,1,1.5,2).")
    String repsFactors;

    @Option(names = "--bipo-beta", paramLabel = "B", description = "bipo only: DPO's beta (default 0.1).")
    Double bipoBeta;

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

    @Option(names = "--distributed", description = {"Data parallel: train one vector with every process of a group, each "
            + "taking its slice of every minibatch and all-reducing the gradient over torch c10d (Gloo on CPU, NCCL on "
            + "CUDA). Launch with torchrun --nproc_per_node N --no-python, or set MASTER_ADDR, MASTER_PORT, RANK and "
            + "WORLD_SIZE for every process yourself. Gives the vector of one process; rank 0 writes --out. "
            + "See docs/scale-out.md."})
    boolean distributed;

    @Option(names = "--dist-timeout", paramLabel = "SECONDS", defaultValue = "1800",
            description = "With --distributed: how long a rank waits for the others to join or to reach a step (default: ${DEFAULT-VALUE}).")
    long distTimeoutSeconds;

    @Option(names = "--pack", paramLabel = "K", description = {"With --concepts: train K concepts at once in this process, "
            + "their minibatches stacked into one forward and backward pass (each example with its own concept's direction); "
            + "each concept's vector equals training it alone within float rounding. For small models on many cores or a "
            + "large GPU; memory grows with K. cdas and das only (default 1). See docs/scale-out.md."})
    Integer pack;

    @Option(names = "--pack-padding", paramLabel = "TOKENS", description = {"With --pack: concepts whose minibatches' "
            + "longest rows differ by at most this many tokens go through the model as one batch, padded to the longest of "
            + "them. 0 (default) computes every concept's step exactly as alone (bit for bit on the CPU); more is faster "
            + "(fewer, larger passes) and equal within float rounding. See docs/scale-out.md."})
    Integer packPadding;

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
        if (promptTemplate != null && !sm.steersByPrompt()) {
            throw new InvalidArgumentException("--prompt-template belongs to --method prompt, not " + sm.id());
        }
        if (sm.steersByPrompt()) {
            List<String> notApplicable = notForDiffMean();
            if (maxResponseTokens != null) notApplicable.add("--max-response-tokens");
            if (concepts != null || outDir != null || shard != null || shards != null) notApplicable.add("--concepts/--out-dir/--shard");
            if (!notApplicable.isEmpty()) {
                throw new InvalidArgumentException(String.join(", ", notApplicable) + (notApplicable.size() == 1 ? " does" : " do")
                        + " not apply to --method prompt (no vector, no training)");
            }
        } else if (!sm.optimised()) {
            List<String> notApplicable = notForDiffMean();
            if (!notApplicable.isEmpty()) {
                throw new InvalidArgumentException(String.join(", ", notApplicable) + (notApplicable.size() == 1 ? " does" : " do")
                        + " not apply to --method " + sm.id() + " (no optimisation, one direction)");
            }
        }
        if (distributed) {
            List<String> conflicting = new ArrayList<>();
            if (concepts != null || outDir != null) conflicting.add("--concepts/--out-dir (shard concepts instead: docs/scale-out.md)");
            if (shard != null || shards != null) conflicting.add("--shard/--shards");
            if (pack != null || packPadding != null) conflicting.add("--pack");
            if (!sm.optimised()) conflicting.add("--method " + sm.id() + " (no optimisation to share)");
            if (sm.logProbTrained()) conflicting.add("--method " + sm.id() + " (data parallel trains cdas and das only)");
            if (!conflicting.isEmpty()) {
                throw new InvalidArgumentException("--distributed cannot be used with " + String.join(", ", conflicting));
            }
            if (model == null || data == null || layer == null || out == null) {
                throw new InvalidArgumentException("train --distributed needs --model, --data, --layer and --out; missing: "
                        + String.join(", ", missing()));
            }
            if (distTimeoutSeconds < 1) {
                throw new InvalidArgumentException("--dist-timeout must be at least 1 second, got " + distTimeoutSeconds);
            }
        }
        if (repsFactors != null && sm != SteeringMethod.REPS) {
            throw new InvalidArgumentException("--reps-factors applies to --method reps only, not " + sm.id());
        }
        if (bipoBeta != null && sm != SteeringMethod.BIPO) {
            throw new InvalidArgumentException("--bipo-beta applies to --method bipo only, not " + sm.id());
        }
        if (concepts != null || outDir != null || shard != null || shards != null || pack != null || packPadding != null) {
            return fanOut(sm);
        }
        boolean demo = model == null && data == null && layer == null && out == null;
        TrainingSettings settings = (demo ? TrainingPreset.DEMO.settings() : TrainingSettings.defaults());
        if (demo) {
            Path root = CliSupport.demoRoot();
            model = root.resolve(CliSupport.DEMO_MODEL);
            data = root.resolve(CliSupport.DEMO_DATA);
            layer = sm.steersByPrompt() ? null : DEMO_LAYER;
            out = Path.of(System.getProperty("java.io.tmpdir"), "cdas-demo",
                    sm == SteeringMethod.CDAS ? "startrek.safetensors" : "startrek-" + sm.id() + ".safetensors");
            System.out.println("No arguments: " + sm.id() + " on the bundled demo (" + model + ", " + data
                    + (layer == null ? "" : ", layer " + layer) + ").");
        } else if (sm.steersByPrompt()) {
            if (layer != null) {
                throw new InvalidArgumentException("--layer does not apply to --method prompt (no vector, no layer)");
            }
            if (model == null || data == null || out == null) {
                List<String> m = missing();
                m.remove("--layer");
                throw new InvalidArgumentException("train --method prompt needs --model, --data and --out (or none of them for the demo); missing: "
                        + String.join(", ", m));
            }
        } else if (model == null || data == null || layer == null || out == null) {
            throw new InvalidArgumentException("train needs --model, --data, --layer and --out (or none of them for the demo); missing: "
                    + String.join(", ", missing()));
        }
        if (concept != null && concept.isBlank()) {
            throw new InvalidArgumentException("--concept is empty");
        }
        dev.cdas.io.InputFiles.requireReplaceable(out);
        settings = override(settings);
        if (sm.steersByPrompt()) {
            return prompt(demo);
        }
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkLayer(layer, folder);
            // Read the data before loading the model: a bad file fails fast.
            dev.cdas.data.PairColumns pairColumns = CliSupport.columns(columns);
            List<ConceptPair> pairs = PairReader.read(data, concept, pairColumns);
            if (distributed) {
                return trainDistributed(sm, folder, pairs, pairColumns, settings);
            }
            TrainJob.Spec spec = TrainJob.Spec.beside(data, concept, settings, layer, model.getFileName().toString(),
                    sm.id(), out, resume).withColumns(pairColumns);
            if (resume && runtime.dtype == null && spec.checkpoint() != null) {
                runtime.dtype = checkpointDtype(spec.checkpoint());
                if (runtime.dtype != null) {
                    System.err.println("[INFO] resuming in " + runtime.dtype.name().toLowerCase(Locale.ROOT) + ", the dtype "
                            + spec.checkpoint().getFileName() + " was trained in (no --dtype given)");
                }
            }
            try (Model m = runtime.create(folder)) {
                SteeringVectorFile vector = sm.logProbTrained() ? logProbTrain(sm, spec, folder, m, pairs)
                        : sm.optimised() ? train(sm, spec, folder, m, pairs, demo)
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

    /**
     * The dtype a checkpoint was trained in ({@link Trainer#COMPUTE}), for {@code --resume} without
     * {@code --dtype}: the default dtype depends on the CPU (Model.defaultDtype), so a run resumed on
     * another machine, or by another version, would otherwise compute differently and not continue
     * the same run. Null (the usual default) when there is no checkpoint or it records none; a
     * checkpoint that cannot be read is left for the trainer to report.
     */
    static DType checkpointDtype(Path checkpoint) {
        if (!Files.isRegularFile(checkpoint)) {
            return null;
        }
        try {
            return Model.computeDtypeOf(TrainingCheckpoint.read(checkpoint).identity().get(Trainer.COMPUTE));
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    /** --concepts: many concepts into --out-dir, this process's shard of them. */
    private int fanOut(SteeringMethod sm) throws IOException {
        if (concepts == null || outDir == null) {
            throw new InvalidArgumentException(concepts == null ? (outDir != null ? "--out-dir" : shard != null ? "--shard"
                    : shards != null ? "--shards" : pack != null ? "--pack" : "--pack-padding")
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
        // the fan-out trains with the paper constants' defaults
        if (repsFactors != null) conflicting.add("--reps-factors");
        if (bipoBeta != null) conflicting.add("--bipo-beta");
        if (!conflicting.isEmpty()) {
            throw new InvalidArgumentException(String.join(", ", conflicting) + " cannot be used with --concepts (each concept goes to "
                    + "--out-dir; a rerun there continues by skipping the finished concepts)");
        }
        if (pack != null && pack < 1) {
            throw new InvalidArgumentException("--pack must be >= 1, got " + pack);
        }
        if (packPadding != null && (pack == null || pack < 2)) {
            throw new InvalidArgumentException("--pack-padding needs --pack 2 or more");
        }
        if (packPadding != null && packPadding < 0) {
            throw new InvalidArgumentException("--pack-padding must be >= 0, got " + packPadding);
        }
        if (pack != null && pack > 1 && runtime.devices != null
                && (runtime.devices.contains(",") || runtime.devices.trim().equals("auto"))) {
            throw new InvalidArgumentException("--pack " + pack + " cannot be used with a layer split (--devices "
                    + runtime.devices.trim() + "): a packed pass runs on one device");
        }
        if (pack != null && pack > 1 && sm.logProbTrained()) {
            throw new InvalidArgumentException("--pack " + pack + " applies to --method cdas and das only, not " + sm.id()
                    + " (train its concepts one by one: leave --pack out)");
        }
        TrainingSettings settings = override(TrainingSettings.defaults());
        return TrainFanOut.run(new TrainFanOut.Options(model, data, layer, sm, settings, concepts, outDir, shard, shards,
                stateCacheMb << 20, runtime, environment, pack == null ? 1 : pack, packPadding == null ? 0 : packPadding), System.out,
                System.err);
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
        // the whole set as one minibatch, a training batch's pairs per native call: the memory of one
        // batch, not of all pairs at once (which made the demo map and unmap gigabytes of heap);
        // the states it computes stay in the cache for training
        double before = demo ? objective.evaluateInChunksCached(initial, all, settings.batchSize(), false).loss() : Double.NaN;
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
            double after = objective.evaluateInChunksCached(result.vector().w(), all, settings.batchSize(), false).loss();
            System.out.printf(Locale.ROOT, "objective (%s) on all training pairs: %.5f with the initial random w, %.5f trained%n",
                    lossName(sm), before, after);
        }
        return result.vector();
    }

    /**
     * --distributed: this process is one rank of a c10d group (the launcher's environment); the
     * ranks train one vector together and rank 0 writes it.
     */
    private int trainDistributed(SteeringMethod sm, ModelFolder folder, List<ConceptPair> pairs,
            dev.cdas.data.PairColumns pairColumns, TrainingSettings settings) throws IOException {
        ProcessGroup.Launch launch = ProcessGroup.Launch.fromEnvironment(environment);
        dev.cdas.model.RuntimeOptions options = runtime.options();
        if (options.device() == dev.cdas.Device.CUDA && "cuda".equalsIgnoreCase(deviceSpec())) {
            // one GPU per rank of a node: --device cuda means cuda:LOCAL_RANK
            options = options.withDevice("cuda:" + launch.localRank());
        }
        ProcessGroup.Backend backend = options.device() == dev.cdas.Device.CUDA ? ProcessGroup.Backend.NCCL
                : ProcessGroup.Backend.GLOO;
        // One write for the whole line: under torchrun every rank writes to the same file, and printf's
        // pieces of two ranks interleaved ("data parallel: rank 0data parallel: rank  of 2 ...").
        System.out.println(String.format(Locale.ROOT, "data parallel: rank %d of %d (%s), %s", launch.rank(), launch.worldSize(),
                launch.source(), backend.name().charAt(0) + backend.name().substring(1).toLowerCase(Locale.ROOT)));
        try (ProcessGroup group = ProcessGroup.join(launch, backend, options.deviceIndex(),
                java.time.Duration.ofSeconds(distTimeoutSeconds));
             Model m = ModelOptions.announce(Model.create(folder.config(), folder.weights(), null, options))) {
            TrainJob.Spec spec = TrainJob.Spec.beside(data, concept, settings, layer, model.getFileName().toString(),
                    sm.id(), out, resume).withColumns(pairColumns);
            CdasObjective objective = new CdasObjective(m, folder.prompts(), layer, settings.maxResponseTokens(),
                    sm.objectiveLoss(), stateCacheMb << 20);
            ModelSteeringFactors factors = new ModelSteeringFactors(m, folder.prompts(), layer);
            int floats = DataParallelObjective.reducedFloats(settings.rank() * objective.dimension());
            System.out.println(String.format(Locale.ROOT, "training %s on %d pairs, layer %d: %d epochs, batch %d (this rank: pairs "
                    + "[r*B/W, (r+1)*B/W) of each), lr %s, rank %d, seed %d (%s, %s); %d floats all-reduced per step",
                    sm.id(), pairs.size(), layer, settings.epochs(), settings.batchSize(), settings.lr(), settings.rank(),
                    settings.seed(), m.dtype(), m.deviceName(), floats));
            long t0 = System.nanoTime();
            String concept = TrainJob.concept(spec, pairs);
            DataParallelObjective shared = new DataParallelObjective(objective, group);
            TrainJob.Result result = TrainJob.run(spec, pairs, concept, shared, factors,
                    group.rank() == 0 ? new ConsoleProgress(System.err) : null, group);
            double secs = (System.nanoTime() - t0) / 1e9;
            var log = result.run().log().entries();
            System.out.println(String.format(Locale.ROOT, "trained in %.1f s: %d steps%s, loss (%s) first step %.5f, last step %.5f", secs,
                    result.run().steps(), result.run().resumed() ? " (resumed from the checkpoint beside --out)" : "",
                    lossName(sm), log.getFirst().loss(), log.getLast().loss()));
            DataParallelObjective.Communication c = shared.communication();
            System.out.println(String.format(Locale.ROOT, "all-reduce: %d steps, %d bytes each, %.3f s in all (%.2f ms per step)",
                    c.allReduces(), c.allReduces() == 0 ? 0 : c.bytes() / c.allReduces(), c.seconds(),
                    c.allReduces() == 0 ? 0.0 : 1e3 * c.seconds() / c.allReduces()));
            if (result.vector() != null) {
                SteeringVectorFile vector = result.vector();
                System.out.println(String.format(Locale.ROOT, "factors: %s, %s", CliSupport.factor(vector, true), CliSupport.factor(vector, false)));
                System.out.println("wrote " + out);
            } else {
                System.out.println("rank " + group.rank() + ": done; rank 0 wrote " + out);
            }
        }
        return 0;
    }

    /** The --device value as given ("cpu" when absent). */
    private String deviceSpec() {
        if (commandSpec == null) {
            return "cpu";
        }
        picocli.CommandLine.Model.OptionSpec o = commandSpec.findOption("--device");
        return o == null || o.originalStringValues().isEmpty() ? "cpu" : o.originalStringValues().getLast();
    }

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec commandSpec;

    /** Sequences per native call of the log-likelihood methods (a minibatch of 8 pairs is 32 for RePS). */
    static final int SEQUENCES_PER_CALL = 32;

    /** The --reps-factors list (default {@link LogProbObjective#DEFAULT_REPS_FACTORS}). */
    static double[] repsFactors(String list) {
        if (list == null) {
            return LogProbObjective.DEFAULT_REPS_FACTORS.clone();
        }
        try {
            double[] f = java.util.Arrays.stream(list.split(",")).map(String::trim).mapToDouble(Double::parseDouble).toArray();
            for (double x : f) {
                if (!(x > 0) || !Double.isFinite(x)) {
                    throw new NumberFormatException();
                }
            }
            return f;
        } catch (NumberFormatException e) {
            throw new InvalidArgumentException("--reps-factors must be positive numbers separated by commas, got \"" + list + "\"");
        }
    }

    /** reps, bipo, loreft: the trainer on the steered log-likelihoods ({@link LogProbObjective}). */
    private SteeringVectorFile logProbTrain(SteeringMethod sm, TrainJob.Spec spec, ModelFolder folder, Model m,
            List<ConceptPair> pairs) throws IOException {
        TrainingSettings settings = spec.settings();
        if (bipoBeta != null && !(bipoBeta > 0 && Double.isFinite(bipoBeta))) {
            throw new InvalidArgumentException("--bipo-beta must be a positive number, got " + bipoBeta);
        }
        int pad = folder.prompts().tokenizer().padTokenId().orElse(0);
        LogProbObjective objective = new LogProbObjective(sm, new ModelLogProbScorer(m, layer, pad, SEQUENCES_PER_CALL),
                folder.prompts(), settings.maxResponseTokens(), settings.seed(), repsFactors(repsFactors),
                bipoBeta != null ? bipoBeta : LogProbObjective.DEFAULT_BIPO_BETA);
        System.out.printf(Locale.ROOT, "training %s on %d pairs, layer %d: %d epochs, batch %d, lr %s, rank %d, seed %d (%s, %s)%n",
                sm.id(), pairs.size(), layer, settings.epochs(), settings.batchSize(), settings.lr(), settings.rank(),
                settings.seed(), m.dtype(), m.deviceName());
        long t0 = System.nanoTime();
        TrainJob.Result result = TrainJob.run(spec, objective, new ConsoleProgress(System.err));
        var log = result.run().log().entries();
        System.out.printf(Locale.ROOT, "trained in %.1f s: %d steps%s, loss (%s) first step %.5f, last step %.5f%n",
                (System.nanoTime() - t0) / 1e9, result.run().steps(),
                result.run().resumed() ? " (resumed from the checkpoint beside --out)" : "", sm.id(),
                log.getFirst().loss(), log.getLast().loss());
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

    /** prompt: the templates for the data's concept, written as a file without a tensor. */
    private int prompt(boolean demo) throws IOException {
        dev.cdas.data.PairColumns pairColumns = CliSupport.columns(columns);
        List<ConceptPair> pairs = PairReader.read(data, concept, pairColumns);
        String name = pairs.getFirst().concept();
        PromptSteering templates = promptTemplate == null ? PromptSteering.defaults(name) : PromptSteering.fromFile(promptTemplate, name);
        try (ModelFolder folder = ModelFolder.open(model)) {
            Map<String, String> meta = new java.util.LinkedHashMap<>();
            meta.put("data", data.getFileName().toString());
            meta.put("pairs", Integer.toString(pairs.size()));
            if (promptTemplate != null) {
                meta.put("prompt_template", promptTemplate.getFileName().toString());
            }
            SteeringVectorFile vector = SteeringVectorFile.prompt(templates, model.getFileName().toString(), meta);
            vector.write(out);
            System.out.printf(Locale.ROOT, "prompt steering for \"%s\" (no vector, no layer; %s templates):%n", name,
                    promptTemplate == null ? "the default" : promptTemplate + "'s");
            System.out.println("  inject:   " + CliSupport.oneLine(templates.instruction(1)));
            System.out.println("  suppress: " + CliSupport.oneLine(templates.instruction(-1)));
            System.out.println("wrote " + out);
            if (demo) {
                try (Model m = runtime.create(folder)) {
                    showDemo(folder, m, vector, System.out);
                }
            }
        }
        return 0;
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
        String how = switch (v.steeringMethod()) {
            case PROMPT -> "inject and suppress put their instruction before the prompt";
            case REPS -> "inject adds f+ * w to h_L, suppress removes the positive part of h_L along w";
            case LOREFT -> "inject applies the injecting LoReFT edit, suppress the suppressing one";
            default -> v.steeringMethod().mode() == InterventionMode.ADD
                    ? "inject adds f+ * w to h_L, suppress adds f- * w" : "inject clamps w.h_L to a = a+, suppress to a = a-";
        };
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
        if (packPadding != null) given.add("--pack-padding");
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
