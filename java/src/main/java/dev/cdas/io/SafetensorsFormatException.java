package dev.cdas.io;

import java.nio.file.Path;
import java.util.List;

/** A safetensors file or its sharding index breaks the format or contradicts itself. */
public final class SafetensorsFormatException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    /**
     * A malformed safetensors file or index; the message reads "file: field: problem".
     *
     * @param file    the file at fault
     * @param field   the header field or tensor at fault, or null for the whole file
     * @param problem what is wrong
     */
    public SafetensorsFormatException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    /**
     * A malformed safetensors file or index, with the error that revealed it.
     *
     * @param file    the file at fault
     * @param field   the header field or tensor at fault, or null for the whole file
     * @param problem what is wrong
     * @param cause   the underlying error, or null
     */
    public SafetensorsFormatException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }

    /**
     * A safetensors file or checkpoint with several problems: "file: field: problem" on the first
     * line, then {@code more}, one line each.
     *
     * @param file    the file at fault
     * @param field   the header field or tensor of the first problem, or null for the whole file
     * @param problem the first problem
     * @param more    the lines listed below it
     */
    public SafetensorsFormatException(Path file, String field, String problem, List<String> more) {
        super(file, field, problem, more, null);
    }
}
