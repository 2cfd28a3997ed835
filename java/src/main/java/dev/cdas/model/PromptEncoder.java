package dev.cdas.model;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.ChatTemplate.Message;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;

/**
 * Turns prompts into token ids the way docs/method.md section 1 needs them: rendered with the model's
 * chat template (generation prompt included) and tokenised without adding special tokens, as
 * transformers does. It also finds, generically for any template:
 *
 * <ul>
 *   <li>{@code prefix_len}: the template's shared opening (Gemma-2 {@code <bos><start_of_turn>user\n}),
 *       found by rendering single-user-message conversations with different contents and taking
 *       their common token prefix; the intervention skips these positions. Per prompt it is the
 *       common prefix with that opening, so a prompt with its own system message (which changes the
 *       opening) gets a shorter, still correct, value.</li>
 *   <li>the source position: the last token of the rendered prompt, which with the generation prompt
 *       is the last token of the assistant header.</li>
 * </ul>
 *
 * A model without a chat template gets the raw prompt with the tokenizer's own special tokens, and
 * {@code prefix_len} is the number of tokens the tokenizer prepends (1 for a BOS, else 0).
 */
public final class PromptEncoder {
    /** Contents with different first characters, so no content token can join the opening. */
    private static final List<String> PROBES = List.of("Hello there", "Why?", "3 + 4", "xyz", "\u00e9t\u00e9");

    /**
     * A prompt ready for the runtime.
     *
     * @param ids            the token ids; copied in and out
     * @param prefixLen      the tokens of the template's shared opening, which the intervention skips
     * @param sourcePosition the position a_b is read from: the prompt's last token
     * @param text           the rendered text the ids encode
     */
    public record EncodedPrompt(int[] ids, int prefixLen, int sourcePosition, String text) {
        /** Copies {@code ids}, so later changes to the caller's array do not reach the prompt. */
        public EncodedPrompt {
            ids = ids.clone();
        }

        /** {@return a copy of the token ids} */
        @Override
        public int[] ids() {
            return ids.clone();
        }

        /** {@return the number of tokens} */
        public int length() {
            return ids.length;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof EncodedPrompt p && Arrays.equals(p.ids, ids) && p.prefixLen == prefixLen
                    && p.sourcePosition == sourcePosition && p.text.equals(text);
        }

        @Override
        public int hashCode() {
            return Arrays.hashCode(ids);
        }

        @Override
        public String toString() {
            return "EncodedPrompt" + Arrays.toString(ids) + " prefix_len=" + prefixLen + " source=" + sourcePosition;
        }
    }

    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final int[] prefixIds;
    private final String assistantHeader;

    private PromptEncoder(Tokenizer tokenizer, ChatTemplate template, int[] prefixIds, String assistantHeader) {
        this.tokenizer = tokenizer;
        this.template = template;
        this.prefixIds = prefixIds;
        this.assistantHeader = assistantHeader;
    }

    /**
     * With the tokenizer's chat template when it has one, else raw prompts.
     *
     * @param tokenizer the model's tokenizer
     * @return the encoder
     * @throws ChatTemplateException when the template fails to render the probe conversations or ignores their contents
     */
    public static PromptEncoder of(Tokenizer tokenizer) throws ChatTemplateException {
        ChatTemplate t = tokenizer.chatTemplate().orElse(null);
        return t == null ? raw(tokenizer) : withTemplate(tokenizer, t);
    }

    /**
     * Raw prompts: no template, the tokenizer's own special tokens (e.g. BOS).
     *
     * @param tokenizer the model's tokenizer
     * @return the encoder
     */
    public static PromptEncoder raw(Tokenizer tokenizer) {
        return new PromptEncoder(tokenizer, null, tokenizer.prependedSpecialTokens(), "");
    }

    /**
     * An encoder with the given template, whose shared opening and assistant header it finds by
     * rendering probe conversations.
     *
     * @param tokenizer the model's tokenizer
     * @param template  the chat template
     * @return the encoder
     * @throws ChatTemplateException when the template fails to render or renders the same tokens whatever the message
     */
    public static PromptEncoder withTemplate(Tokenizer tokenizer, ChatTemplate template) throws ChatTemplateException {
        int[] common = null;
        int shortest = Integer.MAX_VALUE;
        for (String probe : PROBES) {
            int[] ids = tokenizer.encode(template.render(List.of(Message.user(probe)), true), false);
            shortest = Math.min(shortest, ids.length);
            common = common == null ? ids : Arrays.copyOf(common, commonPrefix(common, ids));
        }
        if (common.length >= shortest) {
            throw new ChatTemplateException(template.file(),
                    "renders the same tokens whatever the user's message is (does it use messages[i]['content']?)", null);
        }
        // The header is what the generation prompt adds: compared in tokens, since templates may end a
        // conversation without it differently (Phi-3 appends eos_token instead).
        int[] with = tokenizer.encode(template.render(List.of(Message.user(PROBES.get(0))), true), false);
        int[] without = tokenizer.encode(template.render(List.of(Message.user(PROBES.get(0))), false), false);
        String header = tokenizer.decode(Arrays.copyOfRange(with, commonPrefix(with, without), with.length), false);
        return new PromptEncoder(tokenizer, template, common, header);
    }

    private static int commonPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length);
        int i = 0;
        while (i < n && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    /** {@return whether prompts are rendered with a chat template (false: raw prompts)} */
    public boolean usesChatTemplate() {
        return template != null;
    }

    /**
     * The shared opening's length in tokens (prefix_len of docs/method.md).
     *
     * @return the number of tokens
     */
    public int prefixLen() {
        return prefixIds.length;
    }

    /** {@return a copy of the shared opening's token ids} */
    public int[] prefixIds() {
        return prefixIds.clone();
    }

    /**
     * The opening as text, for logs ({@code "<bos><start_of_turn>user\n"}).
     *
     * @return the decoded opening
     */
    public String prefixText() {
        return tokenizer.decode(prefixIds, false);
    }

    /**
     * What the generation prompt appends after the conversation (Gemma {@code <start_of_turn>model\n},
     * Llama {@code <|start_header_id|>assistant<|end_header_id|>\n\n}); empty without a template.
     *
     * @return the header's text
     */
    public String assistantHeader() {
        return assistantHeader;
    }

    /**
     * A single user turn.
     *
     * @param userMessage the user's message
     * @return the encoded prompt
     * @throws ChatTemplateException    when the template fails
     * @throws InvalidArgumentException when the prompt encodes to no tokens
     */
    public EncodedPrompt encodePrompt(String userMessage) throws ChatTemplateException {
        return encodePrompt(List.of(Message.user(userMessage)));
    }

    /**
     * A conversation ending in a user turn, rendered with the generation prompt. Raw mode joins the contents with newlines.
     *
     * @param messages the conversation, at least one turn
     * @return the encoded prompt
     * @throws ChatTemplateException    when the template fails
     * @throws InvalidArgumentException when there is no message or the prompt encodes to no tokens
     */
    public EncodedPrompt encodePrompt(List<Message> messages) throws ChatTemplateException {
        if (messages.isEmpty()) {
            throw new InvalidArgumentException("no messages");
        }
        String text;
        int[] ids;
        if (template != null) {
            text = template.render(messages, true);
            ids = tokenizer.encode(text, false);
        } else {
            text = messages.stream().map(Message::content).collect(Collectors.joining("\n"));
            ids = tokenizer.encode(text, true);
        }
        if (ids.length == 0) {
            throw new InvalidArgumentException("the prompt encodes to no tokens");
        }
        int prefix = Math.min(commonPrefix(ids, prefixIds), ids.length - 1);
        return new EncodedPrompt(ids, prefix, ids.length - 1, text);
    }

    /**
     * A response continues the prompt: no special tokens are added (the reference code's stray-BOS pitfall).
     *
     * @param response the response's text
     * @return its token ids
     */
    public int[] encodeResponse(String response) {
        return tokenizer.encode(response, false);
    }

    /** {@return the tokenizer prompts are encoded with} */
    public Tokenizer tokenizer() {
        return tokenizer;
    }
}
