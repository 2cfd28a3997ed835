package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.DataFormatException;
import dev.cdas.data.PairColumns;
import dev.cdas.data.PairReader;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * One training job from a data file to a result file, for the CLI's {@code train} command: read
 * and filter the pairs, fit the vector, and write the {@link SteeringVectorFile} atomically.
 * Two kinds of fit ({@link SteeringMethod}):
 * <ul>
 *   <li>{@link #run(Spec, Objective, SteeringFactorEstimator, ProgressListener)} (cdas, das): train with
 *       an {@link Objective}, compute the steering factors with a {@link SteeringFactorEstimator};
 *       the loss curve goes to the spec's CSV/plot. The model-dependent parts come in through
 *       those two interfaces; nothing here knows the model.</li>
 *   <li>{@link #run(Spec, DiffMean, ProgressListener)} (diffmean): no optimisation, so no loss curve
 *       and no checkpoint (the spec's paths for them are not used).</li>
 * </ul>
 * A failure at any point leaves no result file and no loss curve (the loss CSV/plot are written
 * after the result file; the checkpoint is the resumable state of an unfinished run).
 */
public final class TrainJob {

    /**
     * What to train on and where to write.
     *
     * @param concept    the concept to keep, or null when the file holds exactly one
     * @param checkpoint where to checkpoint (null: nowhere), every {@code settings.checkpointEvery()} steps
     * @param columns    the data file's column of each pair field
     * @param data     the pairs file (JSONL or Parquet)
     * @param settings the training settings
     * @param layer    the block whose output is steered (0-based)
     * @param model    the model's name, stored in the vector file
     * @param method   the method's id: cdas, das or diffmean
     * @param out      the vector file to write
     * @param resume   whether to continue from an existing checkpoint
     * @param lossCsv  the loss log as CSV, or null
     * @param lossPng  the loss plot as PNG, or null
     */
    public record Spec(Path data, String concept, TrainingSettings settings, int layer, String model, String method,
            Path out, Path checkpoint, boolean resume, Path lossCsv, Path lossPng, PairColumns columns) {

        /**
         * A spec that reads every pair field from the column of its own name.
         *
         * @param data       the pairs file (JSONL or Parquet)
         * @param concept    the concept to keep, or null when the file holds exactly one
         * @param settings   the training settings
         * @param layer      the block whose output is steered (0-based)
         * @param model      the model's name, stored in the vector file
         * @param method     the method's id: cdas, das or diffmean
         * @param out        the vector file to write
         * @param checkpoint where to checkpoint, or null
         * @param resume     whether to continue from an existing checkpoint
         * @param lossCsv    the loss log as CSV, or null
         * @param lossPng    the loss plot as PNG, or null
         */
        public Spec(Path data, String concept, TrainingSettings settings, int layer, String model, String method,
                Path out, Path checkpoint, boolean resume, Path lossCsv, Path lossPng) {
            this(data, concept, settings, layer, model, method, out, checkpoint, resume, lossCsv, lossPng,
                    PairColumns.DEFAULT);
        }

        /**
         * This spec reading the pair fields from {@code columns}.
         *
         * @param columns the data file's column of each pair field
         * @return a new spec
         */
        public Spec withColumns(PairColumns columns) {
            return new Spec(data, concept, settings, layer, model, method, out, checkpoint, resume, lossCsv, lossPng,
                    columns);
        }

        /**
         * Loss CSV and plot beside the result: {@code vector.safetensors} → {@code vector.loss.csv}, {@code .loss.png}.
         *
         * @param data     the pairs file (JSONL or Parquet)
         * @param concept  the concept to keep, or null when the file holds exactly one
         * @param settings the training settings (checkpoints beside the result every interval when it is set,
         *                 and on the way out when the run is stopped)
         * @param layer    the block whose output is steered (0-based)
         * @param model    the model's name, stored in the vector file
         * @param method   the method's id: cdas, das or diffmean
         * @param out      the vector file to write
         * @param resume   whether to continue from the checkpoint beside the result
         * @return the spec
         */
        public static Spec beside(Path data, String concept, TrainingSettings settings, int layer, String model,
                String method, Path out, boolean resume) {
            String base = out.getFileName().toString().replaceFirst("\\.safetensors$", "");
            Path dir = out.toAbsolutePath().getParent();
            return new Spec(data, concept, settings, layer, model, method, out,
                    // always the path: periodic checkpoints when the interval is set, the one written on the way
                    // out (SIGTERM, Ctrl-C) in any case, and resuming looks for it whatever the interval (the
                    // interval is not part of a run's identity)
                    dir.resolve(base + ".checkpoint.safetensors"), resume,
                    dir.resolve(base + ".loss.csv"), dir.resolve(base + ".loss.png"));
        }
    }

    /**
     * The written vector and how it was fitted: {@code run} for a trained method (null for
     * diffmean), {@code diffMean} for diffmean (null otherwise).
     *
     * @param vector   the vector file written
     * @param run      the training run, or null for diffmean
     * @param diffMean the DiffMean result, or null for a trained method
     */
    public record Result(SteeringVectorFile vector, Trainer.Run run, DiffMean.Result diffMean) {}

    private TrainJob() {}

    /**
     * Trains {@code w} (spec method cdas or das) and estimates its clamp factors.
     *
     * @param spec      the data, settings and outputs
     * @param objective the loss and gradient of the method
     * @param factors   how the factors are estimated from the trained w
     * @param progress  progress reports, or null
     * @return the written vector and the run
     * @throws InvalidArgumentException when the method is not trained by an objective, or a setting or pair is invalid
     * @throws IOException              when the data cannot be read or an output cannot be written
     */
    public static Result run(Spec spec, Objective objective, SteeringFactorEstimator factors, ProgressListener progress)
            throws IOException {
        SteeringMethod sm = SteeringMethod.parse(spec.method());
        if (!sm.optimised() || sm.logProbTrained()) {
            throw new InvalidArgumentException("method " + spec.method() + " is not trained by the CDAS objective");
        }
        List<ConceptPair> pairs = PairReader.read(spec.data(), spec.concept(), spec.columns());
        return run(spec, pairs, concept(spec, pairs), objective, factors, progress);
    }

    /**
     * As {@link #run(Spec, Objective, SteeringFactorEstimator, ProgressListener)} on pairs already
     * read (those of {@code concept}, from {@code spec.data()}): the concept fan-out reads the file
     * once for all its concepts.
     *
     * @param spec      the settings and outputs
     * @param pairs     the pairs of the concept
     * @param concept   the concept's name, stored in the vector file
     * @param objective the loss and gradient of the method
     * @param factors   how the factors are estimated from the trained w
     * @param progress  progress reports, or null
     * @return the written vector and the run
     * @throws InvalidArgumentException when the method is not trained by an objective, or a setting is invalid
     * @throws IOException              when an output cannot be written
     */
    public static Result run(Spec spec, List<ConceptPair> pairs, String concept, Objective objective,
            SteeringFactorEstimator factors, ProgressListener progress) throws IOException {
        return run(spec, pairs, concept, objective, factors, progress, null);
    }

    /**
     * As {@link #run(Spec, List, String, Objective, SteeringFactorEstimator, ProgressListener)} as one
     * rank of data-parallel training ({@code group} non-null, {@code objective} a
     * {@link DataParallelObjective} over it): every rank trains to the same vector; rank 0 alone
     * estimates the factors and writes the vector, loss curve and checkpoints, while the others wait
     * for it at a barrier and return a result without a vector.
     *
     * @param spec the data, settings and outputs
     * @param pairs the training pairs
     * @param concept the concept
     * @param objective the loss and gradient, over the group
     * @param factors how the factors are estimated
     * @param progress progress reports, or null
     * @param group the ranks, or null for one process
     * @return the result; without a vector on ranks other than 0
     * @throws IOException when an output cannot be written
     */
    public static Result run(Spec spec, List<ConceptPair> pairs, String concept, Objective objective,
            SteeringFactorEstimator factors, ProgressListener progress, Collective group) throws IOException {
        SteeringMethod sm = SteeringMethod.parse(spec.method());
        if (!sm.optimised() || sm.logProbTrained()) {
            throw new InvalidArgumentException("method " + spec.method() + " is not trained by the CDAS objective");
        }
        // The loss curve is written after the result, so a failure before it (the factors, the
        // result file) leaves neither behind.
        Trainer.Run run = new Trainer(objective, spec.settings(), group).train(pairs,
                new Trainer.Outputs(spec.checkpoint(), null, null, progress), spec.resume());
        if (group != null && group.rank() != 0) {
            group.barrier();  // rank 0 has written the vector
            return new Result(null, run, null);
        }
        Result result = finish(spec, pairs, concept, run, factors);
        if (group != null) {
            group.barrier();
        }
        return result;
    }

    /**
     * The end of a trained job: the clamp factors of the trained {@code run}, the result file, then the
     * loss curve (written after the result, so a failure before it leaves neither behind). For a run
     * trained step by step ({@link Trainer.Session}, e.g. in a {@link ConceptPack}).
     *
     * @param spec the data, settings and outputs
     * @param pairs the training pairs
     * @param concept the concept
     * @param run the trained run
     * @param factors how the factors are estimated
     * @return the written vector and the run
     * @throws IOException when an output cannot be written
     */
    public static Result finish(Spec spec, List<ConceptPair> pairs, String concept, Trainer.Run run,
            SteeringFactorEstimator factors) throws IOException {
        SteeringFactorEstimator.Factors f = factors.estimate(run.w(), run.rank(), pairs);
        Map<String, String> settings = new LinkedHashMap<>(spec.settings().toMetadata());
        settings.put("steps", Long.toString(run.steps()));
        settings.put("pairs", Integer.toString(pairs.size()));
        settings.put("data", spec.data().getFileName().toString());
        settings.put("final_loss", Double.toString(run.log().entries().getLast().loss()));
        SteeringVectorFile vector = new SteeringVectorFile(run.w(), run.rank(), run.dimension(), spec.layer(),
                f.positive(), f.negative(), spec.model(), concept, spec.method(), settings);
        vector.write(spec.out());
        if (spec.lossCsv() != null) {
            run.log().writeCsv(spec.lossCsv());
        }
        if (spec.lossPng() != null) {
            run.log().writePng(spec.lossPng(), "training loss", Batches.batchesPerEpoch(pairs.size(), spec.settings().batchSize()));
        }
        return new Result(vector, run, null);
    }

    /**
     * Trains a RePS, BiPO or LoReFT vector (spec method reps, bipo or loreft) and writes it.
     *
     * @param spec the data, settings and outputs
     * @param objective the RePS, BiPO or LoReFT objective
     * @param progress progress reports, or null
     * @return the written vector and the run
     * @throws IOException when the data cannot be read or an output cannot be written
     */
    public static Result run(Spec spec, LogProbObjective objective, ProgressListener progress) throws IOException {
        List<ConceptPair> pairs = PairReader.read(spec.data(), spec.concept(), spec.columns());
        return run(spec, pairs, concept(spec, pairs), objective, progress);
    }

    /**
     * As {@link #run(Spec, LogProbObjective, ProgressListener)} on pairs already read (those of
     * {@code concept}). RePS and BiPO: the trained v is written as w = v/‖v‖ with factors ±‖v‖
     * (applied as {@code h + m·factor·w}, like DiffMean's); LoReFT: w is the injecting edit's R, the
     * file holds both edits, factors +1 and −1 ({@link SteeringVectorFile}).
     *
     * @param spec the data, settings and outputs
     * @param pairs the training pairs
     * @param concept the concept
     * @param objective the RePS, BiPO or LoReFT objective
     * @param progress progress reports, or null
     * @return the written vector and the run
     * @throws IOException when an output cannot be written
     */
    public static Result run(Spec spec, List<ConceptPair> pairs, String concept, LogProbObjective objective,
            ProgressListener progress) throws IOException {
        SteeringMethod method = SteeringMethod.parse(spec.method());
        if (method != objective.method()) {
            throw new InvalidArgumentException("method " + spec.method() + " is not the objective's " + objective.method());
        }
        Trainer.Run run = new Trainer(objective, spec.settings()).train(pairs,
                new Trainer.Outputs(spec.checkpoint(), null, null, progress), spec.resume());
        Map<String, String> settings = new LinkedHashMap<>(spec.settings().toMetadata());
        settings.putAll(objective.metadata());
        settings.put("steps", Long.toString(run.steps()));
        settings.put("pairs", Integer.toString(pairs.size()));
        settings.put("data", spec.data().getFileName().toString());
        settings.put("final_loss", Double.toString(run.log().entries().getLast().loss()));
        SteeringVectorFile vector = logProbVector(method, run, spec.layer(), spec.model(), concept, settings);
        vector.write(spec.out());
        if (spec.lossCsv() != null) {
            run.log().writeCsv(spec.lossCsv());
        }
        if (spec.lossPng() != null) {
            run.log().writePng(spec.lossPng(), "training loss", Batches.batchesPerEpoch(pairs.size(), spec.settings().batchSize()));
        }
        return new Result(vector, run, null);
    }

    /**
     * The vector file of a trained RePS, BiPO or LoReFT run (not written): RePS and BiPO's v as
     * w = v/‖v‖ with factors ±‖v‖; LoReFT's two edits with w = the injecting edit's R and factors ±1.
     *
     * @throws dev.cdas.NonFiniteException when RePS or BiPO trained a zero vector
     * @param method reps, bipo or loreft
     * @param run the finished run
     * @param layer the block steered
     * @param model the model's name
     * @param concept the concept
     * @param settings the metadata to record
     * @return the vector file
     */
    public static SteeringVectorFile logProbVector(SteeringMethod method, Trainer.Run run, int layer, String model,
            String concept, Map<String, String> settings) {
        int rank = run.rank();
        int dim = run.dimension();
        if (method == SteeringMethod.LOREFT) {
            double[] plus = new double[rank];
            double[] minus = new double[rank];
            java.util.Arrays.fill(plus, 1.0);
            java.util.Arrays.fill(minus, -1.0);
            return new SteeringVectorFile(LoreftParameters.r(run.w(), rank, dim), rank, dim, layer, plus, minus,
                    model, concept, method.id(), settings, run.w());
        }
        if (!method.logProbTrained()) {
            throw new InvalidArgumentException(method + " is not trained on log-likelihoods");
        }
        float[] v = run.w();
        double norm = 0;
        for (float x : v) {
            norm += (double) x * x;
        }
        norm = Math.sqrt(norm);
        if (!(norm > 0) || !Double.isFinite(norm)) {
            throw new dev.cdas.NonFiniteException(method + " trained a vector of norm " + norm
                    + "; there is no direction to write (more steps or a larger learning rate)");
        }
        float[] w = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            w[i] = (float) (v[i] / norm);
        }
        return new SteeringVectorFile(w, 1, dim, layer, new double[] {norm}, new double[] {-norm}, model, concept,
                method.id(), settings);
    }

    /**
     * The DiffMean vector of the pairs (spec method diffmean): {@code w = v}, factors
     * {@code ±‖μ⁺ − μ⁻‖}; metadata {@code max_response_tokens} (the DiffMean's), {@code pairs},
     * {@code data}, the token counts of both means and the positions they cover. Of the spec's
     * settings only the rank is read (it must be 1).
     *
     * @param spec     the data, settings and output
     * @param diffMean the DiffMean over the model
     * @param progress progress reports, or null
     * @return the written vector and the DiffMean result
     * @throws InvalidArgumentException when the method is not diffmean or the rank is not 1
     * @throws IOException              when the data cannot be read or the vector cannot be written
     */
    public static Result run(Spec spec, DiffMean diffMean, ProgressListener progress) throws IOException {
        if (SteeringMethod.parse(spec.method()) != SteeringMethod.DIFFMEAN) {
            throw new InvalidArgumentException("method " + spec.method() + " is not diffmean");
        }
        if (spec.settings().rank() != 1) {
            throw new InvalidArgumentException("diffmean makes one direction (rank 1), not rank " + spec.settings().rank());
        }
        List<ConceptPair> pairs = PairReader.read(spec.data(), spec.concept(), spec.columns());
        return run(spec, pairs, concept(spec, pairs), diffMean, progress);
    }

    /**
     * As {@link #run(Spec, DiffMean, ProgressListener)} on pairs already read (those of {@code concept}).
     *
     * @param spec     the settings and output
     * @param pairs    the pairs of the concept
     * @param concept  the concept's name, stored in the vector file
     * @param diffMean the DiffMean over the model
     * @param progress progress reports, or null
     * @return the written vector and the DiffMean result
     * @throws InvalidArgumentException when the method is not diffmean or the rank is not 1
     * @throws IOException              when the vector cannot be written
     */
    public static Result run(Spec spec, List<ConceptPair> pairs, String concept, DiffMean diffMean, ProgressListener progress)
            throws IOException {
        if (SteeringMethod.parse(spec.method()) != SteeringMethod.DIFFMEAN) {
            throw new InvalidArgumentException("method " + spec.method() + " is not diffmean");
        }
        if (spec.settings().rank() != 1) {
            throw new InvalidArgumentException("diffmean makes one direction (rank 1), not rank " + spec.settings().rank());
        }
        DiffMean.Result r = diffMean.compute(pairs, progress);
        Map<String, String> settings = new LinkedHashMap<>();
        settings.put("rank", "1");
        settings.put("max_response_tokens", Integer.toString(diffMean.maxResponseTokens()));
        settings.put("positions", "t >= prefix_len, prompt and response, token-pooled");
        settings.put("positive_tokens", Long.toString(r.positive().tokens()));
        settings.put("negative_tokens", Long.toString(r.negative().tokens()));
        settings.put("pairs", Integer.toString(pairs.size()));
        settings.put("data", spec.data().getFileName().toString());
        SteeringVectorFile vector = new SteeringVectorFile(r.direction(), 1, r.direction().length, spec.layer(),
                new double[] {r.factorPositive()}, new double[] {r.factorNegative()}, spec.model(), concept,
                SteeringMethod.DIFFMEAN.id(), settings);
        vector.write(spec.out());
        return new Result(vector, null, r);
    }

    /**
     * The spec's concept, or the one concept of the file.
     *
     * @param spec the job
     * @param pairs the pairs read
     * @return the concept
     * @throws DataFormatException when the file holds several concepts and the spec names none
     */
    public static String concept(Spec spec, List<ConceptPair> pairs) throws DataFormatException {
        if (spec.concept() != null) {
            return spec.concept();
        }
        TreeSet<String> concepts = new TreeSet<>();
        pairs.forEach(p -> concepts.add(p.concept()));
        if (concepts.size() != 1) {
            throw new DataFormatException(spec.data(), null, ConceptPair.CONCEPT, "holds " + concepts.size()
                    + " concepts " + (concepts.size() <= 10 ? concepts : "") + "; choose one (the concept setting)");
        }
        return concepts.first();
    }
}
