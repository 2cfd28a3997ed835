package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.PromptEncoder;
import java.util.Arrays;
import java.util.List;

/**
 * Token-level form of a {@link DirectionExample}, what the runtime's objective feeds the model:
 * prompts rendered with the chat template (generation prompt included), the response tokenised
 * once without special tokens and truncated on ids ({@link ResponseTruncation}), then appended to
 * both prompts as the same ids.
 */
public final class ExampleEncoder {

    /**
     * @param base             {@code baseInput ⊕ response}: intervened at positions {@code ≥ basePrefixLen}
     * @param basePrefixLen    the template's shared opening in {@code base} (docs/method.md: prefix_len)
     * @param basePromptLength tokens of the rendered base prompt
     * @param source           the rendered source prompt; {@code sourcePosition} is its last token
     * @param target           {@code sourceInput ⊕ response}: the unmodified model on it gives the target
     * @param targetPromptLength tokens of the rendered target (= source) prompt
     * @param responseLength   response tokens after truncation ({@code ≥ 1})
     */
    public record EncodedExample(int[] base, int basePrefixLen, int basePromptLength, int[] source,
            int sourcePosition, int[] target, int targetPromptLength, int responseLength, String origin) {

        /**
         * First of the {@code responseLength} positions of {@code base} whose next-token
         * distributions predict the response tokens (the causal-LM shift: the last prompt
         * token predicts the first response token). The loss compares these with the same
         * number of positions from {@link #targetLossStart()} in {@code target}.
         */
        public int baseLossStart() {
            return basePromptLength - 1;
        }

        public int targetLossStart() {
            return targetPromptLength - 1;
        }

        @Override
        public String toString() {
            return "EncodedExample[" + origin + ": base " + base.length + " tokens (prefix " + basePrefixLen + ", prompt "
                    + basePromptLength + "), source " + source.length + ", target " + target.length + ", response "
                    + responseLength + "]";
        }
    }

    /**
     * One sequence {@code input ⊕ response}, rendered and truncated as in {@link #encode}: the
     * unmodified sequences DiffMean averages over ({@link DiffMean}).
     *
     * @param prefixLen    the template's shared opening (docs/method.md: prefix_len)
     * @param promptLength tokens of the rendered prompt; the response follows (possibly none)
     */
    public record EncodedSequence(int[] ids, int prefixLen, int promptLength, String origin) {
        public int responseLength() {
            return ids.length - promptLength;
        }
    }

    private final PromptEncoder prompts;
    private final int maxResponseTokens;

    public ExampleEncoder(PromptEncoder prompts, int maxResponseTokens) {
        if (maxResponseTokens < 1) {
            throw new InvalidArgumentException("max response tokens must be at least 1, got " + maxResponseTokens);
        }
        this.prompts = prompts;
        this.maxResponseTokens = maxResponseTokens;
    }

    public EncodedExample encode(DirectionExample e) throws ChatTemplateException {
        PromptEncoder.EncodedPrompt base = prompts.encodePrompt(e.baseInput());
        PromptEncoder.EncodedPrompt source = prompts.encodePrompt(e.sourceInput());
        int[] response = ResponseTruncation.encodeResponse(prompts.tokenizer(), e.response(), maxResponseTokens);
        if (response.length == 0) {
            throw new InvalidArgumentException(e.origin() + ": the response encodes to no tokens");
        }
        return new EncodedExample(concat(base.ids(), response), base.prefixLen(), base.length(), source.ids(),
                source.sourcePosition(), concat(source.ids(), response), source.length(), response.length, e.origin());
    }

    /**
     * {@code input} rendered with the chat template (generation prompt included) followed by
     * {@code response} truncated to the maximum; unlike {@link #encode}, an empty response is allowed.
     */
    public EncodedSequence encodeSequence(String input, String response, String origin) throws ChatTemplateException {
        PromptEncoder.EncodedPrompt prompt = prompts.encodePrompt(input);
        int[] r = ResponseTruncation.encodeResponse(prompts.tokenizer(), response, maxResponseTokens);
        return new EncodedSequence(concat(prompt.ids(), r), prompt.prefixLen(), prompt.length(), origin);
    }

    public int maxResponseTokens() {
        return maxResponseTokens;
    }

    public List<EncodedExample> encode(List<DirectionExample> examples) throws ChatTemplateException {
        EncodedExample[] out = new EncodedExample[examples.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = encode(examples.get(i));
        }
        return List.of(out);
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
