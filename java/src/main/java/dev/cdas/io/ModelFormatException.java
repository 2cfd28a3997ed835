package dev.cdas.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A model file (checkpoint, index, config.json, tokenizer files) is missing or malformed. The
 * message always starts with the file and names the offending field or tensor, so a user can go
 * straight to it; {@link #file()} and {@link #field()} carry the same for programs.
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
        super(format(file, field, problem), cause);
        this.file = file;
        this.field = field;
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
