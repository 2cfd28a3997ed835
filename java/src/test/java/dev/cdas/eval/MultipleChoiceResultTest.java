package dev.cdas.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.InvalidArgumentException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** MC2 normalisation, argmax and accuracy on constructed log-likelihoods, and the report's layout. */
class MultipleChoiceResultTest {
    static MultipleChoiceItem item(boolean[] correct, int answer, String subject) {
        List<String> conts = new java.util.ArrayList<>();
        for (int i = 0; i < correct.length; i++) {
            conts.add(" c" + i);
        }
        return new MultipleChoiceItem("ctx", conts, correct, answer, subject, "t line 1");
    }

    @Test
    void mc2IsTheNormalisedMassOfTheTrueChoices() {
        boolean[] correct = {true, false, true, false};
        double[] p = {0.2, 0.1, 0.3, 0.4};
        double[] ll = new double[4];
        for (int i = 0; i < 4; i++) {
            ll[i] = Math.log(p[i]);
        }
        assertEquals(0.5, MultipleChoiceResult.trueMass(ll, correct), 1e-15);
        // Unnormalised: probabilities of whole continuations need not sum to 1, the score is relative.
        for (int i = 0; i < 4; i++) {
            ll[i] = Math.log(p[i] * 1e-3);
        }
        assertEquals(0.5, MultipleChoiceResult.trueMass(ll, correct), 1e-12);
        // Long continuations: sums far below exp's range still give the same share (no 0/0).
        for (int i = 0; i < 4; i++) {
            ll[i] = Math.log(p[i]) - 2000;
        }
        assertEquals(0.5, MultipleChoiceResult.trueMass(ll, correct), 1e-12);
        // The harness's definition when the true choices come first: exp(ll_true) / (sum exp(ll_true) + sum exp(ll_false)).
        double[] h = {-1.5, -0.5, -2.0};
        double expected = (Math.exp(-1.5) + Math.exp(-0.5)) / (Math.exp(-1.5) + Math.exp(-0.5) + Math.exp(-2.0));
        assertEquals(expected, MultipleChoiceResult.trueMass(h, new boolean[] {true, true, false}), 1e-15);
        assertEquals(1.0, MultipleChoiceResult.trueMass(h, new boolean[] {true, true, true}), 1e-15);
        assertEquals(0.0, MultipleChoiceResult.trueMass(new double[] {-1, Double.NEGATIVE_INFINITY}, new boolean[] {false, true}));
        assertThrows(InvalidArgumentException.class, () -> MultipleChoiceResult.trueMass(new double[] {Double.NaN, -1}, correct));
        assertThrows(InvalidArgumentException.class, () -> MultipleChoiceResult.trueMass(new double[] {-1}, correct));
    }

    @Test
    void predictionIsTheFirstArgmaxAndAccuracyTheMean() {
        assertEquals(1, MultipleChoiceResult.argmax(new double[] {-3, -1, -1, -2}));
        assertEquals(0, MultipleChoiceResult.argmax(new double[] {-1, -1}));
        MultipleChoiceItem a = item(new boolean[] {false, true, false}, 1, "x");
        MultipleChoiceItem b = item(new boolean[] {true, false, false}, 0, "y");
        MultipleChoiceResult r = new MultipleChoiceResult(MultipleChoiceFormat.MMLU, List.of(
                MultipleChoiceResult.Scored.of(a, new double[] {-2, -1, -3}, MultipleChoiceFormat.MMLU),
                MultipleChoiceResult.Scored.of(b, new double[] {-2, -1, -3}, MultipleChoiceFormat.MMLU),
                MultipleChoiceResult.Scored.of(a, new double[] {-0.5, -1, -3}, MultipleChoiceFormat.MMLU)));
        assertEquals(1.0 / 3, r.accuracy(), 1e-15);
        assertEquals(Map.of("x", 0.5, "y", 0.0), r.accuracyBySubject());
    }

    @Test
    void writesTheReportAtomically(@TempDir Path dir) throws Exception {
        MultipleChoiceItem a = item(new boolean[] {true, true, false}, 0, null);
        MultipleChoiceResult r = new MultipleChoiceResult(MultipleChoiceFormat.TRUTHFULQA_MC2, List.of(
                MultipleChoiceResult.Scored.of(a, new double[] {Math.log(0.1), Math.log(0.3), Math.log(0.6)}, MultipleChoiceFormat.TRUTHFULQA_MC2)));
        Path out = dir.resolve("r.json");
        r.write(out, Map.of("model", "m"));
        JsonNode j = new ObjectMapper().readTree(Files.readString(out));
        assertEquals(0.4, j.get("accuracy").asDouble(), 1e-12);
        JsonNode it = j.get("items").get(0);
        assertEquals(3, it.get("loglikelihoods").size());
        assertEquals(Math.log(0.3), it.get("loglikelihoods").get(1).asDouble(), 0);
        assertEquals(2, it.get("prediction").asInt());
        assertEquals(0, it.get("answer").asInt());
        assertEquals("[1,1,0]", it.get("labels").toString());
        assertEquals(0.4, it.get("score").asDouble(), 1e-12);
        assertEquals("truthfulqa-mc2", j.get("format").asText());
        assertEquals("m", j.get("run").get("model").asText());
        assertEquals(List.of(out), Files.list(dir).toList(), "no temporary file left");
    }
}
