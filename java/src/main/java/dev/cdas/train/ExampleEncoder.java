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
     * The encoded form of one example.
     *
     * @param base             {@code baseInput ⊕ response}: intervened at positions {@code ≥ basePrefixLen}
     * @param basePrefixLen    the template's shared opening in {@code base} (docs/method.md: prefix_len)
     * @param basePromptLength tokens of the rendered base prompt
     * @param source           the rendered source prompt; {@code sourcePosition} is its last token
     * @param target           {@code sourceInput ⊕ response}: the unmodified model on it gives the target
     * @param targetPromptLength tokens of the rendered target (= source) prompt
     * @param responseLength   response tokens after truncation ({@code ≥ 1})
     * @param sourcePosition the last token of {@code source}, whose h_L gives a
     * @param origin         where the pair is, for messages
     */
    public record EncodedExample(int[] base, int basePrefixLen, int basePromptLength, int[] source,
            int sourcePosition, int[] target, int targetPromptLength, int responseLength, String origin) {

        /**
         * First of the {@code responseLength} positions of {@code base} whose next-token
         * distributions predict the response tokens (the causal-LM shift: the last prompt
         * token predicts the first response token). The loss compares these with the same
         * number of positions from {@link #targetLossStart()} in {@code target}.
         *
         * @return the position in {@code base}
         */
        public int baseLossStart() {
            return basePromptLength - 1;
        }

        /**
         * The first of the {@code responseLength} positions of {@code target} whose next-token
         * distributions are the target.
         *
         * @return the position in {@code target}
         */
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
     * @param ids          the prompt's ids followed by the response's
     * @param origin       where the pair is, for messages
     */
    public record EncodedSequence(int[] ids, int prefixLen, int promptLength, String origin) {
        /** {@return the response tokens after truncation, 0 or more} */
        public int responseLength() {
            return ids.length - promptLength;
        }
    }

    private final PromptEncoder prompts;
    private final int maxResponseTokens;

    /**
     * An encoder over the model's prompt encoder.
     *
     * @param prompts           the model's prompt encoder (chat template)
     * @param maxResponseTokens the most response tokens kept, at least 1
     * @throws InvalidArgumentException when {@code maxResponseTokens} is below 1
     */
    public ExampleEncoder(PromptEncoder prompts, int maxResponseTokens) {
        if (maxResponseTokens < 1) {
            throw new InvalidArgumentException("max response tokens must be at least 1, got " + maxResponseTokens);
        }
        this.prompts = prompts;
        this.maxResponseTokens = maxResponseTokens;
    }

    /**
     * The base, source and target sequences of one example.
     *
     * @param e the example
     * @return its encoded form
     * @throws ChatTemplateException    when the chat template fails on a prompt
     * @throws InvalidArgumentException when the response encodes to no tokens or a prompt to none
     */
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
     *
     * @param input    the prompt (one user turn)
     * @param response the response, possibly empty
     * @param origin   where the pair is, for messages
     * @return the sequence
     * @throws ChatTemplateException when the chat template fails on the prompt
     */
    public EncodedSequence encodeSequence(String input, String response, String origin) throws ChatTemplateException {
        PromptEncoder.EncodedPrompt prompt = prompts.encodePrompt(input);
        int[] r = ResponseTruncation.encodeResponse(prompts.tokenizer(), response, maxResponseTokens);
        return new EncodedSequence(concat(prompt.ids(), r), prompt.prefixLen(), prompt.length(), origin);
    }

    /** {@return the most response tokens kept} */
    public int maxResponseTokens() {
        return maxResponseTokens;
    }

    /**
     * {@link #encode(DirectionExample)} for each example.
     *
     * @param examples the examples
     * @return their encoded forms, in order
     * @throws ChatTemplateException    when the chat template fails on a prompt
     * @throws InvalidArgumentException when a response encodes to no tokens
     */
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
