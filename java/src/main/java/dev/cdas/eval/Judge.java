package dev.cdas.eval;

import dev.cdas.train.ProgressListener;
import java.util.List;

/**
 * A model that answers judge prompts: a chat-completions endpoint ({@link HttpJudge}) or a local
 * model folder, generating ({@link LocalJudge}) or scoring the possible answers ({@link LoglikJudge}). {@link JudgeCache#judgeAll} puts a cache in front of one.
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

    /**
     * What identifies this judge's answers when its ratings run from 0 to {@code maxRating}: the
     * same as {@link #id()} for a judge that answers in words (the prompt asks for the range), and
     * with the range for one that chooses among the possible answers ({@link LoglikJudge}).
     *
     * @param maxRating the highest rating (2 for the steering axes, 1 for refusal)
     * @return the identifier
     */
    default String id(int maxRating) {
        return id();
    }

    /**
     * The answers to {@code prompts} whose ratings run from 0 to {@code maxRating}: by default
     * {@link #judge(List, ProgressListener)} (the prompt states the range); a judge that chooses
     * among the possible answers ({@link LoglikJudge}) uses it.
     *
     * @param prompts   the prompts
     * @param maxRating the highest rating (2 for the steering axes, 1 for refusal)
     * @param listener  progress reports, or null
     * @return one verdict per prompt, in order
     * @throws JudgeException when the judge cannot work at all
     */
    default List<Verdict> judge(List<String> prompts, int maxRating, ProgressListener listener) {
        return judge(prompts, listener);
    }

    @Override
    default void close() {}
}
