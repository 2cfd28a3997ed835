package dev.cdas.eval;

import dev.cdas.CdasException;
import dev.cdas.Status;

/** A judge that cannot work at all (the endpoint refuses the key, does not know the model, answers garbage). */
public final class JudgeException extends CdasException {
    private static final long serialVersionUID = 1L;

    /**
     * A judge failure, with status {@link Status#IO_ERROR}.
     *
     * @param message what the judge answered or why it could not be reached
     */
    public JudgeException(String message) {
        super(Status.IO_ERROR, message);
    }
}
