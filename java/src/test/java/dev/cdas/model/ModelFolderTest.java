package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.io.ModelFormatException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

class ModelFolderTest {
    static final List<String> CHAT_FAMILIES = Fixtures.CHAT_FAMILIES;

    @ParameterizedTest
    @FieldSource("CHAT_FAMILIES")
    void opensFixtureFolders(String family) throws Exception {
        try (ModelFolder m = ModelFolder.open(Fixtures.dir(family))) {
            assertEquals(family, m.config().family().modelType());
            assertTrue(m.prompts().usesChatTemplate());
            assertTrue(m.stopTokenIds().contains(m.tokenizer().eosTokenId().orElseThrow()));
            assertTrue(m.toString().contains(family));
        }
    }

    @Test
    void tokenizerOfAnotherModelIsRefused(@TempDir Path dir) throws Exception {
        Path src = Fixtures.dir("gemma2"); // vocab 97
        for (String f : List.of("config.json", "model.safetensors")) {
            Files.copy(src.resolve(f), dir.resolve(f));
        }
        try (var in = new java.util.zip.GZIPInputStream(Files.newInputStream(Fixtures.dir("gpt2-bpe").resolve("tokenizer.json.gz")))) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFolder.open(dir));
        assertTrue(e.getMessage().startsWith(dir.resolve("tokenizer.json") + ": has 50257 tokens, more than config.json's vocab_size 97"),
                e.getMessage());
    }

    @Test
    void missingPiecesAreNamed(@TempDir Path dir) throws Exception {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> ModelFolder.open(dir));
        assertEquals(dir.resolve("config.json"), e.file());
        Files.copy(Fixtures.dir("gemma2").resolve("config.json"), dir.resolve("config.json"));
        e = assertThrows(ModelFormatException.class, () -> ModelFolder.open(dir));
        assertEquals(dir, e.file());
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
        Files.copy(Fixtures.dir("gemma2").resolve("model.safetensors"), dir.resolve("model.safetensors"));
        e = assertThrows(TokenizerException.class, () -> ModelFolder.open(dir));
        assertTrue(e.getMessage().startsWith(dir + ": no tokenizer.json"), e.getMessage());
    }
}
