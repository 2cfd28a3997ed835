package dev.cdas.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A data file that cannot be used as training pairs. The message always starts with the file and,
 * where they apply, the line (JSONL, 1-based) or row (Parquet, 0-based like pandas) and the field,
 * e.g. {@code pairs.jsonl line 7, field "concept_id": expected an integer, found "three"}.
 */
public final class DataFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    /** The data file (not serialised: {@link Path} is not serialisable). */
    private final transient Path file;
    /** "line N", "row N", or null. */
    private final String location;
    /** The field or column, or null. */
    private final String field;

    /**
     * A problem with a file, one of its lines or rows, or one field there.
     *
     * @param file     the data file
     * @param location "line N" (JSON Lines), "row N" (Parquet), or null for the whole file
     * @param field    the field or column, or null
     * @param problem  what is wrong, e.g. "missing"
     */
    public DataFormatException(Path file, String location, String field, String problem) {
        this(file, location, field, problem, null);
    }

    /**
     * A problem with a file, one of its lines or rows, or one field there, caused by another exception.
     *
     * @param file     the data file
     * @param location "line N" (JSON Lines), "row N" (Parquet), or null for the whole file
     * @param field    the field or column, or null
     * @param problem  what is wrong
     * @param cause    the underlying failure, or null
     */
    public DataFormatException(Path file, String location, String field, String problem, Throwable cause) {
        super(describe(file, location, field) + ": " + oneLine(problem), cause);
        this.file = file;
        this.location = location;
        this.field = field;
    }

    /**
     * The problem on one line: a library's message quoted in it (Parquet's, which prints a whole
     * schema) may span lines; its line breaks and the indentation after them become single spaces.
     */
    static String oneLine(String problem) {
        return problem == null ? null : problem.strip().replaceAll("\\s*\\R\\s*", " ");
    }

    private static String describe(Path file, String location, String field) {
        StringBuilder sb = new StringBuilder(String.valueOf(file));
        if (location != null) {
            sb.append(' ').append(location);
        }
        if (field != null) {
            sb.append(location != null ? ", field \"" : " field \"").append(field).append('"');
        }
        return sb.toString();
    }

    /**
     * The data file.
     *
     * @return the file the problem is in
     */
    public Path file() {
        return file;
    }

    /**
     * Where in the file.
     *
     * @return "line N", "row N", or empty for a problem with the whole file
     */
    public Optional<String> location() {
        return Optional.ofNullable(location);
    }

    /**
     * The field or column the problem is in.
     *
     * @return its name as the file spells it, or empty
     */
    public Optional<String> field() {
        return Optional.ofNullable(field);
    }
}
