package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.model.ChatTemplate.Message;
import dev.cdas.model.PromptEncoder.EncodedPrompt;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Chat templates written for these tests after the published structure of four instruct families
 * (Llama 3.1, Qwen2.5, Phi-3.5-mini, Gemma-2; {@code fixtures/chat-templates/}, our own files, not
 * the models'), each beside its family's fixture tokenizer. For each, the test writes down by hand,
 * from the family's structure, the text a conversation must render to, the opening every
 * single-user prompt shares and the assistant header, and derives from them alone the expected
 * token ids, {@code prefix_len} (the opening's tokens) and source position (the header's last
 * token); {@link PromptEncoder}, which finds both generically by probing the template, must agree.
 * Conversations with a system message, several turns, and the messages a template refuses are
 * covered too. The comparison with transformers' own {@code apply_chat_template} on real model
 * folders is {@link TransformersChatTemplateTest}.
 */
class FamilyChatTemplatesTest {
    @TempDir
    Path tmp;

    /** A fixture tokenizer with {@code template} as chat_template.jinja (which wins over tokenizer_config.json's). */
    private Tokenizer load(String family, String template) throws IOException {
        Path dir = Files.createTempDirectory(tmp, family);
        Files.copy(Fixtures.dir(family).resolve(Tokenizer.TOKENIZER_JSON), dir.resolve(Tokenizer.TOKENIZER_JSON));
        Files.copy(Fixtures.dir(family).resolve(Tokenizer.TOKENIZER_CONFIG), dir.resolve(Tokenizer.TOKENIZER_CONFIG));
        try (InputStream in = FamilyChatTemplatesTest.class.getResourceAsStream("/fixtures/chat-templates/" + template)) {
            Files.copy(in, dir.resolve(Tokenizer.CHAT_TEMPLATE_FILE));
        }
        return Tokenizer.load(dir);
    }

    /**
     * What the test knows about one template: the opening of a conversation without a system
     * message, how a user turn and an assistant turn are written, and the assistant header.
     */
    private record Shape(String opening, String userTurnAfterFirst, String userClose, String assistantTurn,
                         String assistantClose, String header, boolean trims) {
        String user(String content, boolean first) {
            return (first ? "" : userTurnAfterFirst) + (trims ? content.strip() : content) + userClose;
        }

        String assistant(String content) {
            return assistantTurn + (trims ? content.strip() : content) + assistantClose;
        }
    }

    private static final Shape LLAMA = new Shape(
            "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                    + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>"
                    + "<|start_header_id|>user<|end_header_id|>\n\n",
            "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>",
            "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>",
            "<|start_header_id|>assistant<|end_header_id|>\n\n", true);
    private static final Shape QWEN = new Shape(
            "<|im_start|>system\nYou are a careful assistant.<|im_end|>\n<|im_start|>user\n",
            "<|im_start|>user\n", "<|im_end|>\n", "<|im_start|>assistant\n", "<|im_end|>\n",
            "<|im_start|>assistant\n", false);
    private static final Shape PHI = new Shape(
            "<|user|>\n", "<|user|>\n", "<|end|>\n", "<|assistant|>\n", "<|end|>\n", "<|assistant|>\n", false);
    private static final Shape GEMMA = new Shape(
            "<bos><start_of_turn>user\n", "<start_of_turn>user\n", "<end_of_turn>\n",
            "<start_of_turn>model\n", "<end_of_turn>\n", "<start_of_turn>model\n", true);

    /** Prompts whose first token cannot join the opening's last (each starts a new word or symbol). */
    private static final List<String> PROMPTS = List.of("Hello world!", "  Why is the sky blue?  ", "3 + 4 = ?", "zebra");

    private static int[] encode(Tokenizer tok, String text) {
        return tok.encode(text, false);
    }

    /** The opening's tokens start the whole prompt's: the expectation is sound only then. */
    private static int expectedPrefix(Tokenizer tok, String opening, String whole) {
        int[] o = encode(tok, opening);
        int[] w = encode(tok, whole);
        assertTrue(o.length < w.length && Arrays.equals(o, Arrays.copyOf(w, o.length)),
                "the opening " + Arrays.toString(o) + " tokenises as the start of " + Arrays.toString(w));
        return o.length;
    }

    private void checkSingleAndMultiTurn(String family, String template, Shape s) throws Exception {
        try (Tokenizer tok = load(family, template)) {
            PromptEncoder enc = PromptEncoder.of(tok);
            assertTrue(enc.usesChatTemplate());
            int[] opening = encode(tok, s.opening());
            int[] header = encode(tok, s.header());
            assertEquals(opening.length, enc.prefixLen(), family + ": prefix_len is the opening's tokens");
            assertArrayEquals(opening, enc.prefixIds());
            assertEquals(s.opening(), enc.prefixText());
            assertEquals(s.header(), enc.assistantHeader());
            for (String prompt : PROMPTS) {
                String text = s.opening() + s.user(prompt, true) + s.header();
                EncodedPrompt p = enc.encodePrompt(prompt);
                assertEquals(text, p.text(), family + " renders " + prompt);
                int[] ids = encode(tok, text);
                assertArrayEquals(ids, p.ids());
                assertEquals(expectedPrefix(tok, s.opening(), text), p.prefixLen(), family + " prefix_len of " + prompt);
                assertEquals(ids.length - 1, p.sourcePosition(), family + " source position of " + prompt);
                assertEquals(header[header.length - 1], ids[p.sourcePosition()], "the source token ends the assistant header");
            }
            String text = s.opening() + s.user("Why?", true) + s.assistant(" Because. ") + s.user("More.", false) + s.header();
            EncodedPrompt multi = enc.encodePrompt(List.of(Message.user("Why?"), Message.assistant(" Because. "), Message.user("More.")));
            assertEquals(text, multi.text(), family + " renders three turns");
            assertEquals(expectedPrefix(tok, s.opening(), text), multi.prefixLen());
            assertEquals(encode(tok, text).length - 1, multi.sourcePosition());
            // without the generation prompt the conversation ends after the last turn (Phi adds its EOS)
            String closed = s.opening() + s.user("Hi", true) + (family.equals("phi3") ? "<|endoftext|>" : "");
            assertEquals(closed, tok.chatTemplate().orElseThrow().render(List.of(Message.user("Hi")), false));
        }
    }

    @Test
    void llama31Structure() throws Exception {
        checkSingleAndMultiTurn("llama", "llama31.jinja", LLAMA);
        try (Tokenizer tok = load("llama", "llama31.jinja")) {
            PromptEncoder enc = PromptEncoder.of(tok);
            // a system message goes into the system block, after the dates: the prompt shares the opening up to there
            String shared = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                    + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n";
            String text = shared + "Be brief.<|eot_id|>" + LLAMA.userTurnAfterFirst() + "Hi<|eot_id|>" + LLAMA.header();
            EncodedPrompt p = enc.encodePrompt(List.of(Message.system(" Be brief. "), Message.user("Hi")));
            assertEquals(text, p.text());
            assertEquals(expectedPrefix(tok, shared, text), p.prefixLen());
            assertTrue(p.prefixLen() < enc.prefixLen());
            assertEquals(encode(tok, text).length - 1, p.sourcePosition());
        }
    }

    @Test
    void qwen25Structure() throws Exception {
        checkSingleAndMultiTurn("qwen2", "qwen25.jinja", QWEN);
        try (Tokenizer tok = load("qwen2", "qwen25.jinja")) {
            PromptEncoder enc = PromptEncoder.of(tok);
            // an own system message replaces the default one: only "<|im_start|>system\n" is shared
            String text = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" + QWEN.header();
            EncodedPrompt p = enc.encodePrompt(List.of(Message.system("Be brief."), Message.user("Hi")));
            assertEquals(text, p.text());
            assertEquals(expectedPrefix(tok, "<|im_start|>system\n", text), p.prefixLen());
            assertEquals(encode(tok, text).length - 1, p.sourcePosition());
        }
    }

    @Test
    void phi35Structure() throws Exception {
        checkSingleAndMultiTurn("phi3", "phi35.jinja", PHI);
        try (Tokenizer tok = load("phi3", "phi35.jinja")) {
            PromptEncoder enc = PromptEncoder.of(tok);
            // a system turn opens with <|system|>, not <|user|>: nothing is shared with the opening
            String text = "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n" + PHI.header();
            EncodedPrompt p = enc.encodePrompt(List.of(Message.system("Be brief."), Message.user("Hi")));
            assertEquals(text, p.text());
            assertEquals(0, p.prefixLen());
            assertEquals(encode(tok, text).length - 1, p.sourcePosition());
            // an empty system message is left out, so the prompt is an ordinary one
            EncodedPrompt empty = enc.encodePrompt(List.of(Message.system(""), Message.user("Hi")));
            assertEquals(enc.encodePrompt("Hi"), empty);
        }
    }

    @Test
    void gemma2Structure() throws Exception {
        checkSingleAndMultiTurn("gemma2", "gemma2.jinja", GEMMA);
        try (Tokenizer tok = load("gemma2", "gemma2.jinja")) {
            PromptEncoder enc = PromptEncoder.of(tok);
            ChatTemplateException system = assertThrows(ChatTemplateException.class,
                    () -> enc.encodePrompt(List.of(Message.system("Be brief."), Message.user("Hi"))));
            assertTrue(system.getMessage().contains(Tokenizer.CHAT_TEMPLATE_FILE), system.getMessage());
            assertTrue(system.getMessage().endsWith("the template refused these messages: this template has no system role"),
                    system.getMessage());
            assertFalse(system.getMessage().contains("\n"));
            ChatTemplateException twice = assertThrows(ChatTemplateException.class,
                    () -> enc.encodePrompt(List.of(Message.user("Hi"), Message.user("Hi again"))));
            assertTrue(twice.getMessage().endsWith("turns must alternate between user and assistant, starting with user"),
                    twice.getMessage());
        }
    }
}
