package dev.cdas.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.ObjectiveLoss;
import dev.cdas.train.Batch;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.LogProbObjective;
import dev.cdas.train.ModelLogProbScorer;
import dev.cdas.train.Objective;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Prints a method's objective and its gradient for a vector, so other implementations can be checked against it. */
@Command(name = "objective", mixinStandardHelpOptions = true,
        header = "Prints a vector's objective and gradient on pairs as JSON.",
        description = {"Prints one JSON object {\"loss\": L, \"grad\": [...]}: the CDAS objective of the vector on all pairs",
            "of the file as one minibatch per direction (evaluated --pairs-per-call pairs at a time), 1/2 token-mean JSD",
            "of D+ plus 1/2 token-mean JSD of D-, and",
            "its gradient with respect to w (flattened, row-major [r x d]). Compared positions: those predicting the",
            "response tokens, from the last prompt token on; the clamp applies from prefix_len on.",
            "--loss ce gives DAS's objective instead (mean cross-entropy of the base's own response tokens per direction),",
            "--loss composed the same JSD composed from libtorch operations (a baseline for the fused kernel).",
            "--method reps|bipo|loreft gives that baseline's loss on all pairs as one minibatch (docs/method.md,",
            "\"Baselines\"), the per-example draws (RePS's alpha, BiPO's sign) those of step 0 with --seed, and its",
            "gradient with respect to the trained parameters: v = f+ * w for reps and bipo ([d]), LoReFT's two edits",
            "(R, W, b of the injecting edit, then of the suppressing one) for loreft. --method cdas and das are",
            "--loss jsd and ce."})
final class ObjectiveCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Hugging Face model folder.")
    Path model;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Contrastive pairs, .jsonl or .parquet.")
    Path data;

    @Option(names = "--layer", paramLabel = "L", description = "Block (default: the vector file's 'layer' metadata).")
    Integer layer;

    @Option(names = "--vector", required = true, paramLabel = "FILE", description = "Safetensors with w ([d] or [r x d]; also 'direction'/'directions').")
    Path vector;

    @Option(names = "--concept", paramLabel = "C", description = "Only the pairs of this concept.")
    String concept;

    @Option(names = "--columns", paramLabel = "FIELD=COLUMN,...", description = CliSupport.COLUMNS_HELP)
    String columns;

    @Option(names = "--max-response-tokens", paramLabel = "N", defaultValue = "" + ResponseTruncation.DEFAULT_MAX_TOKENS,
            description = "Responses are cut to N tokens (default: ${DEFAULT-VALUE}).")
    int maxResponseTokens;

    @Option(names = "--loss", paramLabel = "KIND",
            description = "jsd (CDAS, fused; default), composed (the same JSD from libtorch ops) or ce (DAS cross-entropy).")
    String loss;

    @Option(names = "--method", paramLabel = "M", description = "cdas (= --loss jsd), das (= --loss ce), reps, bipo or loreft.")
    String method;

    @Option(names = "--seed", paramLabel = "S", defaultValue = "42",
            description = "reps, bipo: the seed of the per-example draws (default: ${DEFAULT-VALUE}, train's).")
    long seed;

    @Option(names = "--reps-factors", paramLabel = "A,A,...", description = "reps: the factors alpha are drawn from (default 0.5,1,1.5,2).")
    String repsFactors;

    @Option(names = "--bipo-beta", paramLabel = "B", description = "bipo: DPO's beta (default 0.1).")
    Double bipoBeta;

    @Option(names = "--no-grad", description = "Loss only (\"grad\" is null).")
    boolean noGrad;

    @Option(names = "--pairs-per-call", paramLabel = "N", defaultValue = "8",
            description = "Pairs evaluated per native call (default: ${DEFAULT-VALUE}); memory grows with N, not with the file. "
                    + "The result is that of one minibatch of all pairs.")
    int pairsPerCall;



    @Mixin
    ModelOptions runtime = new ModelOptions();

    @Override
    public Integer call() throws IOException {
        if (concept != null && concept.isBlank()) {
            throw new InvalidArgumentException("--concept is empty");
        }
        if (pairsPerCall < 1) {
            throw new InvalidArgumentException("--pairs-per-call must be at least 1, got " + pairsPerCall);
        }
        if (maxResponseTokens < 1) {
            throw new InvalidArgumentException("--max-response-tokens must be at least 1, got " + maxResponseTokens);
        }
        SteeringMethod sm = null;
        if (method != null) {
            try {
                sm = SteeringMethod.parse(method);
            } catch (InvalidArgumentException e) {
                throw new InvalidArgumentException("--method must be one of cdas, das, reps, bipo, loreft, got \"" + method + "\"");
            }
            if (sm == SteeringMethod.DIFFMEAN) {
                throw new InvalidArgumentException("--method diffmean has no objective (it is a closed form)");
            }
            if (sm.steersByPrompt()) {
                throw new InvalidArgumentException("--method prompt has no objective (no vector, no training)");
            }
            if (loss != null) {
                throw new InvalidArgumentException("give --method or --loss, not both");
            }
        }
        if (sm != null && sm.logProbTrained()) {
            return logProb(sm);
        }
        if (repsFactors != null || bipoBeta != null) {
            throw new InvalidArgumentException((repsFactors != null ? "--reps-factors" : "--bipo-beta") + " needs --method "
                    + (repsFactors != null ? "reps" : "bipo"));
        }
        String kind = sm == SteeringMethod.DAS ? "ce" : loss == null ? "jsd" : loss;
        ObjectiveLoss lossKind = switch (kind.trim().toLowerCase(java.util.Locale.ROOT)) {
            case "jsd" -> ObjectiveLoss.JSD;
            case "composed" -> ObjectiveLoss.JSD_COMPOSED;
            case "ce" -> ObjectiveLoss.CROSS_ENTROPY;
            default -> throw new InvalidArgumentException("--loss must be jsd, composed or ce, got \"" + loss + "\"");
        };
        LogitsCommand.Directions dir = LogitsCommand.Directions.read(vector);
        Integer l = layer != null ? layer : dir.layer();
        if (l == null) {
            throw new InvalidArgumentException("--layer is needed: " + vector + " has no 'layer' metadata");
        }
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkLayer(l, folder);
            CliSupport.rankOf(dir.values(), vector, folder);
            List<ConceptPair> pairs = PairReader.read(data, concept, CliSupport.columns(columns));
            try (Model m = runtime.create(folder)) {
                // no state cache: each pair is seen once, and memory must not grow with the file
                CdasObjective objective = new CdasObjective(m, folder.prompts(), l, maxResponseTokens, lossKind, 0);
                Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
                Objective.Result r = objective.evaluateInChunks(dir.values(), all, pairsPerCall, !noGrad);
                System.out.println(json(r));
            }
        }
        return 0;
    }

    /** reps, bipo, loreft: the loss of a trained file's parameters on all pairs as one minibatch (step 0's draws). */
    private Integer logProb(SteeringMethod sm) throws IOException {
        if ((repsFactors != null && sm != SteeringMethod.REPS) || (bipoBeta != null && sm != SteeringMethod.BIPO)) {
            throw new InvalidArgumentException((repsFactors != null ? "--reps-factors" : "--bipo-beta") + " does not apply to --method "
                    + sm.id());
        }
        if (bipoBeta != null && !(bipoBeta > 0 && Double.isFinite(bipoBeta))) {
            throw new InvalidArgumentException("--bipo-beta must be a positive number, got " + bipoBeta);
        }
        SteeringVectorFile v = SteeringVectorFile.read(vector);
        if (v.steeringMethod() != sm) {
            throw new InvalidArgumentException(vector + ": its method is " + v.method() + ", not " + sm.id()
                    + " (--method must name the method that made the file)");
        }
        int l = layer != null ? layer : v.layer();
        float[] parameters = parameters(v);
        try (ModelFolder folder = ModelFolder.open(model)) {
            CliSupport.checkLayer(l, folder);
            List<ConceptPair> pairs = PairReader.read(data, concept, CliSupport.columns(columns));
            try (Model m = runtime.create(folder)) {
                if (v.dimension() != m.config().hiddenSize()) {
                    throw new InvalidArgumentException(vector + ": its vectors have " + v.dimension()
                            + " values, the model's hidden size is " + m.config().hiddenSize());
                }
                int pad = folder.prompts().tokenizer().padTokenId().orElse(0);
                LogProbObjective objective = new LogProbObjective(sm, new ModelLogProbScorer(m, l, pad, 4 * pairsPerCall),
                        folder.prompts(), maxResponseTokens, seed, TrainCommand.repsFactors(repsFactors),
                        bipoBeta != null ? bipoBeta : LogProbObjective.DEFAULT_BIPO_BETA);
                Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
                Objective.Result r = noGrad ? objective.loss(parameters, all) : objective.lossAndGradient(parameters, all);
                System.out.println(json(r));
            }
        }
        return 0;
    }

    /** The trained parameters a file holds: v = f+ · w (reps, bipo), the two LoReFT edits (loreft). */
    static float[] parameters(SteeringVectorFile v) {
        if (v.steeringMethod() == SteeringMethod.LOREFT) {
            return v.loreft();
        }
        float[] p = new float[v.w().length];
        for (int i = 0; i < p.length; i++) {
            p[i] = (float) (v.factorPositive()[0] * v.w()[i]);
        }
        return p;
    }

    static String json(Objective.Result r) throws IOException {
        StringWriter s = new StringWriter();
        try (JsonGenerator g = new JsonFactory().createGenerator(s)) {
            g.writeStartObject();
            g.writeNumberField("loss", r.loss());
            g.writeNumberField("tokens", r.tokens());
            g.writeFieldName("grad");
            if (r.gradient() == null) {
                g.writeNull();
            } else {
                g.writeStartArray();
                for (float x : r.gradient()) {
                    g.writeNumber(x);
                }
                g.writeEndArray();
            }
            g.writeEndObject();
        }
        return s.toString();
    }
}
