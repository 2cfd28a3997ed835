package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cdas.model.ChatTemplate.Message;
import dev.cdas.model.PromptEncoder.EncodedPrompt;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

class PromptEncoderTest {
    static final List<String> CHAT_FAMILIES = Fixtures.CHAT_FAMILIES;

    static List<Message> messages(JsonNode array) {
        List<Message> out = new ArrayList<>();
        for (JsonNode m : array) {
            out.add(new Message(m.get("role").asText(), m.get("content").asText()));
        }
        return out;
    }

    @ParameterizedTest
    @FieldSource("CHAT_FAMILIES")
    void rendersLikeTransformers(String family) throws Exception {
        JsonNode exp = TokenizerTest.expected(family);
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir(family))) {
            ChatTemplate t = tok.chatTemplate().orElseThrow();
            for (JsonNode c : exp.get("cases")) {
                List<Message> msgs = messages(c.get("messages"));
                boolean gen = c.get("add_generation_prompt").booleanValue();
                String text = t.render(msgs, gen);
                assertEquals(c.get("text").asText(), text, family + " " + msgs + " gen=" + gen);
                assertArrayEquals(TokenizerTest.ids(c.get("ids")), tok.encode(text, false));
            }
        }
    }

    @ParameterizedTest
    @FieldSource("CHAT_FAMILIES")
    void prefixLenAndSourcePosition(String family) throws Exception {
        JsonNode exp = TokenizerTest.expected(family);
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir(family))) {
            PromptEncoder enc = PromptEncoder.of(tok);
            assertTrue(enc.usesChatTemplate());
            assertEquals(exp.get("prefix_len").intValue(), enc.prefixLen(), "prefix_len found generically");
            assertArrayEquals(TokenizerTest.ids(exp.get("opening_ids")), enc.prefixIds());
            assertEquals(exp.get("opening").asText(), enc.prefixText());
            assertEquals(exp.get("assistant_header").asText(), enc.assistantHeader());

            int[] header = TokenizerTest.ids(exp.get("assistant_header_ids"));
            for (String prompt : List.of("Hello world!", "Write a short poem about the sea.", "?")) {
                EncodedPrompt p = enc.encodePrompt(prompt);
                assertEquals(enc.prefixLen(), p.prefixLen());
                assertEquals(p.length() - 1, p.sourcePosition());
                int[] ids = p.ids();
                assertArrayEquals(header, Arrays.copyOfRange(ids, ids.length - header.length, ids.length),
                        "the source token ends the assistant header");
                assertTrue(p.text().contains(prompt));
            }
            // multi-turn: same opening, source still at the end
            EncodedPrompt multi = enc.encodePrompt(List.of(Message.user("Why?"), Message.assistant("Because."), Message.user("More.")));
            assertEquals(enc.prefixLen(), multi.prefixLen());
            assertEquals(multi.length() - 1, multi.sourcePosition());
        }
    }

    @Test
    void ownSystemMessageShortensThePrefix() throws Exception {
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir("qwen2"))) {
            PromptEncoder enc = PromptEncoder.of(tok);
            EncodedPrompt p = enc.encodePrompt(List.of(Message.system("Be terse."), Message.user("Hello")));
            assertTrue(p.prefixLen() < enc.prefixLen(), p + " vs " + enc.prefixLen());
            assertTrue(p.prefixLen() >= 2, "<|im_start|>system\\n is still shared");
        }
    }

    @Test
    void raiseExceptionBecomesATypedError() throws Exception {
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir("gemma2"))) {
            PromptEncoder enc = PromptEncoder.of(tok);
            ChatTemplateException e = assertThrows(ChatTemplateException.class,
                    () -> enc.encodePrompt(List.of(Message.system("x"), Message.user("y"))));
            assertTrue(e.getMessage().contains("this format has no system turn"), e.getMessage());
            assertTrue(e.getMessage().startsWith(Fixtures.dir("gemma2").resolve("tokenizer_config.json") + ": chat_template: "),
                    e.getMessage());
            e = assertThrows(ChatTemplateException.class,
                    () -> enc.encodePrompt(List.of(Message.user("a"), Message.user("b"))));
            assertTrue(e.getMessage().contains("turns must alternate, the user first"), e.getMessage());
        }
    }

    @Test
    void noTemplateMeansRawPromptWithTheTokenizersBos(@TempDir Path dir) throws Exception {
        Files.copy(Fixtures.dir("llama").resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        try (Tokenizer tok = Tokenizer.load(dir)) {
            PromptEncoder enc = PromptEncoder.of(tok);
            assertFalse(enc.usesChatTemplate());
            assertEquals(1, enc.prefixLen(), "the tokenizer adds <|begin_of_text|>");
            EncodedPrompt p = enc.encodePrompt("Hello world!");
            assertEquals(0, p.ids()[0]);
            assertEquals(1, p.prefixLen());
            assertEquals(p.length() - 1, p.sourcePosition());
            assertArrayEquals(tok.encode("Hello world!", false), Arrays.copyOfRange(p.ids(), 1, p.length()));
            assertArrayEquals(tok.encode(" again", false), enc.encodeResponse(" again"), "responses get no BOS");
        }
        Files.copy(Fixtures.dir("qwen2").resolve("tokenizer.json"), dir.resolve("tokenizer.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        try (Tokenizer tok = Tokenizer.load(dir)) {
            assertEquals(0, PromptEncoder.of(tok).prefixLen(), "no BOS, no template: prefix_len 0");
        }
    }

    @Test
    void templateFeatures() throws Exception {
        Path file = Path.of("tokenizer_config.json");
        ChatTemplate t = ChatTemplate.of("""
                {%- set ns = namespace(n=0) %}
                {%- for m in messages %}
                    {%- set ns.n = ns.n + 1 %}
                    {{- m.role | upper }}:{{ m['content'] | trim }}{% if not loop.last %}|{% endif %}
                {%- endfor %}
                {%- if add_generation_prompt %}#{{ ns.n }}{{ eos_token }}{% endif %}""", Map.of("eos_token", "</s>"), file);
        assertEquals("USER:a|ASSISTANT:b#2</s>",
                t.render(List.of(Message.user(" a "), Message.assistant("b")), true));
        ChatTemplate date = ChatTemplate.of("{{ strftime_now('%Y') }}", Map.of(), file);
        assertEquals(String.valueOf(java.time.LocalDate.now().getYear()), date.render(List.of(Message.user("x")), false));
        ChatTemplate broken = ChatTemplate.of("{% for m in messages %}", Map.of(), file);
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> broken.render(List.of(Message.user("x")), false));
        assertTrue(e.getMessage().startsWith("tokenizer_config.json: chat_template: rendering failed"), e.getMessage());
    }
}
