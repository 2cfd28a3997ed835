package dev.cdas.model;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Path;

/** The chat template failed to render, or called raise_exception (e.g. "this format has no system turn"). */
public final class ChatTemplateException extends ModelFormatException {
    private static final long serialVersionUID = 1L;

    /**
     * A template that failed; the message is kept on one line.
     *
     * @param file    the file the template came from
     * @param problem what failed (Jinjava's message, line breaks escaped)
     * @param cause   the underlying error, or null
     */
    public ChatTemplateException(Path file, String problem, Throwable cause) {
        super(file, "chat_template", oneLine(problem), cause);
    }

    /**
     * Jinjava's messages quote the template around the error, line breaks included; they are
     * written as the two characters \n (and \r) so that the error stays one line and the quoted
     * template stays recognisable.
     */
    static String oneLine(String problem) {
        return problem == null ? null : problem.replace("\r", "\\r").replace("\n", "\\n");
    }
}
