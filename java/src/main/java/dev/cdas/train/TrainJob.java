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
     * @param concept    the concept to keep, or null when the file holds exactly one
     * @param checkpoint where to checkpoint (null: nowhere), every {@code settings.checkpointEvery()} steps
     * @param columns    the data file's column of each pair field
     */
    public record Spec(Path data, String concept, TrainingSettings settings, int layer, String model, String method,
            Path out, Path checkpoint, boolean resume, Path lossCsv, Path lossPng, PairColumns columns) {

        /** A spec that reads every pair field from the column of its own name. */
        public Spec(Path data, String concept, TrainingSettings settings, int layer, String model, String method,
                Path out, Path checkpoint, boolean resume, Path lossCsv, Path lossPng) {
            this(data, concept, settings, layer, model, method, out, checkpoint, resume, lossCsv, lossPng,
                    PairColumns.DEFAULT);
        }

        /** This spec reading the pair fields from {@code columns}. */
        public Spec withColumns(PairColumns columns) {
            return new Spec(data, concept, settings, layer, model, method, out, checkpoint, resume, lossCsv, lossPng,
                    columns);
        }

        /** Loss CSV and plot beside the result: {@code vector.safetensors} → {@code vector.loss.csv}, {@code .loss.png}. */
        public static Spec beside(Path data, String concept, TrainingSettings settings, int layer, String model,
                String method, Path out, boolean resume) {
            String base = out.getFileName().toString().replaceFirst("\\.safetensors$", "");
            Path dir = out.toAbsolutePath().getParent();
            return new Spec(data, concept, settings, layer, model, method, out,
                    // resuming looks for the checkpoint whatever the interval (the interval is not part of a run's identity)
                    settings.checkpointEvery() > 0 || resume ? dir.resolve(base + ".checkpoint.safetensors") : null, resume,
                    dir.resolve(base + ".loss.csv"), dir.resolve(base + ".loss.png"));
        }
    }

    /**
     * The written vector and how it was fitted: {@code run} for a trained method (null for
     * diffmean), {@code diffMean} for diffmean (null otherwise).
     */
    public record Result(SteeringVectorFile vector, Trainer.Run run, DiffMean.Result diffMean) {}

    private TrainJob() {}

    /** Trains {@code w} (spec method cdas or das) and estimates its clamp factors. */
    public static Result run(Spec spec, Objective objective, SteeringFactorEstimator factors, ProgressListener progress)
            throws IOException {
        if (!SteeringMethod.parse(spec.method()).optimised()) {
            throw new InvalidArgumentException("method " + spec.method() + " is not trained by an objective");
        }
        List<ConceptPair> pairs = PairReader.read(spec.data(), spec.concept(), spec.columns());
        return run(spec, pairs, concept(spec, pairs), objective, factors, progress);
    }

    /**
     * As {@link #run(Spec, Objective, SteeringFactorEstimator, ProgressListener)} on pairs already
     * read (those of {@code concept}, from {@code spec.data()}): the concept fan-out reads the file
     * once for all its concepts.
     */
    public static Result run(Spec spec, List<ConceptPair> pairs, String concept, Objective objective,
            SteeringFactorEstimator factors, ProgressListener progress) throws IOException {
        if (!SteeringMethod.parse(spec.method()).optimised()) {
            throw new InvalidArgumentException("method " + spec.method() + " is not trained by an objective");
        }
        Trainer.Run run = new Trainer(objective, spec.settings()).train(pairs,
                new Trainer.Outputs(spec.checkpoint(), null, null, progress), spec.resume());
        return finish(spec, pairs, concept, run, factors);
    }

    /**
     * The end of a trained job: the clamp factors of the trained {@code run}, the result file, then the
     * loss curve (written after the result, so a failure before it leaves neither behind). For a run
     * trained step by step ({@link Trainer.Session}, e.g. in a {@link ConceptPack}).
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
     * The DiffMean vector of the pairs (spec method diffmean): {@code w = v}, factors
     * {@code ±‖μ⁺ − μ⁻‖}; metadata {@code max_response_tokens} (the DiffMean's), {@code pairs},
     * {@code data}, the token counts of both means and the positions they cover. Of the spec's
     * settings only the rank is read (it must be 1).
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

    /** As {@link #run(Spec, DiffMean, ProgressListener)} on pairs already read (those of {@code concept}). */
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

    /** The spec's concept, or the one concept of the file. */
    private static String concept(Spec spec, List<ConceptPair> pairs) throws DataFormatException {
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
