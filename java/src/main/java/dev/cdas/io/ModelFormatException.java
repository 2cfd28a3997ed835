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
    private final String field;

    public ModelFormatException(Path file, String field, String problem) {
        this(file, field, problem, null);
    }

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

    /** The file at fault (a folder when a required file is missing from it). */
    public Path file() {
        return file;
    }

    /** The field, tensor or entry at fault, or null when the whole file is. */
    public String field() {
        return field;
    }
}
