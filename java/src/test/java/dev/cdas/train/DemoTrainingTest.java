package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * Training on the bundled demo lowers the CDAS objective on the training pairs. Also measures
 * (and prints, without asserting: the demo model hardly follows topics, demo/README.md) the mean
 * log-likelihood per token of held-out concept responses after a neutral prompt, with the unit
 * injection (a = a+) and without.
 */
class DemoTrainingTest {
    static final int LAYER = 2;

    static Path demo() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("demo/model/config.json"))) {
                return p.resolve("demo");
            }
        }
        throw new IllegalStateException("demo/ not found above " + Path.of("").toAbsolutePath());
    }

    @Test
    void trainingLowersTheObjectiveOnTheTrainingPairs() throws Exception {
        Path demo = demo();
        List<ConceptPair> pairs = PairReader.read(demo.resolve("data/food.jsonl")).subList(0, 48);
        List<ConceptPair> heldout = PairReader.read(demo.resolve("data/food.heldout.jsonl"));
        TrainingSettings settings = TrainingPreset.DEMO.settings().withEpochs(4).withLr(0.08).withMaxResponseTokens(32);
        try (ModelFolder folder = ModelFolder.open(demo.resolve("model"));
             Model model = Model.create(folder.config(), folder.weights(), null, Model.Options.defaults())) {
            CdasObjective objective = new CdasObjective(model, folder.prompts(), LAYER, settings.maxResponseTokens());
            Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
            float[] initial = Directions.randomUnit(1, objective.dimension(), new Rng(settings.seed()));
            double before = objective.loss(initial, all).loss();
            Trainer.Run run = new Trainer(objective, settings).train(pairs, Trainer.Outputs.none(), false);
            double after = objective.loss(run.w(), all).loss();
            System.out.printf(Locale.ROOT, "demo objective on %d training pairs: %.5f initial, %.5f after %d steps%n",
                    pairs.size(), before, after, run.steps());
            assertTrue(after < 0.9 * before, "objective " + before + " -> " + after);

            float[] w = run.w();
            String external = System.getProperty("cdas.demo.vector");
            if (external != null) {
                w = SteeringVectorFile.read(Path.of(external)).w();
            }
            ModelSteeringFactors factors = new ModelSteeringFactors(model, folder.prompts(), LAYER);
            double aPlus = factors.estimate(w, 1, pairs).positive()[0];
            ExampleEncoder enc = new ExampleEncoder(folder.prompts(), 64);
            double plain = 0;
            double injected = 0;
            long tokens = 0;
            for (ConceptPair p : heldout) {
                var e = enc.encode(new DirectionExample(p.negativeInput(), p.positiveInput(), p.positiveOutput(), p.origin()));
                plain += SteeringEvaluation.logLikelihood(model, e, null);
                injected += SteeringEvaluation.logLikelihood(model, e, Model.Intervention.clamp(LAYER, 1, w, new float[] {(float) aPlus},
                        new int[] {e.basePrefixLen()}));
                tokens += e.responseLength();
            }
            System.out.printf(Locale.ROOT, "held-out food responses after neutral prompts (%d pairs, %d tokens): "
                    + "log-likelihood/token %.4f unsteered, %.4f injected (a+ = %.4f%s)%n", heldout.size(), tokens,
                    plain / tokens, injected / tokens, aPlus, external != null ? ", vector " + external : "");
        }
    }
}
