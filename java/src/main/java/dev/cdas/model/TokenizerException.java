package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** tokenizer.json / tokenizer_config.json is missing, malformed, or cannot be loaded. */
public final class TokenizerException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    /**
     * A bad tokenizer file; the message reads "file: field: problem".
     *
     * @param file    the tokenizer file (or the folder it is missing from)
     * @param field   the field at fault, or null for the whole file
     * @param problem what is wrong
     */
    public TokenizerException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    /**
     * A bad tokenizer file, with the error that revealed it.
     *
     * @param file    the tokenizer file (or the folder it is missing from)
     * @param field   the field at fault, or null for the whole file
     * @param problem what is wrong
     * @param cause   the underlying error
     */
    public TokenizerException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }
}
