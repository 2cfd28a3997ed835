package dev.cdas.eval;

import dev.cdas.InternalException;
import dev.cdas.data.DataFormatException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A judge prompt with named placeholders: {@code {instruction}}, {@code {reply}} and
 * {@code {concept}}, each replaced by its value in one pass (a value that itself contains a
 * placeholder is left as it is). Other text in braces that is not a lower-case name (JSON, say)
 * is left alone; an unknown lower-case name is an error, so a misspelt placeholder is caught when
 * the template is read. Every template must hold {@code {reply}}.
 *
 * @param name the template's name in messages (a file name, or "built-in ...")
 * @param text the template, with its placeholders
 */
public record JudgeTemplate(String name, String text) {
    /** The placeholders a template may use. */
    public static final Set<String> PLACEHOLDERS = Set.of("instruction", "reply", "concept");

    private static final Pattern PLACEHOLDER = Pattern.compile("\\{([a-z_]+)\\}");

    /**
     * Checks the placeholders.
     *
     * @throws dev.cdas.InvalidArgumentException when the text uses an unknown placeholder or lacks {@code {reply}}
     */
    public JudgeTemplate {
        String problem = problem(text);
        if (problem != null) {
            throw new dev.cdas.InvalidArgumentException("judge template " + name + ": " + problem);
        }
    }

    /** What is wrong with {@code text} as a template, or null. */
    static String problem(String text) {
        Set<String> used = placeholders(text);
        for (String p : used) {
            if (!PLACEHOLDERS.contains(p)) {
                return "unknown placeholder {" + p + "} (known: {instruction}, {reply}, {concept})";
            }
        }
        return used.contains("reply") ? null : "no {reply} placeholder";
    }

    /**
     * The project's own template for {@code axis}.
     *
     * @param axis what the judge rates
     * @return the template
     * @throws InternalException when the template is missing from the jar
     */
    public static JudgeTemplate builtIn(JudgeAxis axis) {
        try (InputStream in = JudgeTemplate.class.getResourceAsStream(axis.resource())) {
            if (in == null) {
                throw new InternalException("the built-in judge template " + axis.resource() + " is missing from the jar");
            }
            return new JudgeTemplate("built-in " + axis.resource(), new String(in.readAllBytes(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new InternalException("cannot read the built-in judge template " + axis.resource() + ": " + e.getMessage());
        }
    }

    /**
     * A template file; a bad one is an error naming the file.
     *
     * @param file the template file, UTF-8
     * @return the template, named by the file
     * @throws DataFormatException when the text uses an unknown placeholder or lacks {@code {reply}}
     * @throws IOException         when the file cannot be read
     */
    public static JudgeTemplate fromFile(Path file) throws IOException {
        String text = dev.cdas.io.InputFiles.readString(file);
        String problem = problem(text);
        if (problem != null) {
            throw new DataFormatException(file, null, null, "judge template: " + problem);
        }
        return new JudgeTemplate(file.toString(), text);
    }

    /** The placeholder names {@code text} uses, in order of first use. */
    static Set<String> placeholders(String text) {
        Set<String> out = new LinkedHashSet<>();
        Matcher m = PLACEHOLDER.matcher(text);
        while (m.find()) {
            out.add(m.group(1));
        }
        return out;
    }

    /**
     * The prompt for these values; every placeholder the template uses must have one.
     *
     * @param values the values by placeholder name
     * @return the prompt
     * @throws dev.cdas.InvalidArgumentException when a placeholder the template uses has no value
     */
    public String render(Map<String, String> values) {
        Matcher m = PLACEHOLDER.matcher(text);
        StringBuilder sb = new StringBuilder(text.length() + 256);
        while (m.find()) {
            String v = values.get(m.group(1));
            if (v == null) {
                throw new dev.cdas.InvalidArgumentException("judge template " + name + " needs a value for {" + m.group(1) + "}");
            }
            m.appendReplacement(sb, Matcher.quoteReplacement(v));
        }
        m.appendTail(sb);
        return sb.toString();
    }
}
