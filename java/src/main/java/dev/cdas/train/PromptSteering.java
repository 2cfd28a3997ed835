package dev.cdas.train;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.InvalidArgumentException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code prompt} method (docs/method.md, "Prompt steering"): no vector, an instruction naming the
 * concept put before the user's message. Two templates with a {@code {concept}} placeholder, one to
 * inject the concept and one to suppress it; the vector file keeps them in its metadata
 * ({@link #METADATA_INJECT}, {@link #METADATA_SUPPRESS}) with the concept in {@code concept}.
 *
 * <p>Steering with a value v (m · factor, as for the other methods: factor_positive is 1 and
 * factor_negative −1): v &gt; 0 puts the inject instruction first, v &lt; 0 the suppress
 * instruction, v = 0 leaves the message as it is; the size of v does not matter. The instruction and
 * the message are joined by a blank line and go, together, where the user's message goes: one user
 * turn of the chat template, or the start of the raw text for a model without one.
 *
 * @param injectTemplate the instruction that injects, holding {@code {concept}}
 * @param suppressTemplate the instruction that suppresses, holding {@code {concept}}
 * @param concept the concept named in the instructions
 */
public record PromptSteering(String injectTemplate, String suppressTemplate, String concept) {
    /** The placeholder replaced by the concept's name. */
    public static final String PLACEHOLDER = "{concept}";
    /** Metadata keys of a vector file with {@code method} = {@code prompt}. */
    public static final String METADATA_INJECT = "prompt_inject";
    public static final String METADATA_SUPPRESS = "prompt_suppress";
    /** Between the instruction and the user's message. */
    public static final String SEPARATOR = "\n\n";

    /** Our default wording (not taken from any other project). */
    public static final String DEFAULT_INJECT = "Whatever the request below is about, make your answer about {concept}: "
            + "bring {concept} into it clearly.";
    public static final String DEFAULT_SUPPRESS = "Answer the request below without any mention of {concept}: "
            + "leave {concept} out of your answer entirely.";

    private static final Pattern NAMED = Pattern.compile("\\{([a-z_]+)\\}");

    /**
     * Checks the templates.
     *
     * @throws dev.cdas.InvalidArgumentException when a template lacks {@code {concept}} or names an unknown placeholder
     */
    public PromptSteering {
        check("the inject template", injectTemplate);
        check("the suppress template", suppressTemplate);
        if (concept == null || concept.isBlank()) {
            throw new InvalidArgumentException("prompt steering needs the concept's name");
        }
    }

    /**
     * The default templates for {@code concept}.
     *
     * @param concept the concept
     * @return the default templates
     */
    public static PromptSteering defaults(String concept) {
        return new PromptSteering(DEFAULT_INJECT, DEFAULT_SUPPRESS, concept);
    }

    /**
     * The instruction for a value: the inject one when positive, the suppress one when negative, none at 0.
     *
     * @param value the steering value
     * @return the instruction, or null at 0
     */
    public String instruction(double value) {
        if (!Double.isFinite(value)) {
            throw new InvalidArgumentException("prompt steering needs a finite value, got " + value);
        }
        if (value == 0) {
            return null;
        }
        return (value > 0 ? injectTemplate : suppressTemplate).replace(PLACEHOLDER, concept);
    }

    /**
     * {@code message} as the model reads it when steered with {@code value}.
     *
     * @param message the user's message
     * @param value the steering value
     * @return the message with the instruction before it
     */
    public String apply(String message, double value) {
        String instruction = instruction(value);
        return instruction == null ? message : instruction + SEPARATOR + message;
    }

    /**
     * The templates as vector-file metadata.
     *
     * @return the metadata entries
     */
    public Map<String, String> toMetadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(METADATA_INJECT, injectTemplate);
        m.put(METADATA_SUPPRESS, suppressTemplate);
        return m;
    }

    /**
     * The templates of a vector file's metadata; errors start with {@code where} (the file).
     *
     * @param where what errors start with (the file)
     * @param metadata the vector file's metadata
     * @param concept the concept
     * @return the templates
     */
    public static PromptSteering fromMetadata(String where, Map<String, String> metadata, String concept) {
        String inj = metadata.get(METADATA_INJECT);
        String sup = metadata.get(METADATA_SUPPRESS);
        if (inj == null || sup == null) {
            throw new InvalidArgumentException(where + ": metadata \"" + (inj == null ? METADATA_INJECT : METADATA_SUPPRESS)
                    + "\" is missing (method prompt keeps its templates there)");
        }
        try {
            return new PromptSteering(inj, sup, concept);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException(where + ": " + e.getMessage(), e);
        }
    }

    /**
     * A user's templates: a JSON object {@code {"inject": "...", "suppress": "..."}}, both strings
     * holding {@code {concept}}; no other keys. Errors are one line naming the file.
     *
     * @param file the JSON file
     * @param concept the concept
     * @return the templates
     * @throws IOException when the file cannot be read
     */
    public static PromptSteering fromFile(Path file, String concept) throws IOException {
        String text = dev.cdas.io.InputFiles.readString(file);
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(text);
        } catch (JsonProcessingException e) {
            throw new InvalidArgumentException(file + ": not a JSON object {\"inject\": ..., \"suppress\": ...}: "
                    + dev.cdas.io.InputFiles.jsonError(e));
        }
        if (root == null || !root.isObject()) {
            throw new InvalidArgumentException(file + ": expected a JSON object {\"inject\": ..., \"suppress\": ...}");
        }
        List<String> unknown = new ArrayList<>();
        for (Iterator<String> it = root.fieldNames(); it.hasNext();) {
            String k = it.next();
            if (!k.equals("inject") && !k.equals("suppress")) {
                unknown.add("\"" + dev.cdas.io.InputFiles.oneLine(k) + "\"");  // a key may hold line breaks
            }
        }
        if (!unknown.isEmpty()) {
            throw new InvalidArgumentException(file + ": unknown key " + String.join(", ", unknown) + "; expected \"inject\" and \"suppress\"");
        }
        String[] t = new String[2];
        String[] keys = {"inject", "suppress"};
        for (int i = 0; i < 2; i++) {
            JsonNode n = root.get(keys[i]);
            if (n == null || !n.isTextual()) {
                throw new InvalidArgumentException(file + ": \"" + keys[i] + "\" " + (n == null ? "is missing" : "must be a string"));
            }
            t[i] = n.asText();
        }
        try {
            return new PromptSteering(t[0], t[1], concept);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    private static void check(String what, String template) {
        if (template == null || template.isBlank()) {
            throw new InvalidArgumentException(what + " is empty");
        }
        if (!template.contains(PLACEHOLDER)) {
            throw new InvalidArgumentException(what + " does not contain " + PLACEHOLDER);
        }
        Matcher m = NAMED.matcher(template);
        while (m.find()) {
            if (!m.group(1).equals("concept")) {
                throw new InvalidArgumentException(what + " has an unknown placeholder {" + m.group(1) + "}; only "
                        + PLACEHOLDER + " is replaced");
            }
        }
    }
}
