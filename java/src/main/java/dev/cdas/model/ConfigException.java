package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** config.json is missing, malformed, names an unsupported model, or lacks a required field. */
public final class ConfigException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    /**
     * A bad config.json; the message reads "file: field: problem".
     *
     * @param file    the config.json
     * @param field   the field at fault, or null for the whole file
     * @param problem what is wrong
     */
    public ConfigException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    /**
     * A bad config.json, with the error that revealed it.
     *
     * @param file    the config.json
     * @param field   the field at fault, or null for the whole file
     * @param problem what is wrong
     * @param cause   the underlying error (a JSON parse error, an I/O error)
     */
    public ConfigException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }
}
