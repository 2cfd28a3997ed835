package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** The chat template failed to render, or called raise_exception (e.g. "System role not supported"). */
public final class ChatTemplateException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    public ChatTemplateException(Path file, String problem, Throwable cause) {
        super(file, "chat_template", problem, cause);
    }
}
