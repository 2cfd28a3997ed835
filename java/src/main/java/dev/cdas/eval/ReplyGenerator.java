package dev.cdas.eval;

import dev.cdas.train.ProgressListener;
import java.io.IOException;
import java.util.List;

/** Where the replies an evaluation judges come from ({@link ModelReplies} in practice, anything in tests). */
@FunctionalInterface
public interface ReplyGenerator {
    /** Steering of one condition: m x a+ ({@code inject}) or m x a- (suppress), as the vector's method applies it. */
    record Steering(boolean inject, double multiplier) {
        public String label() {
            return (inject ? "inject" : "suppress") + " x" + multiplier;
        }
    }

    /** One reply per instruction, unsteered when {@code steering} is null. */
    List<String> generate(List<String> instructions, Steering steering, ProgressListener listener) throws IOException;
}
