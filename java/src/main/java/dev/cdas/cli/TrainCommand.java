package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.UnsupportedFeatureException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.Batch;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.Directions;
import dev.cdas.train.ModelSteeringFactors;
import dev.cdas.train.Rng;
import dev.cdas.train.TrainJob;
import dev.cdas.train.TrainingPreset;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Trains a steering vector; with no arguments, on the bundled demo, then shows what it does. */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = {"Trains a CDAS steering vector (DESIGN.md section 1) on contrastive pairs and writes it as a",
            "safetensors file: tensor w (float32, [d] or [r, d]) and metadata layer, factor_positive, factor_negative,",
            "model, concept, method and the training settings; the loss curve goes beside it (.loss.csv, .loss.png).",
            "With no arguments at all it trains on the bundled demo (demo/model, demo/data/startrek.jsonl) and prints",
            "unsteered, injected and suppressed generations for a few prompts."})
final class TrainCommand implements Callable<Integer> {
    /** Of the demo model's 4 blocks, the one whose vector raises held-out concept responses most (demo/README.md). */
    static final int DEMO_LAYER = 2;
    /** Three prompts without the concept (for injection) and one with it (for suppression). */
    static final List<String> DEMO_PROMPTS = List.of("Give me a quote.", "Tell me a saying about love.",
            "What is a good quote about food?", "Tell me a saying about Star Trek.");

    @Option(names = "--model", paramLabel = "DIR", description = "Hugging Face model folder (config.json, weights, tokenizer with a chat template).")
    Path model;

    @Option(names = "--data", paramLabel = "FILE", description = "Contrastive pairs, .jsonl or .parquet (negative_input, negative_output, positive_input, positive_output, concept, concept_id).")
    Path data;

    @Option(names = "--layer", paramLabel = "L", description = "Block whose output h_L is steered (0-based).")
    Integer layer;

    @Option(names = "--out", paramLabel = "FILE", description = "Result .safetensors (written atomically).")
    Path out;

    @Option(names = "--method", paramLabel = "M", defaultValue = "cdas", description = "cdas (default); das and diffmean are not available yet.")
    String method;

    @Option(names = "--concept", paramLabel = "C", description = "Train on the pairs of this concept (needed when the file holds several).")
    String concept;

    @Option(names = "--epochs", paramLabel = "N", description = "Epochs (default 18; demo 6).")
    Integer epochs;

    @Option(names = "--batch", paramLabel = "N", description = "Pairs per minibatch (default 8).")
    Integer batch;

    @Option(names = "--lr", paramLabel = "LR", description = "Peak learning rate, decayed linearly to 0 (default 0.04).")
    Double lr;

    @Option(names = "--rank", paramLabel = "R", description = "Rows of W (default 1).")
    Integer rank;

    @Option(names = "--seed", paramLabel = "S", description = "Seed of the initial direction and the shuffling (default 42).")
    Long seed;

    @Option(names = "--max-response-tokens", paramLabel = "N", description = "Responses are cut to N tokens (default 128).")
    Integer maxResponseTokens;

    @Option(names = "--checkpoint-every", paramLabel = "N", description = "Write a resumable checkpoint beside --out every N steps.")
    Integer checkpointEvery;

    @Option(names = "--resume", description = "Continue from the checkpoint beside --out, if there is one.")
    boolean resume;

    @Option(names = "--dtype", paramLabel = "TYPE", description = "Compute in f32, bf16 or f16 (default: the checkpoint's).")
    String dtype;

    @Option(names = "--device", paramLabel = "DEV", defaultValue = "cpu", description = "cpu, cuda or cuda:N (default: ${DEFAULT-VALUE}).")
    String device;

    @Option(names = "--threads", paramLabel = "N", defaultValue = "0", description = "CPU threads of libtorch (0 = its default).")
    int threads;

    @Override
    public Integer call() throws IOException {
        boolean demo = model == null && data == null && layer == null && out == null;
        TrainingSettings settings = (demo ? TrainingPreset.DEMO.settings() : TrainingSettings.defaults());
        if (demo) {
            Path root = CliSupport.demoRoot();
            model = root.resolve(CliSupport.DEMO_MODEL);
            data = root.resolve(CliSupport.DEMO_DATA);
            layer = DEMO_LAYER;
            out = Path.of(System.getProperty("java.io.tmpdir"), "cdas-demo", "startrek.safetensors");
            System.out.println("No arguments: training on the bundled demo (" + model + ", " + data + ", layer " + layer + ").");
        } else if (model == null || data == null || layer == null || out == null) {
            throw new InvalidArgumentException("train needs --model, --data, --layer and --out (or no arguments at all for the demo); missing: "
                    + String.join(", ", missing()));
        }
        if (!method.equals("cdas")) {
            if (method.equals("das") || method.equals("diffmean")) {
                throw new UnsupportedFeatureException("--method " + method + " is not available yet; use --method cdas");
            }
            throw new InvalidArgumentException("--method must be cdas, das or diffmean, got \"" + method + "\"");
        }
        if (concept != null && concept.isBlank()) {
            throw new InvalidArgumentException("--concept is empty");
        }
        try {
            settings = override(settings);
        } catch (IllegalArgumentException e) {
            throw new InvalidArgumentException(e.getMessage());
        }
        Model.Options options = Model.Options.defaults().withDevice(device).withThreads(threads);
        if (dtype != null) {
            options = options.withDtype(Model.Options.parseDtype(dtype));
        }
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkLayer(layer, folder);
            // Read the data before loading the model: a bad file fails fast.
            List<ConceptPair> pairs = PairReader.read(data, concept);
            try (Model m = Model.create(folder.config(), folder.weights(), null, options)) {
                CdasObjective objective = new CdasObjective(m, folder.prompts(), layer, settings.maxResponseTokens());
                ModelSteeringFactors factors = new ModelSteeringFactors(m, folder.prompts(), layer);
                Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
                float[] initial = Directions.randomUnit(settings.rank(), objective.dimension(), new Rng(settings.seed()));
                double before = demo ? objective.loss(initial, all).loss() : Double.NaN;
                System.out.printf(Locale.ROOT, "training %s on %d pairs, layer %d: %d epochs, batch %d, lr %s, rank %d, seed %d (%s, %s)%n",
                        method, pairs.size(), layer, settings.epochs(), settings.batchSize(), settings.lr(), settings.rank(),
                        settings.seed(), m.dtype(), m.deviceName());
                long t0 = System.nanoTime();
                TrainJob.Result result = TrainJob.run(TrainJob.Spec.beside(data, concept, settings, layer,
                        model.getFileName().toString(), method, out, resume), objective, factors, System.err);
                double secs = (System.nanoTime() - t0) / 1e9;
                var log = result.run().log().entries();
                System.out.printf(Locale.ROOT, "trained in %.1f s: %d steps, loss first step %.5f, last step %.5f%n", secs,
                        result.run().steps(), log.getFirst().loss(), log.getLast().loss());
                System.out.printf(Locale.ROOT, "factors: a+ = %s, a- = %s%n", fmt(result.vector().factorPositive()),
                        fmt(result.vector().factorNegative()));
                System.out.println("wrote " + out);
                if (demo) {
                    double after = objective.loss(result.vector().w(), all).loss();
                    System.out.printf(Locale.ROOT, "objective on all training pairs: %.5f with the initial random w, %.5f trained%n",
                            before, after);
                    showDemo(folder, m, result.vector().w(), result.vector().factorPositive(), result.vector().factorNegative(), System.out);
                }
            }
        }
        return 0;
    }

    private void showDemo(ModelFolder folder, Model m, float[] w, double[] aPlus, double[] aMinus, PrintStream o)
            throws IOException {
        int[] stops = CliSupport.stopIds(folder);
        Model.GenerationOptions gen = new Model.GenerationOptions(48, 0.8f, 0.9f, 0, 7L, stops);
        List<String> plain = CliSupport.generate(folder, m, DEMO_PROMPTS, null, layer, null, gen);
        List<String> inj = CliSupport.generate(folder, m, DEMO_PROMPTS, w, layer, aPlus, gen);
        List<String> sup = CliSupport.generate(folder, m, DEMO_PROMPTS, w, layer, aMinus, gen);
        o.println();
        o.println("Generations (top-p 0.9, temperature 0.8, same seed; inject clamps a = a+, suppress a = a-):");
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
        java.util.ArrayList<String> m = new java.util.ArrayList<>();
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
