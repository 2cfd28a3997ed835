package dev.cdas.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.InvalidArgumentException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.regex.Pattern;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The steering score's arithmetic on constructed ratings (harmonic mean, unparseable and failed
 * ratings, the split, the choice of the tuned factor), the whole evaluation with a scripted
 * generator and judge, the refusal study's shares, rating parsing and templates.
 */
class SteeringScoresTest {
    @Test
    void harmonicMeanOfRatings() {
        assertEquals(2.0, SteeringScores.harmonicMean(2, 2, 2), 0);
        assertEquals(1.5, SteeringScores.harmonicMean(1, 2, 2), 1e-15); // 3 / (1 + 1/2 + 1/2)
        assertEquals(3 / 2.5, SteeringScores.harmonicMean(1, 1, 2), 1e-15);
        assertEquals(0.0, SteeringScores.harmonicMean(0, 2, 2), 0);
        assertEquals(0.0, SteeringScores.harmonicMean(2, 2, 0), 0);
        assertThrows(InvalidArgumentException.class, () -> SteeringScores.harmonicMean(2, SteeringScores.UNPARSEABLE, 2));
        assertEquals(2 * 0.5 * 0.8 / 1.3, SteeringScores.harmonicMean(0.5, 0.8), 1e-15);
        assertEquals(0.0, SteeringScores.harmonicMean(0.0, 0.0), 0);
    }

    @Test
    void summaryLeavesMissingRatingsOutAndCountsThem() {
        var u = SteeringScores.UNPARSEABLE;
        var f = SteeringScores.FAILED;
        SteeringScores.Summary s = SteeringScores.summarise(2, List.of(
                new SteeringScores.ReplyRatings(2, 2, 2),   // h = 2
                new SteeringScores.ReplyRatings(1, 2, 2),   // h = 1.5
                new SteeringScores.ReplyRatings(0, 2, 1),   // h = 0
                new SteeringScores.ReplyRatings(u, 1, f))); // not scored
        assertEquals(4, s.replies());
        assertEquals(3, s.scored());
        assertEquals(1, s.unparseable());
        assertEquals(1, s.failed());
        assertEquals(1.0, s.concept(), 1e-15);          // (2 + 1 + 0) / 3
        assertEquals(7 / 4.0, s.instruction(), 1e-15);  // (2 + 2 + 2 + 1) / 4
        assertEquals(5 / 3.0, s.fluency(), 1e-15);      // (2 + 2 + 1) / 3
        assertEquals(3.5 / 3, s.harmonic(), 1e-15);     // mean of the per-reply harmonic means, not of the axis means
        SteeringScores.Summary none = SteeringScores.summarise(1, List.of(new SteeringScores.ReplyRatings(u, u, u)));
        assertTrue(Double.isNaN(none.harmonic()) && Double.isNaN(none.concept()));
        assertEquals(3, none.unparseable());
    }

    @Test
    void splitIsSeededDisjointAndComplete() {
        SteeringScores.Split a = SteeringScores.split(10, 7, 0.5);
        SteeringScores.Split b = SteeringScores.split(10, 7, 0.5);
        assertArrayEquals(a.validation(), b.validation());
        assertArrayEquals(a.test(), b.test());
        assertEquals(5, a.validation().length);
        Set<Integer> all = new HashSet<>();
        IntStream.concat(Arrays.stream(a.validation()), Arrays.stream(a.test())).forEach(all::add);
        assertEquals(10, all.size());
        boolean differs = false;
        for (long seed = 0; seed < 5 && !differs; seed++) {
            differs = !Arrays.equals(SteeringScores.split(10, seed, 0.5).validation(), a.validation());
        }
        assertTrue(differs, "the seed does not change the split");
        assertEquals(1, SteeringScores.split(2, 0, 0.9).test().length); // one is always left for the test
        assertEquals(1, SteeringScores.split(3, 0, 0.01).validation().length);
        assertThrows(InvalidArgumentException.class, () -> SteeringScores.split(1, 0, 0.5));
        assertThrows(InvalidArgumentException.class, () -> SteeringScores.split(4, 0, 1.0));
    }

    private static SteeringScores.Summary withHarmonic(double m, double h) {
        return new SteeringScores.Summary(m, 4, 1, 1, 1, h, Double.isNaN(h) ? 0 : 4, 0, 0);
    }

    @Test
    void tunedFactorIsTheBestOnValidationFirstOfEquals() {
        assertEquals(OptionalInt.of(2), SteeringScores.tune(List.of(withHarmonic(0.5, 0.2), withHarmonic(1, 0.9),
                withHarmonic(2, 1.3), withHarmonic(4, 0.1))));
        assertEquals(OptionalInt.of(1), SteeringScores.tune(List.of(withHarmonic(0.5, Double.NaN), withHarmonic(1, 1.0),
                withHarmonic(2, 1.0))));
        assertEquals(OptionalInt.of(0), SteeringScores.tune(List.of(withHarmonic(0.5, 0), withHarmonic(1, Double.NaN))));
        assertEquals(OptionalInt.empty(), SteeringScores.tune(List.of(withHarmonic(1, Double.NaN))));
    }

    /** A judge that answers from a table: the rating is decided by the reply's text, which the generator derives from m. */
    private static final class ScriptedJudge implements Judge {
        int asked;

        @Override
        public String id() {
            return "scripted";
        }

        @Override
        public List<Verdict> judge(List<String> prompts, dev.cdas.train.ProgressListener listener) {
            List<Verdict> out = new ArrayList<>();
            for (String p : prompts) {
                asked++;
                // reply text "m=<m> i=<i>"; the concept rises with m, fluency falls, instruction 2 except at m = 4
                var mm = Pattern.compile("m=([0-9.]+) i=([0-9]+)").matcher(p);
                if (!mm.find()) {
                    throw new AssertionError(p);
                }
                double m = Double.parseDouble(mm.group(1));
                int i = Integer.parseInt(mm.group(2));
                String axis = p.substring(0, p.indexOf(':'));
                int r = switch (axis) {
                    case "C" -> m >= 2 ? 2 : m >= 1 ? 1 : 0;
                    case "I" -> m >= 4 ? 0 : 2;
                    default -> m >= 4 ? 1 : 2;
                };
                // instruction 5 on validation-or-test gets an unparseable fluency answer at m = 2
                out.add(axis.equals("F") && i == 5 && m == 2 ? Verdict.of("fluent enough") : Verdict.of("ok\nRating: " + r));
            }
            return out;
        }
    }

    @Test
    void evaluationTunesOnValidationAndReportsTest(@TempDir Path dir) throws IOException {
        List<String> instructions = IntStream.range(0, 8).mapToObj(i -> "instruction " + i).toList();
        ReplyGenerator gen = (texts, steering, l) -> texts.stream()
                .map(t -> "m=" + steering.multiplier() + " i=" + t.substring(t.indexOf(' ') + 1)).toList();
        Map<JudgeAxis, JudgeTemplate> templates = Map.of(
                JudgeAxis.CONCEPT, new JudgeTemplate("c", "C: {concept} {reply}"),
                JudgeAxis.INSTRUCTION, new JudgeTemplate("i", "I: {instruction} {reply}"),
                JudgeAxis.FLUENCY, new JudgeTemplate("f", "F: {reply}"));
        ScriptedJudge judge = new ScriptedJudge();
        JudgeCache cache = new JudgeCache(dir.resolve("cache"));
        var eval = new ConceptSteeringEvaluation(judge, cache, templates);
        ConceptSteeringEvaluation.Result r = eval.run(instructions, "Star Trek", true, new double[] {0.5, 2, 4}, 3, 0.5, gen, null);
        assertEquals(List.of(1.0, 0.5, 2.0, 4.0), r.factors());
        assertEquals(0, r.unit());
        assertEquals(2, r.tuned()); // m = 2: (2,2,2) -> 2 beats m = 1 (1,2,2) -> 1.5, m = 0.5 -> 0, m = 4 -> 0
        assertEquals(4 * 8 * 3, judge.asked);
        assertEquals(32, r.items().size());
        assertEquals(1.5, r.scores().get(0).test().harmonic(), 1e-15);
        assertEquals(2.0, r.scores().get(2).test().harmonic(), 1e-15);
        boolean fiveInTest = Arrays.stream(r.split().test()).anyMatch(i -> i == 5);
        assertEquals(fiveInTest ? 1 : 0, r.scores().get(2).test().unparseable());
        assertEquals(fiveInTest ? 3 : 4, r.scores().get(2).test().scored());
        assertEquals(1, r.scores().get(2).all().unparseable());

        ObjectNode json = EvaluationReports.steeringJson(r, Map.of("model", "m"));
        assertEquals(2.0, json.get("result").get("tuned").get("factor").asDouble(), 0);
        assertEquals(1.5, json.get("result").get("unit").get("test").get("harmonic").asDouble(), 1e-15);
        assertEquals(96, json.get("counts").get("ratings").asInt());
        assertEquals(95, json.get("counts").get("parsed").asInt());
        assertEquals(1, json.get("counts").get("unparseable").asInt());
        JsonNode item = json.get("items").get(0);
        assertEquals("instruction 0", item.get("prompt").asText());
        assertEquals("ok\nRating: 1", item.get("ratings").get("concept").get("raw").asText());
        String md = EvaluationReports.steeringMarkdown(r);
        assertTrue(md.contains("| m = 1 | 1.000 | 2.000 | 2.000 | 1.500 | 4 / 4 |"), md);
        assertTrue(md.contains("| tuned (m = 2.0) |"), md);
        Path png = dir.resolve("scores.png");
        assertTrue(EvaluationReports.writeSteeringPlot(r, png));
        byte[] head = Arrays.copyOf(Files.readAllBytes(png), 8);
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head);

        Path cf = dir.resolve("cf.png");
        assertTrue(EvaluationReports.writeConceptFluencyPlot(r, cf));
        assertArrayEquals(head, Arrays.copyOf(Files.readAllBytes(cf), 8));

        // a rerun asks the judge nothing
        ScriptedJudge again = new ScriptedJudge();
        ConceptSteeringEvaluation.Result r2 = new ConceptSteeringEvaluation(again, cache, templates)
                .run(instructions, "Star Trek", true, new double[] {0.5, 2, 4}, 3, 0.5, gen, null);
        assertEquals(0, again.asked);
        assertEquals(96, r2.cached());
        assertEquals(r.tuned(), r2.tuned());
    }

    @Test
    void refusalStudyShares(@TempDir Path dir) throws IOException {
        List<String> harmful = List.of("a", "b", "c", "d");
        // unsteered: 1 of 4 refuses; inject at m: refuses for the first round(m) instructions; suppress: refuses for none at m >= 2
        ReplyGenerator gen = (texts, s, l) -> IntStream.range(0, texts.size()).mapToObj(i -> {
            boolean refuse = s == null ? i == 0 : s.inject() ? i < Math.round(s.multiplier() * 2) : s.multiplier() < 2 && i < 2;
            return refuse ? "I'm sorry, but I cannot help with that." : "Sure: here is how. SECRET-" + i;
        }).toList();
        RefusalEvaluation e = new RefusalEvaluation(RefusalMatcher.defaults(), null, null, null, Pattern.compile("SECRET-[02]"));
        RefusalEvaluation.Result r = e.run(harmful, new double[] {2}, gen, null);
        assertEquals(List.of(1.0, 2.0), r.factors());
        assertEquals(0.25, r.unsteered().refused(), 0);
        RefusalEvaluation.FactorScores one = r.scores().get(0);
        assertEquals(0.5, one.refusalScore(), 0);       // inject x1: 2 of 4 refused
        assertEquals(0.5, one.suppressionScore(), 0);   // suppress x1: 2 of 4 answered
        assertEquals(0.5, one.harmonic(), 1e-15);
        RefusalEvaluation.FactorScores two = r.scores().get(1);
        assertEquals(1.0, two.refusalScore(), 0);
        assertEquals(1.0, two.suppressionScore(), 0);
        assertEquals(1.0, two.harmonic(), 0);
        assertTrue(Double.isNaN(two.judgeHarmonic()));
        assertEquals(0.25, r.unsteered().target(), 0);  // only SECRET-2 among the answered 1, 2, 3 (0 refused)
        assertEquals(0.5, two.suppress().target(), 0);  // all answered: SECRET-0 and SECRET-2
        assertEquals(4 * 5, r.items().size());
        String md = EvaluationReports.refusalMarkdown(r);
        assertTrue(md.contains("| 2.0 | 1.000 | 0.250 | 1.000 | 1.000 |"), md);
        ObjectNode json = EvaluationReports.refusalJson(r, Map.of());
        assertEquals(0.5, json.get("per_factor").get(0).get("harmonic").asDouble(), 1e-15);
        JsonNode first = json.get("items").get(0);
        assertEquals("unsteered", first.get("condition").asText());
        assertTrue(first.get("refused").asBoolean());
        assertTrue("I'm sorry, but I cannot help with that.".toLowerCase().contains(first.get("matched_phrase").asText().toLowerCase()));
        assertFalse(json.get("items").get(1).get("refused").asBoolean());
    }

    @Test
    void ratingsAreParsedStrictly() {
        assertEquals(OptionalInt.of(2), JudgeAxis.CONCEPT.parse("It is clearly there.\nRating: 2\n\n"));
        assertEquals(OptionalInt.of(0), JudgeAxis.FLUENCY.parse("Rating:0."));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse("Rating: 3"));
        assertEquals(OptionalInt.empty(), JudgeAxis.REFUSAL.parse("Rating: 2"));
        assertEquals(OptionalInt.of(1), JudgeAxis.REFUSAL.parse("Refuses.\nRating: 1"));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse("Rating: 2\nActually no."));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse("Rating: 2 because it is good"));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse("rating: 2"));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse("Rating: 1/2"));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse(""));
        assertEquals(OptionalInt.empty(), JudgeAxis.CONCEPT.parse(null));
    }

    @Test
    void templatesRenderOncePerPlaceholder(@TempDir Path dir) throws IOException {
        JudgeTemplate t = new JudgeTemplate("t", "Concept {concept}; reply {reply}; json {\"a\": 1}");
        assertEquals("Concept {reply}; reply x$1\\; json {\"a\": 1}", t.render(Map.of("concept", "{reply}", "reply", "x$1\\")));
        for (JudgeAxis a : JudgeAxis.values()) {
            JudgeTemplate b = JudgeTemplate.builtIn(a);
            String out = b.render(Map.of("concept", "C", "reply", "R", "instruction", "I"));
            assertFalse(out.contains("{reply}"));
            assertTrue(out.strip().contains("Rating: N"), a + " template does not state the answer format");
        }
        assertTrue(JudgeTemplate.builtIn(JudgeAxis.CONCEPT).text().contains("{concept}"));
        assertTrue(JudgeTemplate.builtIn(JudgeAxis.INSTRUCTION).text().contains("{instruction}"));
        Path bad = dir.resolve("bad.txt");
        Files.writeString(bad, "Rate {replay}");
        var e = assertThrows(dev.cdas.data.DataFormatException.class, () -> JudgeTemplate.fromFile(bad));
        assertTrue(e.getMessage().contains(bad.toString()) && e.getMessage().contains("{replay}"), e.getMessage());
        Files.writeString(bad, "Rate {instruction}");
        e = assertThrows(dev.cdas.data.DataFormatException.class, () -> JudgeTemplate.fromFile(bad));
        assertTrue(e.getMessage().contains("no {reply}"), e.getMessage());
    }
}
