package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** tokenizer.json / tokenizer_config.json is missing, malformed, or cannot be loaded. */
public final class TokenizerException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    public TokenizerException(Path file, String field, String problem) {
        super(file, field, problem);
    }

    public TokenizerException(Path file, String field, String problem, Throwable cause) {
        super(file, field, problem, cause);
    }
}
