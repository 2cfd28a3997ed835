package dev.cdas.io;

import java.nio.file.Path;

/** A safetensors file or its sharding index breaks the format or contradicts itself. */
public final class SafetensorsFormatException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    public SafetensorsFormatException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    public SafetensorsFormatException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }
}
