package dev.cdas.eval;

import dev.cdas.train.ProgressListener;
import java.util.List;

/**
 * A model that answers judge prompts: a chat-completions endpoint ({@link HttpJudge}) or a local
 * model folder ({@link LocalJudge}). {@link JudgeCache#judgeAll} puts a cache in front of one.
 */
public interface Judge extends AutoCloseable {
    /** One prompt's outcome: the judge's text, or why there is none ({@code error}, text null). */
    record Verdict(String text, String error) {
        public static Verdict of(String text) {
            return new Verdict(text, null);
        }

        public static Verdict failed(String error) {
            return new Verdict(null, error);
        }

        public boolean ok() {
            return error == null;
        }
    }

    /**
     * What identifies this judge's answers in the cache: the model and whatever else changes its
     * answers (never a credential).
     */
    String id();

    /**
     * The answers to {@code prompts}, in order; a prompt the judge could not answer (time limit,
     * retries spent) is a failed verdict, not an exception. Errors no retry can fix (a refused key,
     * an unknown model) throw {@link JudgeException}.
     */
    List<Verdict> judge(List<String> prompts, ProgressListener listener);

    @Override
    default void close() {}
}
