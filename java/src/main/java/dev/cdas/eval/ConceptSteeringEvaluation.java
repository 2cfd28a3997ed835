package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import dev.cdas.train.ProgressListener;
import java.io.IOException;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * The paper's steering evaluation (AxBench's protocol): replies to held-out instructions under
 * each factor multiplier m of a grid (which always holds 1, the unit factor), each rated by a
 * judge on concept, instruction and fluency ({@link SteeringScores}); the instructions are split
 * into validation and test ({@link SteeringScores#split}), the tuned factor is the one with the
 * best mean harmonic score on validation, and the result is the test scores at m = 1 and at the
 * tuned m.
 */
public final class ConceptSteeringEvaluation {
    /**
     * One judged reply: its ratings (or {@link SteeringScores#UNPARSEABLE} / {@link SteeringScores#FAILED}), the judge's raw answers or errors.
     *
     * @param index       the instruction's index in the list
     * @param validation  whether the instruction is in the validation split
     * @param factor      the multiplier m
     * @param instruction the instruction
     * @param reply       the reply
     * @param ratings     the three ratings
     * @param verdicts    the judge's verdict per axis
     */
    public record Item(int index, boolean validation, double factor, String instruction, String reply,
            SteeringScores.ReplyRatings ratings, Map<JudgeAxis, Judge.Verdict> verdicts) {}

    /**
     * Scores of one factor on each split.
     *
     * @param factor     the multiplier m
     * @param validation the summary over the validation split
     * @param test       the summary over the test split
     * @param all        the summary over every instruction
     */
    public record FactorScores(double factor, SteeringScores.Summary validation, SteeringScores.Summary test,
            SteeringScores.Summary all) {}

    /**
     * Everything the reports show: {@code tuned} indexes {@code factors} (-1 when no factor has a
     * scored validation reply), {@code unit} is the index of m = 1; {@code cached} judgements
     * came from the cache.
     *
     * @param concept the concept rated
     * @param inject  true for injection, false for suppression
     * @param factors the multipliers, in order
     * @param split   the validation and test indices
     * @param seed    the split's seed
     * @param scores  one entry per factor
     * @param unit    the index of m = 1 in {@code factors}
     * @param tuned   the index of the tuned factor, or -1
     * @param items   every judged reply
     * @param cached  the judgements taken from the cache
     */
    public record Result(String concept, boolean inject, List<Double> factors, SteeringScores.Split split, long seed,
            List<FactorScores> scores, int unit, int tuned, List<Item> items, int cached) {}

    private final Judge judge;
    private final JudgeCache cache;
    private final Map<JudgeAxis, JudgeTemplate> templates;

    /**
     * An evaluation with {@code judge}; an axis without a template gets the built-in one.
     *
     * @param judge     the judge
     * @param cache     the judge's cache
     * @param templates the judge prompts by axis; may be empty
     * @throws dev.cdas.InternalException when a built-in template is missing from the jar
     */
    public ConceptSteeringEvaluation(Judge judge, JudgeCache cache, Map<JudgeAxis, JudgeTemplate> templates) {
        this.judge = judge;
        this.cache = cache;
        this.templates = new EnumMap<>(JudgeAxis.class);
        for (JudgeAxis a : SteeringScores.AXES) {
            this.templates.put(a, templates.getOrDefault(a, JudgeTemplate.builtIn(a)));
        }
    }

    /**
     * The grid with 1 added (first) when it lacks it; every m must be finite.
     *
     * @param grid the multipliers (duplicates dropped)
     * @return the multipliers, in grid order, 1 first when added
     * @throws InvalidArgumentException when a multiplier is not finite
     */
    public static List<Double> withUnit(double[] grid) {
        List<Double> out = new ArrayList<>();
        for (double m : grid) {
            if (!Double.isFinite(m)) {
                throw new InvalidArgumentException("factor multipliers must be finite, got " + m);
            }
            if (!out.contains(m)) {
                out.add(m);
            }
        }
        if (!out.contains(1.0)) {
            out.addFirst(1.0);
        }
        return out;
    }

    /**
     * Generates the replies under every factor, has the judge rate them, scores each factor on each
     * split and tunes the factor on validation.
     *
     * @param instructions       the held-out instructions, at least 2
     * @param concept            the concept's description given to the judge
     * @param inject             true to inject the concept, false to suppress it
     * @param grid               the multipliers m to try
     * @param seed               the split's seed
     * @param validationFraction the validation share, strictly between 0 and 1
     * @param generator          where the replies come from
     * @param listener           progress reports, or null
     * @return the scores, splits and replies
     * @throws InvalidArgumentException when the grid or split settings are invalid
     * @throws IOException              when replies cannot be generated or judgements cannot be cached
     */
    public Result run(List<String> instructions, String concept, boolean inject, double[] grid, long seed,
            double validationFraction, ReplyGenerator generator, ProgressListener listener) throws IOException {
        List<Double> factors = withUnit(grid);
        SteeringScores.Split split = SteeringScores.split(instructions.size(), seed, validationFraction);
        boolean[] isVal = new boolean[instructions.size()];
        for (int i : split.validation()) {
            isVal[i] = true;
        }
        List<List<String>> replies = new ArrayList<>();
        for (double m : factors) {
            replies.add(generator.generate(instructions, new ReplyGenerator.Steering(inject, m), listener));
        }
        List<String> prompts = new ArrayList<>();
        for (int f = 0; f < factors.size(); f++) {
            for (int i = 0; i < instructions.size(); i++) {
                for (JudgeAxis a : SteeringScores.AXES) {
                    prompts.add(templates.get(a).render(Map.of("instruction", instructions.get(i), "reply", replies.get(f).get(i),
                            "concept", concept)));
                }
            }
        }
        JudgeCache.Results judged = cache.judgeAll(judge, prompts, listener);
        List<Item> items = new ArrayList<>();
        List<FactorScores> scores = new ArrayList<>();
        int k = 0;
        for (int f = 0; f < factors.size(); f++) {
            List<SteeringScores.ReplyRatings> ratings = new ArrayList<>();
            for (int i = 0; i < instructions.size(); i++) {
                Map<JudgeAxis, Judge.Verdict> verdicts = new EnumMap<>(JudgeAxis.class);
                int[] r = new int[3];
                for (int a = 0; a < 3; a++) {
                    JudgeAxis axis = SteeringScores.AXES.get(a);
                    Judge.Verdict v = judged.verdicts().get(k++);
                    verdicts.put(axis, v);
                    r[a] = !v.ok() ? SteeringScores.FAILED : axis.parse(v.text()).orElse(SteeringScores.UNPARSEABLE);
                }
                SteeringScores.ReplyRatings rr = new SteeringScores.ReplyRatings(r[0], r[1], r[2]);
                ratings.add(rr);
                items.add(new Item(i, isVal[i], factors.get(f), instructions.get(i), replies.get(f).get(i), rr, verdicts));
            }
            double m = factors.get(f);
            scores.add(new FactorScores(m, SteeringScores.summarise(m, SteeringScores.select(ratings, split.validation())),
                    SteeringScores.summarise(m, SteeringScores.select(ratings, split.test())), SteeringScores.summarise(m, ratings)));
        }
        OptionalInt tuned = SteeringScores.tune(scores.stream().map(FactorScores::validation).toList());
        return new Result(concept, inject, factors, split, seed, scores, factors.indexOf(1.0), tuned.orElse(-1), items,
                judged.cached());
    }
}
