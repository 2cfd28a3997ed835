package dev.cdas.io;

import java.nio.file.Path;

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
}
