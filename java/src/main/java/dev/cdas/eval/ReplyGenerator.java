package dev.cdas.eval;

import dev.cdas.train.ProgressListener;
import java.io.IOException;
import java.util.List;

/** Where the replies an evaluation judges come from ({@link ModelReplies} in practice, anything in tests). */
@FunctionalInterface
public interface ReplyGenerator {
    /**
     * Steering of one condition: m x a+ ({@code inject}) or m x a- (suppress), as the vector's method applies it.
     *
     * @param inject     true for m x a+ (inject the concept), false for m x a- (suppress it)
     * @param multiplier m, the factor on the vector's value
     */
    record Steering(boolean inject, double multiplier) {
        /** {@return the condition's name in reports, for example "inject x1.5"} */
        public String label() {
            return (inject ? "inject" : "suppress") + " x" + multiplier;
        }
    }

    /**
     * One reply per instruction, unsteered when {@code steering} is null.
     *
     * @param instructions the user turns, in order
     * @param steering     the condition, or null for unsteered replies
     * @param listener     progress reports, or null
     * @return one reply per instruction, in the same order
     * @throws IOException when the replies cannot be produced (a model file changed, a judge's I/O)
     */
    List<String> generate(List<String> instructions, Steering steering, ProgressListener listener) throws IOException;
}
