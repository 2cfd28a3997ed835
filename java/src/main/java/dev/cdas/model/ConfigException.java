package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** config.json is missing, malformed, names an unsupported model, or lacks a required field. */
public final class ConfigException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    public ConfigException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    public ConfigException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }
}
