package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * End to end on the bundled demo (demo/README.md): training lowers the CDAS objective on the
 * training pairs, and the trained vector moves the held-out pairs in the asked direction. With the
 * unit factor at {@link #LAYER}, injection (a = a+) after the neutral prompts raises the mean
 * log-likelihood per token of the held-out Star Trek quotes, and suppression (a = a-) after the
 * Star Trek prompts raises that of the held-out neutral responses.
 *
 * <p>The margins are at most half of what was measured with these settings on the committed model
 * (demo/README.md: over seeds 1, 2, 3 and 42, injection +0.0591 to +0.0603 nats/token, suppression
 * +0.0145 to +0.0173; the model's own topic gap, the same responses after the Star Trek prompts,
 * is 0.152). The gap is checked first, so a regenerated model that stops following the topic fails
 * with that message rather than with a steering one. Run with -Dcdas.demo.seed=S to measure another
 * seed, -Dcdas.demo.vector=FILE to evaluate a vector written by {@code train} instead.
 */
class DemoTrainingTest {
    static final int LAYER = 2;
    static final int EVAL_RESPONSE_TOKENS = 64;
    static final double MIN_TOPIC_GAP = 0.08;
    static final double MIN_INJECT_GAIN = 0.03;
    static final double MIN_SUPPRESS_GAIN = 0.006;

    static Path demo() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("demo/model/config.json"))) {
                return p.resolve("demo");
            }
        }
        throw new IllegalStateException("demo/ not found above " + Path.of("").toAbsolutePath());
    }

    record Mean(double sum, long tokens) {
        double perToken() {
            return sum / tokens;
        }
    }

    /**
     * Log-likelihood of the held-out concept ({@code conceptResponses}) or neutral responses after the
     * concept ({@code afterConceptPrompt}) or neutral prompts, clamped to {@code a} along {@code w} at
     * {@link #LAYER} from prefix_len on ({@code a} null: unsteered).
     */
    static Mean mean(Model model, ExampleEncoder enc, List<ConceptPair> pairs, boolean conceptResponses, boolean afterConceptPrompt,
                     float[] w, Double a) throws Exception {
        double sum = 0;
        long tokens = 0;
        for (ConceptPair p : pairs) {
            String prompt = afterConceptPrompt ? p.positiveInput() : p.negativeInput();
            String other = afterConceptPrompt ? p.negativeInput() : p.positiveInput();
            String response = conceptResponses ? p.positiveOutput() : p.negativeOutput();
            var e = enc.encode(new DirectionExample(prompt, other, response, p.origin()));
            Intervention iv = a == null ? null
                    : Intervention.clamp(LAYER, 1, w, new float[] {(float) (double) a}, new int[] {e.basePrefixLen()});
            sum += SteeringEvaluation.logLikelihood(model, e, iv);
            tokens += e.responseLength();
        }
        return new Mean(sum, tokens);
    }

    @Test
    void trainingLowersTheObjectiveAndTheVectorSteersHeldOutPairs() throws Exception {
        Path demo = demo();
        List<ConceptPair> pairs = PairReader.read(demo.resolve("data/startrek.jsonl"));
        List<ConceptPair> heldout = PairReader.read(demo.resolve("data/startrek.heldout.jsonl"));
        long seed = Long.getLong("cdas.demo.seed", TrainingSettings.defaults().seed());
        TrainingSettings settings = TrainingPreset.DEMO.settings().withMaxResponseTokens(32).withSeed(seed);
        try (ModelFolder folder = ModelFolder.open(demo.resolve("model"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            PromptEncoder prompts = folder.prompts();
            ExampleEncoder enc = new ExampleEncoder(prompts, EVAL_RESPONSE_TOKENS);

            // What the vector is asked to reproduce: the model's own response to the concept in the prompt.
            double afterConcept = mean(model, enc, heldout, true, true, null, null).perToken();
            Mean plainConcept = mean(model, enc, heldout, true, false, null, null);
            double gap = afterConcept - plainConcept.perToken();
            System.out.printf(Locale.ROOT, "held-out Star Trek responses (%d pairs, %d tokens), log-likelihood/token: %.4f after the "
                    + "Star Trek prompts, %.4f after the neutral prompts: topic gap %.4f%n", heldout.size(), plainConcept.tokens(),
                    afterConcept, plainConcept.perToken(), gap);
            assertTrue(gap > MIN_TOPIC_GAP, "the demo model hardly follows the topic of the prompt (gap " + gap
                    + " nats/token): regenerate it as demo/README.md describes");

            CdasObjective objective = new CdasObjective(model, prompts, LAYER, settings.maxResponseTokens());
            Batch all = new Batch(0, 0, 0, IntStream.range(0, pairs.size()).toArray(), pairs);
            float[] initial = Directions.randomUnit(1, objective.dimension(), new Rng(settings.seed()));
            double before = objective.loss(initial, all).loss();
            Trainer.Run run = new Trainer(objective, settings).train(pairs, Trainer.Outputs.none(), false);
            double after = objective.loss(run.w(), all).loss();
            System.out.printf(Locale.ROOT, "demo objective on %d training pairs (seed %d): %.5f initial, %.5f after %d steps%n",
                    pairs.size(), seed, before, after, run.steps());
            assertTrue(after < 0.9 * before, "objective " + before + " -> " + after);

            float[] w = run.w();
            String external = System.getProperty("cdas.demo.vector");
            if (external != null) {
                w = SteeringVectorFile.read(Path.of(external)).w();
            }
            var factors = new ModelSteeringFactors(model, prompts, LAYER).estimate(w, 1, pairs);
            double aPlus = factors.positive()[0];
            double aMinus = factors.negative()[0];
            double injected = mean(model, enc, heldout, true, false, w, aPlus).perToken();
            Mean plainNeutral = mean(model, enc, heldout, false, true, null, null);
            double suppressed = mean(model, enc, heldout, false, true, w, aMinus).perToken();
            System.out.printf(Locale.ROOT, "held-out Star Trek responses after neutral prompts: %.4f unsteered, %.4f injected "
                    + "(a+ = %.4f): %+.4f%n", plainConcept.perToken(), injected, aPlus, injected - plainConcept.perToken());
            System.out.printf(Locale.ROOT, "held-out neutral responses after Star Trek prompts (%d tokens): %.4f unsteered, %.4f "
                    + "suppressed (a- = %.4f): %+.4f%s%n", plainNeutral.tokens(), plainNeutral.perToken(), suppressed, aMinus,
                    suppressed - plainNeutral.perToken(), external != null ? " (vector " + external + ")" : "");
            assertTrue(injected - plainConcept.perToken() > MIN_INJECT_GAIN, "injection: " + plainConcept.perToken() + " -> " + injected);
            assertTrue(suppressed - plainNeutral.perToken() > MIN_SUPPRESS_GAIN,
                    "suppression: " + plainNeutral.perToken() + " -> " + suppressed);
        }
    }
}
