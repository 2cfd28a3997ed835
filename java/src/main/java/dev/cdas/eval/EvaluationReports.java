package dev.cdas.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The reports of {@link ConceptSteeringEvaluation} and {@link RefusalEvaluation}: JSON with every
 * item (instruction, reply, ratings, the judge's raw answers), a Markdown table laid out like the
 * paper's, and PNG plots of the scores against the factor multiplier. Numbers that do not exist
 * (no rated reply) are JSON null and "n/a" in tables, and a plot without any point is not drawn.
 */
public final class EvaluationReports {
    private static final ObjectMapper JSON = new ObjectMapper();

    private EvaluationReports() {}

    private static void num(ObjectNode o, String name, double v) {
        if (Double.isFinite(v)) {
            o.put(name, v);
        } else {
            o.putNull(name);
        }
    }

    static String fmt(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.3f", v) : "n/a";
    }

    private static ObjectNode summary(SteeringScores.Summary s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("factor", s.factor());
        o.put("replies", s.replies());
        num(o, "concept", s.concept());
        num(o, "instruction", s.instruction());
        num(o, "fluency", s.fluency());
        num(o, "harmonic", s.harmonic());
        o.put("scored", s.scored());
        o.put("unparseable", s.unparseable());
        o.put("failed", s.failed());
        return o;
    }

    private static ObjectNode verdict(Judge.Verdict v, int rating) {
        ObjectNode o = JSON.createObjectNode();
        if (rating >= 0) {
            o.put("rating", rating);
        } else {
            o.putNull("rating");
        }
        o.put("status", rating >= 0 ? "ok" : rating == SteeringScores.UNPARSEABLE ? "unparseable" : "failed");
        if (v != null && v.ok()) {
            o.put("raw", v.text());
        } else if (v != null) {
            o.put("error", v.error());
        }
        return o;
    }

    /**
     * The steering evaluation's JSON report; {@code about} (model, vector, settings) goes in as it is.
     *
     * @param r     the evaluation's result
     * @param about what was run, as key/value pairs
     * @return the report
     */
    public static ObjectNode steeringJson(ConceptSteeringEvaluation.Result r, Map<String, String> about) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode a = root.putObject("about");
        about.forEach(a::put);
        root.put("evaluation", "steering");
        root.put("concept", r.concept());
        root.put("mode", r.inject() ? "inject" : "suppress");
        root.put("seed", r.seed());
        ArrayNode fs = root.putArray("factors");
        r.factors().forEach(fs::add);
        ObjectNode split = root.putObject("split");
        ArrayNode v = split.putArray("validation");
        for (int i : r.split().validation()) {
            v.add(i);
        }
        ArrayNode t = split.putArray("test");
        for (int i : r.split().test()) {
            t.add(i);
        }
        ObjectNode res = root.putObject("result");
        ObjectNode unit = res.putObject("unit");
        unit.put("factor", 1.0);
        unit.set("test", summary(r.scores().get(r.unit()).test()));
        ObjectNode tuned = res.putObject("tuned");
        if (r.tuned() >= 0) {
            tuned.put("factor", r.factors().get(r.tuned()));
            tuned.set("validation", summary(r.scores().get(r.tuned()).validation()));
            tuned.set("test", summary(r.scores().get(r.tuned()).test()));
        } else {
            tuned.putNull("factor");
            tuned.put("reason", "no factor has a validation reply rated on all three axes");
        }
        ArrayNode per = root.putArray("per_factor");
        for (ConceptSteeringEvaluation.FactorScores s : r.scores()) {
            ObjectNode o = per.addObject();
            o.put("factor", s.factor());
            o.set("validation", summary(s.validation()));
            o.set("test", summary(s.test()));
            o.set("all", summary(s.all()));
        }
        ObjectNode counts = root.putObject("counts");
        int ratings = r.items().size() * 3;
        int unparseable = r.scores().stream().mapToInt(s -> s.all().unparseable()).sum();
        int failed = r.scores().stream().mapToInt(s -> s.all().failed()).sum();
        counts.put("items", r.items().size());
        counts.put("ratings", ratings);
        counts.put("parsed", ratings - unparseable - failed);
        counts.put("unparseable", unparseable);
        counts.put("failed", failed);
        counts.put("cached", r.cached());
        ArrayNode items = root.putArray("items");
        for (ConceptSteeringEvaluation.Item it : r.items()) {
            ObjectNode o = items.addObject();
            o.put("index", it.index());
            o.put("split", it.validation() ? "validation" : "test");
            o.put("factor", it.factor());
            o.put("prompt", it.instruction());
            o.put("reply", it.reply());
            ObjectNode rs = o.putObject("ratings");
            int[] vals = it.ratings().values();
            for (int k = 0; k < 3; k++) {
                JudgeAxis axis = SteeringScores.AXES.get(k);
                rs.set(axis.id(), verdict(it.verdicts().get(axis), vals[k]));
            }
            num(o, "harmonic", it.ratings().harmonic());
        }
        return root;
    }

    /**
     * The paper's table: concept, instruction, fluency and their harmonic mean on the test split at m = 1 and at the tuned m; then every factor.
     *
     * @param r the evaluation's result
     * @return the Markdown text
     */
    public static String steeringMarkdown(ConceptSteeringEvaluation.Result r) {
        StringBuilder sb = new StringBuilder();
        sb.append(String.format(Locale.ROOT, "Steering evaluation: %s \"%s\", %d validation / %d test instructions (seed %d)%n%n",
                r.inject() ? "inject" : "suppress", r.concept(), r.split().validation().length, r.split().test().length, r.seed()));
        sb.append("| Factor | Concept | Instruction | Fluency | Harmonic mean | Scored / replies |\n");
        sb.append("|---|---:|---:|---:|---:|---:|\n");
        row(sb, "m = 1", r.scores().get(r.unit()).test());
        if (r.tuned() >= 0) {
            row(sb, String.format(Locale.ROOT, "tuned (m = %s)", r.factors().get(r.tuned())), r.scores().get(r.tuned()).test());
        } else {
            sb.append("| tuned | n/a | n/a | n/a | n/a | no validation reply was rated on all three axes |\n");
        }
        sb.append("\nEvery factor (all instructions):\n\n");
        sb.append("| m | Concept | Instruction | Fluency | Harmonic mean | Scored / replies | Unparseable | Failed |\n");
        sb.append("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (ConceptSteeringEvaluation.FactorScores s : r.scores()) {
            SteeringScores.Summary a = s.all();
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %d / %d | %d | %d |%n", s.factor(), fmt(a.concept()),
                    fmt(a.instruction()), fmt(a.fluency()), fmt(a.harmonic()), a.scored(), a.replies(), a.unparseable(), a.failed()));
        }
        return sb.toString();
    }

    private static void row(StringBuilder sb, String label, SteeringScores.Summary s) {
        sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s | %d / %d |%n", label, fmt(s.concept()), fmt(s.instruction()),
                fmt(s.fluency()), fmt(s.harmonic()), s.scored(), s.replies()));
    }

    /**
     * Concept, instruction, fluency and harmonic mean (all instructions) against m; false (nothing written) when no factor has a rating.
     *
     * @param r   the evaluation's result
     * @param png the PNG file to write
     * @return true when the plot was written
     * @throws IOException when the file cannot be written
     */
    public static boolean writeSteeringPlot(ConceptSteeringEvaluation.Result r, Path png) throws IOException {
        String[] names = {"concept", "instruction", "fluency", "harmonic mean"};
        double[][] ys = new double[4][r.scores().size()];
        double[] xs = new double[r.scores().size()];
        for (int f = 0; f < xs.length; f++) {
            SteeringScores.Summary a = r.scores().get(f).all();
            xs[f] = a.factor();
            ys[0][f] = a.concept();
            ys[1][f] = a.instruction();
            ys[2][f] = a.fluency();
            ys[3][f] = a.harmonic();
        }
        return plot(png, "Steering scores: " + (r.inject() ? "inject" : "suppress") + " \"" + r.concept() + "\"", "score (0-2)", xs, names, ys);
    }

    /**
     * Mean concept rating against mean fluency, one point per factor (all instructions); false when no factor has both.
     *
     * @param r   the evaluation's result
     * @param png the PNG file to write
     * @return true when the plot was written
     * @throws IOException when the file cannot be written
     */
    public static boolean writeConceptFluencyPlot(ConceptSteeringEvaluation.Result r, Path png) throws IOException {
        XYChart chart = new XYChartBuilder().width(700).height(500).title("Concept against fluency, one point per m")
                .xAxisTitle("mean fluency (0-2)").yAxisTitle("mean concept (0-2)").build();
        chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
        chart.getStyler().setLegendVisible(true);
        boolean any = false;
        for (ConceptSteeringEvaluation.FactorScores s : r.scores()) {
            double x = s.all().fluency();
            double y = s.all().concept();
            if (Double.isFinite(x) && Double.isFinite(y)) {
                chart.addSeries("m = " + s.factor(), new double[] {x}, new double[] {y});
                any = true;
            }
        }
        if (!any) {
            return false;
        }
        AtomicFiles.write(png, BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        return true;
    }

    /** Draws the finite points of each series against x; false when there are none. */
    static boolean plot(Path png, String title, String yTitle, double[] xs, String[] names, double[][] ys) throws IOException {
        XYChart chart = new XYChartBuilder().width(800).height(500).title(title).xAxisTitle("factor multiplier m").yAxisTitle(yTitle).build();
        chart.getStyler().setLegendVisible(true);
        boolean any = false;
        for (int s = 0; s < names.length; s++) {
            List<Double> px = new ArrayList<>();
            List<Double> py = new ArrayList<>();
            for (int i = 0; i < xs.length; i++) {
                if (Double.isFinite(ys[s][i])) {
                    px.add(xs[i]);
                    py.add(ys[s][i]);
                }
            }
            if (!px.isEmpty()) {
                XYSeries series = chart.addSeries(names[s], px, py);
                series.setMarker(SeriesMarkers.CIRCLE);
                any = true;
            }
        }
        if (!any) {
            return false;
        }
        AtomicFiles.write(png, BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG));
        return true;
    }

    private static ObjectNode shares(RefusalEvaluation.Shares s) {
        ObjectNode o = JSON.createObjectNode();
        o.put("replies", s.replies());
        num(o, "refused", s.refused());
        num(o, "judge_refused", s.judgeRefused());
        o.put("judged", s.judged());
        o.put("unparseable", s.unparseable());
        o.put("failed", s.failed());
        num(o, "target_share", s.target());
        return o;
    }

    /**
     * The refusal case study's JSON report: {@code about}, the factors, the unsteered shares, each
     * factor's scores and every reply.
     *
     * @param r     the case study's result
     * @param about what was run, as key/value pairs
     * @return the report
     */
    public static ObjectNode refusalJson(RefusalEvaluation.Result r, Map<String, String> about) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode a = root.putObject("about");
        about.forEach(a::put);
        root.put("evaluation", "refusal");
        ArrayNode fs = root.putArray("factors");
        r.factors().forEach(fs::add);
        if (r.targetPattern() != null) {
            root.put("target_pattern", r.targetPattern());
        }
        root.put("judged", r.judged());
        root.put("cached", r.cached());
        root.set("unsteered", shares(r.unsteered()));
        ArrayNode per = root.putArray("per_factor");
        for (RefusalEvaluation.FactorScores s : r.scores()) {
            ObjectNode o = per.addObject();
            o.put("factor", s.factor());
            num(o, "refusal_score", s.refusalScore());
            num(o, "suppression_score", s.suppressionScore());
            num(o, "harmonic", s.harmonic());
            num(o, "judge_refusal_score", s.judgeRefusalScore());
            num(o, "judge_suppression_score", s.judgeSuppressionScore());
            num(o, "judge_harmonic", s.judgeHarmonic());
            o.set("inject", shares(s.inject()));
            o.set("suppress", shares(s.suppress()));
        }
        ArrayNode items = root.putArray("items");
        for (RefusalEvaluation.Item it : r.items()) {
            ObjectNode o = items.addObject();
            o.put("index", it.index());
            o.put("condition", it.condition());
            if (!it.condition().equals("unsteered")) {
                o.put("factor", it.factor());
            }
            o.put("prompt", it.instruction());
            o.put("reply", it.reply());
            o.put("refused", it.matchedPhrase() != null);
            if (it.matchedPhrase() != null) {
                o.put("matched_phrase", it.matchedPhrase());
            }
            if (it.verdict() != null) {
                o.set("judge", verdict(it.verdict(), it.judgeRefused()));
            }
            if (it.targetHit() != null) {
                o.put("target_hit", it.targetHit());
            }
        }
        return root;
    }

    /**
     * The refusal case study's table: per factor, the refusal score under injection beside the
     * unsteered refusal, the suppression score and their harmonic mean (and the judge's, and the target
     * shares, when there are any).
     *
     * @param r the case study's result
     * @return the Markdown text
     */
    public static String refusalMarkdown(RefusalEvaluation.Result r) {
        StringBuilder sb = new StringBuilder();
        RefusalEvaluation.Shares u = r.unsteered();
        sb.append(String.format(Locale.ROOT, "Refusal case study: %d harmful instructions; unsteered refusal %s (phrase matcher)%s%s%n%n",
                u.replies(), fmt(u.refused()), r.judged() ? ", " + fmt(u.judgeRefused()) + " (judge)" : "",
                r.targetPattern() != null ? ", unsteered target share " + fmt(u.target()) : ""));
        sb.append("| m | Refusal (inject) | Unsteered refusal | Suppression | Harmonic mean |");
        StringBuilder sep = new StringBuilder("|---:|---:|---:|---:|---:|");
        if (r.judged()) {
            sb.append(" Judge refusal | Judge suppression | Judge harmonic |");
            sep.append("---:|---:|---:|");
        }
        if (r.targetPattern() != null) {
            sb.append(" Target share (inject) | Target share (suppress) |");
            sep.append("---:|---:|");
        }
        sb.append('\n').append(sep).append('\n');
        for (RefusalEvaluation.FactorScores s : r.scores()) {
            sb.append(String.format(Locale.ROOT, "| %s | %s | %s | %s | %s |", s.factor(), fmt(s.refusalScore()), fmt(u.refused()),
                    fmt(s.suppressionScore()), fmt(s.harmonic())));
            if (r.judged()) {
                sb.append(String.format(Locale.ROOT, " %s | %s | %s |", fmt(s.judgeRefusalScore()), fmt(s.judgeSuppressionScore()),
                        fmt(s.judgeHarmonic())));
            }
            if (r.targetPattern() != null) {
                sb.append(String.format(Locale.ROOT, " %s | %s |", fmt(s.inject().target()), fmt(s.suppress().target())));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    /**
     * Refusal, suppression and their harmonic mean against m.
     *
     * @param r   the case study's result
     * @param png the PNG file to write
     * @return true when the plot was written, false when no factor has a value
     * @throws IOException when the file cannot be written
     */
    public static boolean writeRefusalPlot(RefusalEvaluation.Result r, Path png) throws IOException {
        int n = r.scores().size();
        double[] xs = new double[n];
        double[][] ys = new double[3][n];
        for (int f = 0; f < n; f++) {
            RefusalEvaluation.FactorScores s = r.scores().get(f);
            xs[f] = s.factor();
            ys[0][f] = s.refusalScore();
            ys[1][f] = s.suppressionScore();
            ys[2][f] = s.harmonic();
        }
        return plot(png, "Refusal case study", "share", xs, new String[] {"refusal (inject)", "suppression", "harmonic mean"}, ys);
    }

    /**
     * Writes {@code json} (pretty) and {@code markdown} atomically.
     *
     * @param jsonFile the JSON report's file
     * @param json     the JSON report
     * @param mdFile   the Markdown report's file
     * @param markdown the Markdown report
     * @throws IOException when a file cannot be written (the message names it)
     */
    public static void write(Path jsonFile, ObjectNode json, Path mdFile, String markdown) throws IOException {
        AtomicFiles.write(jsonFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(json).getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(mdFile, markdown.getBytes(StandardCharsets.UTF_8));
    }
}
