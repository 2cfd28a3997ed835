package dev.cdas.eval;

import dev.cdas.train.ProgressListener;
import java.util.List;

/**
 * A model that answers judge prompts: a chat-completions endpoint ({@link HttpJudge}) or a local
 * model folder ({@link LocalJudge}). {@link JudgeCache#judgeAll} puts a cache in front of one.
 */
public interface Judge extends AutoCloseable {
    /**
     * One prompt's outcome: the judge's text, or why there is none ({@code error}, text null).
     *
     * @param text  the judge's answer, or null when it failed
     * @param error why there is no answer, or null when there is one
     */
    record Verdict(String text, String error) {
        /**
         * An answer.
         *
         * @param text the judge's answer
         * @return the verdict
         */
        public static Verdict of(String text) {
            return new Verdict(text, null);
        }

        /**
         * A prompt the judge could not answer.
         *
         * @param error why (time limit, retries spent, the model's context exceeded)
         * @return the verdict
         */
        public static Verdict failed(String error) {
            return new Verdict(null, error);
        }

        /** {@return whether the judge answered} */
        public boolean ok() {
            return error == null;
        }
    }

    /**
     * What identifies this judge's answers in the cache: the model and whatever else changes its
     * answers (never a credential).
     *
     * @return the identifier
     */
    String id();

    /**
     * The answers to {@code prompts}, in order; a prompt the judge could not answer (time limit,
     * retries spent) is a failed verdict, not an exception. Errors no retry can fix (a refused key,
     * an unknown model) throw {@link JudgeException}.
     *
     * @param prompts  the prompts
     * @param listener progress reports, or null
     * @return one verdict per prompt, in order
     * @throws JudgeException when the judge cannot work at all
     */
    List<Verdict> judge(List<String> prompts, ProgressListener listener);

    @Override
    default void close() {}
}
