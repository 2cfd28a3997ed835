package dev.cdas.train;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.DataFormatException;
import dev.cdas.data.PairReader;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * One training job from a data file to a result file, for the CLI's {@code train} command: read
 * and filter the pairs, train with an {@link Objective}, compute the steering factors with a
 * {@link SteeringFactorEstimator}, and write the {@link SteeringVectorFile} atomically. The
 * model-dependent parts come in through those two interfaces; nothing here knows the model.
 * A failure at any point leaves no result file (the loss CSV/plot are written only after the
 * last step, the checkpoint is the resumable state of an unfinished run).
 */
public final class TrainJob {

    /**
     * @param concept    the concept to keep, or null when the file holds exactly one
     * @param checkpoint where to checkpoint (null: nowhere), every {@code settings.checkpointEvery()} steps
     */
    public record Spec(Path data, String concept, TrainingSettings settings, int layer, String model, String method,
            Path out, Path checkpoint, boolean resume, Path lossCsv, Path lossPng) {

        /** Loss CSV and plot beside the result: {@code vector.safetensors} → {@code vector.loss.csv}, {@code .loss.png}. */
        public static Spec beside(Path data, String concept, TrainingSettings settings, int layer, String model,
                String method, Path out, boolean resume) {
            String base = out.getFileName().toString().replaceFirst("\\.safetensors$", "");
            Path dir = out.toAbsolutePath().getParent();
            return new Spec(data, concept, settings, layer, model, method, out,
                    settings.checkpointEvery() > 0 ? dir.resolve(base + ".checkpoint.safetensors") : null, resume,
                    dir.resolve(base + ".loss.csv"), dir.resolve(base + ".loss.png"));
        }
    }

    public record Result(SteeringVectorFile vector, Trainer.Run run) {}

    private TrainJob() {}

    public static Result run(Spec spec, Objective objective, SteeringFactorEstimator factors, PrintStream progress)
            throws IOException {
        List<ConceptPair> pairs = PairReader.read(spec.data(), spec.concept());
        String concept = spec.concept();
        if (concept == null) {
            TreeSet<String> concepts = new TreeSet<>();
            pairs.forEach(p -> concepts.add(p.concept()));
            if (concepts.size() != 1) {
                throw new DataFormatException(spec.data(), null, ConceptPair.CONCEPT, "holds " + concepts.size()
                        + " concepts " + (concepts.size() <= 10 ? concepts : "") + "; choose one with --concept");
            }
            concept = concepts.first();
        }
        Trainer.Run run = new Trainer(objective, spec.settings()).train(pairs,
                new Trainer.Outputs(spec.checkpoint(), spec.lossCsv(), spec.lossPng(), progress), spec.resume());
        SteeringFactorEstimator.Factors f = factors.estimate(run.w(), run.rank(), pairs);
        Map<String, String> settings = new LinkedHashMap<>(spec.settings().toMetadata());
        settings.put("steps", Long.toString(run.steps()));
        settings.put("pairs", Integer.toString(pairs.size()));
        settings.put("data", spec.data().getFileName().toString());
        settings.put("final_loss", Double.toString(run.log().entries().getLast().loss()));
        SteeringVectorFile vector = new SteeringVectorFile(run.w(), run.rank(), run.dimension(), spec.layer(),
                f.positive(), f.negative(), spec.model(), concept, spec.method(), settings);
        vector.write(spec.out());
        return new Result(vector, run);
    }
}
