package dev.cdas.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.DType;
import dev.cdas.InvalidArgumentException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.TokenBatch;
import dev.cdas.model.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The log-likelihood judge against a plain recomputation from Model.forward logits on the demo
 * model: render the judge prompt in the chat template, tokenise it and prompt + "Rating: N", run the
 * whole sequence alone (no padding, no shared pass), log-softmax in double, sum over the answer's
 * tokens; then the argmax, the normalised probabilities, the batched verdicts and the cache key.
 */
class LoglikJudgeTest {
    static final double TOLERANCE = 2e-4;

    static double[] reference(ModelFolder folder, Model model, String prompt, int maxRating) throws Exception {
        Tokenizer tok = folder.tokenizer();
        String context = folder.prompts().encodePrompt(prompt).text();
        int[] ctx = tok.encode(context, false);
        double[] out = new double[maxRating + 1];
        int vocab = model.config().vocabSize();
        for (int r = 0; r <= maxRating; r++) {
            int[] whole = tok.encode(context + "Rating: " + r, false);
            int[] cont = Arrays.copyOfRange(whole, ctx.length, whole.length);
            int[] input = new int[ctx.length + cont.length];
            System.arraycopy(ctx, 0, input, 0, ctx.length);
            System.arraycopy(cont, 0, input, ctx.length, cont.length);
            float[] logits = model.forward(TokenBatch.single(input), null, 0, EnumSet.of(ForwardOutput.LOGITS)).logits();
            double sum = 0;
            for (int j = 0; j < cont.length; j++) {
                int row = (ctx.length + j - 1) * vocab;
                double max = Double.NEGATIVE_INFINITY;
                for (int i = 0; i < vocab; i++) {
                    max = Math.max(max, logits[row + i]);
                }
                double z = 0;
                for (int i = 0; i < vocab; i++) {
                    z += Math.exp(logits[row + i] - max);
                }
                sum += logits[row + cont[j]] - max - Math.log(z);
            }
            out[r] = sum;
        }
        return out;
    }

    static List<String> prompts() throws Exception {
        JudgeTemplate concept = JudgeTemplate.fromFile(MultipleChoiceScorerTest.demoModel().resolveSibling("data/judge-short-concept.txt"));
        List<String> out = new ArrayList<>();
        for (String reply : List.of("Space: the final frontier. -- Kirk, stardate 3012.4",
                "A good meal is the best medicine.", "I like the sea at night.")) {
            out.add(concept.render(Map.of("concept", "Star Trek", "reply", reply)));
        }
        return out;
    }

    @Test
    void matchesARecomputationFromForwardLogits() throws Exception {
        try (ModelFolder folder = ModelFolder.open(MultipleChoiceScorerTest.demoModel());
             Model model = Model.create(folder.config(), folder.weights(), null,
                     RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1))) {
            LoglikJudge judge = new LoglikJudge(folder, model, 2);
            List<String> prompts = prompts();
            double spread = 0;
            for (int maxRating : new int[] {2, 1}) {
                List<Judge.Verdict> batched = judge.judge(prompts, maxRating, null);
                assertEquals(prompts.size(), batched.size());
                for (int i = 0; i < prompts.size(); i++) {
                    double[] ref = reference(folder, model, prompts.get(i), maxRating);
                    LoglikJudge.Scores s = judge.score(prompts.get(i), maxRating);
                    assertEquals(maxRating + 1, s.loglikelihoods().length);
                    int best = 0;
                    double z = 0;
                    for (int r = 0; r < ref.length; r++) {
                        assertEquals(ref[r], s.loglikelihoods()[r], TOLERANCE, "prompt " + i + " rating " + r);
                        assertTrue(ref[r] < 0 && Double.isFinite(ref[r]), "a log-probability: " + ref[r]);
                        best = ref[r] > ref[best] ? r : best;
                        z += Math.exp(ref[r]);
                        spread = Math.max(spread, Math.abs(ref[r] - ref[0]));
                    }
                    assertEquals(best, s.rating(), "prompt " + i);
                    double total = 0;
                    for (int r = 0; r < ref.length; r++) {
                        assertEquals(Math.exp(ref[r]) / z, s.probabilities()[r], 1e-3, "prompt " + i + " p(" + r + ")");
                        total += s.probabilities()[r];
                    }
                    assertEquals(1, total, 1e-9);
                    // the batched verdict (several prompts in one left-padded pass) says the same
                    Judge.Verdict v = batched.get(i);
                    assertTrue(v.ok(), v.error());
                    JudgeAxis axis = maxRating == 2 ? JudgeAxis.CONCEPT : JudgeAxis.REFUSAL;
                    assertEquals(best, axis.parse(v.text()).orElse(-1), v.text());
                    assertTrue(v.text().startsWith("loglik p(0)="), v.text());
                    assertTrue(v.text().contains(String.format(java.util.Locale.ROOT, "p(%d)=%.4f", best, s.probabilities()[best])), v.text());
                }
            }
            assertTrue(spread > 1e-3, "the answers' log-likelihoods differ (largest gap " + spread + ")");
        }
    }

    @Test
    void aPromptLongerThanTheContextFailsAloneAndTheKeyNamesTheRange() throws Exception {
        try (ModelFolder folder = ModelFolder.open(MultipleChoiceScorerTest.demoModel());
             Model model = Model.create(folder.config(), folder.weights(), null,
                     RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1))) {
            LoglikJudge judge = new LoglikJudge(folder, model, 4);
            List<String> prompts = new ArrayList<>(prompts());
            prompts.add(1, "Is this about Star Trek? " + "Kirk and Spock and the Enterprise. ".repeat(60) + "\nRating:");
            List<Judge.Verdict> v = judge.judge(prompts, 2, null);
            assertFalse(v.get(1).ok());
            assertTrue(v.get(1).error().contains("256"), v.get(1).error());
            for (int i : new int[] {0, 2, 3}) {
                assertTrue(v.get(i).ok(), v.get(i).error());
                assertEquals(judge.score(prompts.get(i), 2).rating(), JudgeAxis.CONCEPT.parse(v.get(i).text()).orElse(-1));
            }
            assertNotEquals(judge.id(1), judge.id(2));
            assertTrue(judge.id(2).contains(":loglik:ratings=0..2"), judge.id(2));
        }
    }

    @Test
    void cachedVerdictsAreKeyedByTheRange(@TempDir Path dir) throws Exception {
        try (ModelFolder folder = ModelFolder.open(MultipleChoiceScorerTest.demoModel());
             Model model = Model.create(folder.config(), folder.weights(), null,
                     RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1))) {
            LoglikJudge judge = new LoglikJudge(folder, model, 8);
            JudgeCache cache = new JudgeCache(dir);
            List<String> prompts = prompts();
            JudgeCache.Results two = cache.judgeAll(judge, prompts, 2, null);
            assertEquals(0, two.cached());
            JudgeCache.Results one = cache.judgeAll(judge, prompts, 1, null);
            assertEquals(0, one.cached());
            for (Judge.Verdict v : one.verdicts()) {
                assertTrue(JudgeAxis.REFUSAL.parse(v.text()).isPresent(), v.text());
                assertFalse(v.text().contains("p(2)"), v.text());
            }
            assertEquals(prompts.size(), cache.judgeAll(judge, prompts, 2, null).cached());
            assertTrue(Files.isDirectory(dir));
        }
    }

    @Test
    void scoresOfConstructedLogLikelihoods() {
        LoglikJudge.Scores s = LoglikJudge.Scores.of(new double[] {-1, -1, -1 - Math.log(2)});
        assertEquals(0, s.rating(), "a tie goes to the lowest rating");
        assertEquals(0.4, s.probabilities()[0], 1e-12);
        assertEquals(0.4, s.probabilities()[1], 1e-12);
        assertEquals(0.2, s.probabilities()[2], 1e-12);
        assertEquals("loglik p(0)=0.4000 p(1)=0.4000 p(2)=0.2000 ll=[-1.0000, -1.0000, -1.6931]\nRating: 0", s.text());
        assertEquals(2, LoglikJudge.Scores.of(new double[] {-9, -5, -2}).rating());
        assertEquals(List.of("Rating: 0", "Rating: 1"), LoglikJudge.candidates(1));
        assertThrows(InvalidArgumentException.class, () -> LoglikJudge.candidates(0));
    }
}
