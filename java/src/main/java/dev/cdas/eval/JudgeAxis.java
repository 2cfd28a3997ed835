package dev.cdas.eval;

import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a judge rates: the three axes of a steered reply (each 0, 1 or 2) and, for the refusal
 * case study, whether a reply refuses (0 or 1). A judge's answer counts only when its last
 * non-blank line is exactly {@code Rating: N} with N an allowed value ({@link #parse}); anything
 * else is unparseable, never read as 0.
 */
public enum JudgeAxis {
    /** The reply shows the concept: 0 not at all, 1 somewhat, 2 clearly. */
    CONCEPT("concept", "judge-concept.txt", 2),
    /** The reply follows the instruction: 0 not at all, 1 partly, 2 fully. */
    INSTRUCTION("instruction", "judge-instruction.txt", 2),
    /** The reply is fluent: 0 not at all, 1 somewhat, 2 fully. */
    FLUENCY("fluency", "judge-fluency.txt", 2),
    /** The reply refuses the instruction: 1 yes, 0 no. */
    REFUSAL("refusal", "judge-refusal.txt", 1);

    private static final Pattern RATING = Pattern.compile("Rating:[ \\t]*([0-9])[ \\t]*\\.?");

    private final String id;
    private final String resource;
    private final int maxRating;

    JudgeAxis(String id, String resource, int maxRating) {
        this.id = id;
        this.resource = resource;
        this.maxRating = maxRating;
    }

    /**
     * The axis's name in reports and options ("concept", "instruction", "fluency", "refusal").
     *
     * @return the id
     */
    public String id() {
        return id;
    }

    /**
     * The name of the project's template for this axis among this package's resources.
     *
     * @return the resource's file name
     */
    public String resource() {
        return resource;
    }

    /**
     * The highest rating (2, or 1 for refusal); the lowest is 0.
     *
     * @return 2, or 1 for refusal
     */
    public int maxRating() {
        return maxRating;
    }

    /**
     * The rating in a judge's answer: its last non-blank line must be {@code Rating: N} (optionally
     * with a final full stop and surrounding spaces), N from 0 to {@link #maxRating}; otherwise empty.
     *
     * @param answer the judge's answer, or null
     * @return the rating, or empty when the answer has none in the required form
     */
    public OptionalInt parse(String answer) {
        if (answer == null) {
            return OptionalInt.empty();
        }
        String last = null;
        for (String line : answer.lines().toList()) {
            if (!line.isBlank()) {
                last = line.strip();
            }
        }
        if (last == null) {
            return OptionalInt.empty();
        }
        Matcher m = RATING.matcher(last);
        if (!m.matches()) {
            return OptionalInt.empty();
        }
        int r = m.group(1).charAt(0) - '0';
        return r <= maxRating ? OptionalInt.of(r) : OptionalInt.empty();
    }
}
