package dev.cdas.io;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A model file (checkpoint, index, config.json, tokenizer files) is missing or malformed. The
 * message always starts with the file and names the offending field or tensor, so a user can go
 * straight to it; {@link #file()} and {@link #field()} carry the same for programs. It is one line
 * (a line break quoted from the file is written {@code \n}), except a list below it where a
 * constructor takes one.
 */
public class ModelFormatException extends IOException {
    private static final long serialVersionUID = 1L;

    private final transient Path file;
    /** The field, tensor or entry at fault, or null; serialized with the exception. */
    private final String field;

    /**
     * A malformed model file; the message reads "file: field: problem".
     *
     * @param file    the file at fault, or null when unknown
     * @param field   the field, tensor or entry at fault, or null for the whole file
     * @param problem what is wrong
     */
    public ModelFormatException(Path file, String field, String problem) {
        this(file, field, problem, null);
    }

    /**
     * A malformed model file with the error that revealed it; the message reads "file: field: problem".
     *
     * @param file    the file at fault, or null when unknown
     * @param field   the field, tensor or entry at fault, or null for the whole file
     * @param problem what is wrong
     * @param cause   the underlying error (a JSON parse error, an I/O error), or null
     */
    public ModelFormatException(Path file, String field, String problem, Throwable cause) {
        this(file, field, problem, List.of(), cause);
    }

    /**
     * A malformed model file whose message lists more below its first line "file: field: problem"
     * (the checkpoint validator's other mismatched tensors). Line breaks and other control characters
     * in the first line and in each listed line (a field name or value quoted from the file) are
     * written as escapes ({@code \n}), so that the message has exactly 1 + {@code more.size()} lines.
     *
     * @param file    the file at fault, or null when unknown
     * @param field   the field, tensor or entry at fault, or null for the whole file
     * @param problem what is wrong
     * @param more    further lines, each on its own line below the first
     * @param cause   the underlying error, or null
     */
    protected ModelFormatException(Path file, String field, String problem, List<String> more, Throwable cause) {
        super(lines(format(file, field, problem), more), cause);
        this.file = file;
        this.field = field;
    }

    private static String lines(String first, List<String> more) {
        StringBuilder sb = new StringBuilder(InputFiles.oneLine(first));
        for (String line : more) {
            sb.append('\n').append(InputFiles.oneLine(line));
        }
        return sb.toString();
    }

    private static String format(Path file, String field, String problem) {
        StringBuilder sb = new StringBuilder();
        sb.append(file == null ? "<unknown file>" : file.toString()).append(": ");
        // "file: field: problem", or "file: problem" when the problem already starts with the field
        // (so that messages read "x.safetensors: tensor w has shape [2], config.json implies [3]").
        if (field != null && !field.isEmpty() && !problem.startsWith(field)) {
            sb.append(field).append(": ");
        }
        return sb.append(problem).toString();
    }

    /**
     * The file at fault (a folder when a required file is missing from it).
     *
     * @return the path, or null when unknown (it is not serialized)
     */
    public Path file() {
        return file;
    }

    /**
     * The field, tensor or entry at fault, or null when the whole file is.
     *
     * @return the name of the field, tensor or entry, or null
     */
    public String field() {
        return field;
    }
}
