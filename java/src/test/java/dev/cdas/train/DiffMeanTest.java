package dev.cdas.train;

import dev.cdas.NonFiniteException;
import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.model.Fixtures;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DiffMean against an independent recomputation: each sequence rendered here from the prompt
 * encoder and the response truncation, run alone through Model.forward, its h_L summed in double
 * over the positions t >= prefix_len.
 */
class DiffMeanTest {
    static final int LAYER = 1;
    static final int MAX_RESPONSE = 5;

    /** Five pairs (an odd number of sequences per side, so the last forward batch of 3 is short); one response is empty. */
    static final List<ConceptPair> PAIRS = List.of(
            new ConceptPair("Tell me a joke.", "Why not?", "Tell me about cats.", "Cats purr a lot, all day long.", "cats", 0, "p1"),
            new ConceptPair("What is 3 + 4?", "It is 7.", "Do cats sleep?", "Yes, all day", "cats", 0, "p2"),
            new ConceptPair("Hello there", "Hi!", "xyz cats", "meow meow meow", "cats", 0, "p3"),
            new ConceptPair("Why?", "Because.", "Cats or dogs?", "Cats.", "cats", 0, "p4"),
            new ConceptPair("A long question about nothing in particular", "", "cat", "purr", "cats", 0, "p5"));

    @ParameterizedTest
    @ValueSource(strings = {"gemma2", "llama"})
    void vectorIsTheUnitDifferenceOfTheMeanStatesFromPrefixLenOn(String family) throws Exception {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir(family));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            DiffMean dm = new DiffMean(model, folder.prompts(), LAYER, MAX_RESPONSE, 3);
            DiffMean.Result r = dm.compute(PAIRS, null);

            int d = model.config().hiddenSize();
            double[] plus = new double[d];
            double[] minus = new double[d];
            long nPlus = 0;
            long nMinus = 0;
            for (ConceptPair p : PAIRS) {
                nPlus += sumStates(model, folder.prompts(), p.positiveInput(), p.positiveOutput(), plus);
                nMinus += sumStates(model, folder.prompts(), p.negativeInput(), p.negativeOutput(), minus);
            }
            double sq = 0;
            double[] diff = new double[d];
            for (int i = 0; i < d; i++) {
                plus[i] /= nPlus;
                minus[i] /= nMinus;
                diff[i] = plus[i] - minus[i];
                sq += diff[i] * diff[i];
            }
            double norm = Math.sqrt(sq);
            assertTrue(norm > 1e-3, family + ": the means barely differ (" + norm + ")");

            assertEquals(nPlus, r.positive().tokens(), family);
            assertEquals(nMinus, r.negative().tokens(), family);
            assertEquals(PAIRS.size(), r.positive().sequences());
            assertEquals(norm, r.distance(), 1e-5 * norm, family);
            assertEquals(norm, r.factorPositive(), 1e-5 * norm);
            assertEquals(-norm, r.factorNegative(), 1e-5 * norm);
            double unit = 0;
            for (int i = 0; i < d; i++) {
                assertEquals(plus[i], r.positive().mean()[i], 1e-5 * (1 + Math.abs(plus[i])), family + " mu+[" + i + "]");
                assertEquals(minus[i], r.negative().mean()[i], 1e-5 * (1 + Math.abs(minus[i])), family + " mu-[" + i + "]");
                assertEquals(diff[i] / norm, r.direction()[i], 2e-5, family + " v[" + i + "]");
                unit += (double) r.direction()[i] * r.direction()[i];
            }
            assertEquals(1.0, Math.sqrt(unit), 1e-6, family + ": unit norm");

            // the batch size changes nothing but the grouping
            DiffMean.Result one = new DiffMean(model, folder.prompts(), LAYER, MAX_RESPONSE, 1).compute(PAIRS, null);
            assertEquals(r.distance(), one.distance(), 1e-5 * norm);
        }
    }

    /** Adds h_L at positions t >= prefix_len of {@code input ⊕ truncated response} (one unpadded forward) to {@code sum}. */
    static long sumStates(Model model, PromptEncoder prompts, String input, String response, double[] sum) throws Exception {
        PromptEncoder.EncodedPrompt p = prompts.encodePrompt(input);
        int[] r = ResponseTruncation.encodeResponse(prompts.tokenizer(), response, MAX_RESPONSE);
        int[] ids = Arrays.copyOf(p.ids(), p.length() + r.length);
        System.arraycopy(r, 0, ids, p.length(), r.length);
        assertTrue(p.prefixLen() > 0 || model.config().family().modelType().equals("gpt2"), "a template with an opening");
        int d = model.config().hiddenSize();
        float[] h = model.forward(TokenBatch.single(ids), null, LAYER, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
        for (int t = p.prefixLen(); t < ids.length; t++) {
            for (int i = 0; i < d; i++) {
                sum[i] += h[t * d + i];
            }
        }
        return ids.length - p.prefixLen();
    }

    @Test
    void trainJobWritesTheVectorWithItsFactorsAndNoLossCurve(@TempDir Path dir) throws Exception {
        Path data = dir.resolve("pairs.jsonl");
        List<String> lines = new ArrayList<>();
        for (ConceptPair p : PAIRS) {
            lines.add("{\"negative_input\": \"" + p.negativeInput() + "\", \"negative_output\": \"" + p.negativeOutput()
                    + "\", \"positive_input\": \"" + p.positiveInput() + "\", \"positive_output\": \"" + p.positiveOutput()
                    + "\", \"concept\": \"cats\", \"concept_id\": 0}");
        }
        Files.write(data, lines);
        Path out = dir.resolve("run/cats.safetensors");
        TrainingSettings s = TrainingSettings.defaults().withMaxResponseTokens(MAX_RESPONSE).withCheckpointEvery(1);
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("gemma2"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            DiffMean dm = new DiffMean(model, folder.prompts(), LAYER, MAX_RESPONSE);
            TrainJob.Spec spec = TrainJob.Spec.beside(data, null, s, LAYER, "gemma2", "diffmean", out, false);
            TrainJob.Result r = TrainJob.run(spec, dm, null);
            assertEquals(null, r.run());
            SteeringVectorFile v = SteeringVectorFile.read(out);
            assertEquals("diffmean", v.method());
            assertEquals(SteeringMethod.DIFFMEAN, v.steeringMethod());
            assertEquals("cats", v.concept());
            assertEquals(LAYER, v.layer());
            assertEquals(1, v.rank());
            assertEquals(r.diffMean().distance(), v.factorPositive()[0], 0);
            assertEquals(-r.diffMean().distance(), v.factorNegative()[0], 0);
            assertTrue(v.factorPositive()[0] > 0);
            assertEquals(Arrays.toString(r.diffMean().direction()), Arrays.toString(v.w()));
            assertEquals(Integer.toString(MAX_RESPONSE), v.settings().get("max_response_tokens"));
            assertEquals("5", v.settings().get("pairs"));
            assertEquals(Long.toString(r.diffMean().positive().tokens()), v.settings().get("positive_tokens"));
            assertFalse(v.settings().containsKey("epochs"), "no optimisation settings: " + v.settings());
            assertFalse(v.settings().containsKey("lr"));
            try (Stream<Path> files = Files.list(out.getParent())) {
                assertEquals(List.of("cats.safetensors"), files.map(p -> p.getFileName().toString()).toList(),
                        "no loss curve, no checkpoint");
            }

            // the wrong kind of fit, or rank > 1: refused before anything is written
            Path other = dir.resolve("other.safetensors");
            assertThrows(InvalidArgumentException.class, () -> TrainJob.run(
                    TrainJob.Spec.beside(data, null, s, LAYER, "m", "cdas", other, false), dm, null));
            assertThrows(InvalidArgumentException.class, () -> TrainJob.run(
                    TrainJob.Spec.beside(data, null, s.withRank(2), LAYER, "m", "diffmean", other, false), dm, null));
            assertThrows(InvalidArgumentException.class, () -> TrainJob.run(
                    TrainJob.Spec.beside(data, null, s, LAYER, "m", "diffmean", other, false),
                    new HiddenDirectionObjective(8, 1, 6, 1.0, 2), (w, rank, pairs) -> null, null));
            assertFalse(Files.exists(other));
        }
    }

    @Test
    void equalMeansHaveNoDirection() {
        DiffMean.Mean m = new DiffMean.Mean(new double[] {1, 2, 3}, 4, 1);
        NonFiniteException e = assertThrows(NonFiniteException.class, () -> DiffMean.difference(m, m));
        assertTrue(e.getMessage().contains("coincide"), e.getMessage());
        DiffMean.Result r = DiffMean.difference(new DiffMean.Mean(new double[] {4, 2, 3}, 1, 1), m);
        assertEquals(3.0, r.distance(), 0);
        assertEquals("[1.0, 0.0, 0.0]", Arrays.toString(r.direction()));
    }

    @Test
    void checksItsArguments() throws IOException {
        try (ModelFolder folder = ModelFolder.open(Fixtures.dir("gemma2"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            assertThrows(InvalidArgumentException.class, () -> new DiffMean(model, folder.prompts(), 3, 4));
            assertThrows(InvalidArgumentException.class, () -> new DiffMean(model, folder.prompts(), 0, 0));
            assertThrows(InvalidArgumentException.class, () -> new DiffMean(model, folder.prompts(), 0, 4, 0));
            assertThrows(InvalidArgumentException.class, () -> new DiffMean(model, folder.prompts(), 0, 4).compute(List.of(), null));
        }
    }
}
