package dev.cdas.model;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.cdas.fuzz.FuzzSupport;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz targets for a model folder's text files: config.json (alone, and against a real checkpoint
 * through {@link ModelFolder}), tokenizer.json, tokenizer_config.json and chat templates
 * (docs/fuzzing.md). Committed inputs under
 * {@code src/test/resources/dev/cdas/model/ModelFilesFuzzTestInputs/} replay in every test run.
 */
class ModelFilesFuzzTest {
    private static Path dir;
    private static Path configDir;
    private static Path folder;
    private static Path tokenizerDir;
    private static Path tokenizerConfigDir;

    @BeforeAll
    static void setUp() throws IOException {
        dir = FuzzSupport.tempDir("model");
        configDir = Files.createDirectories(dir.resolve("config"));
        folder = Files.createDirectories(dir.resolve("folder"));
        for (String f : new String[] {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"}) {
            copyFixture("llama/" + f, folder.resolve(f));
        }
        tokenizerDir = Files.createDirectories(dir.resolve("tokenizer"));
        tokenizerConfigDir = Files.createDirectories(dir.resolve("tokenizer-config"));
        copyFixture("llama/tokenizer.json", tokenizerConfigDir.resolve(Tokenizer.TOKENIZER_JSON));
    }

    private static void copyFixture(String name, Path to) throws IOException {
        try (InputStream in = ModelFilesFuzzTest.class.getResourceAsStream("/fixtures/" + name)) {
            Files.copy(in, to);
        }
    }

    @AfterAll
    static void tearDown() {
        FuzzSupport.deleteTree(dir);
    }

    /** Any bytes as config.json. */
    @FuzzTest
    void config(byte[] bytes) {
        FuzzSupport.write(configDir.resolve(ModelConfig.FILE_NAME), bytes);
        FuzzSupport.expectParsedOrRefused(ModelConfig.FILE_NAME, () -> ModelConfig.load(configDir));
    }

    /** Any bytes as config.json beside a valid two-shard checkpoint and tokenizer: the config checked against the weights. */
    @FuzzTest
    void modelFolder(byte[] bytes) {
        FuzzSupport.write(folder.resolve(ModelConfig.FILE_NAME), bytes);
        FuzzSupport.expectParsedOrRefused(null, () -> {
            try (ModelFolder m = ModelFolder.open(folder)) {
                m.weights();
                m.stopTokenIds();
            }
        });
    }

    /** Any bytes as tokenizer.json; a loaded tokenizer then encodes and decodes a short text. */
    @FuzzTest
    void tokenizerJson(byte[] bytes) {
        FuzzSupport.write(tokenizerDir.resolve(Tokenizer.TOKENIZER_JSON), bytes);
        FuzzSupport.expectParsedOrRefused(Tokenizer.TOKENIZER_JSON, () -> {
            try (Tokenizer t = Tokenizer.load(tokenizerDir)) {
                int[] ids = t.encode("Hello, world", true);
                t.decode(ids, false);
                t.prependedSpecialTokens();
            }
        });
    }

    /** Any bytes as tokenizer_config.json beside a valid tokenizer.json; its chat template, if any, renders a conversation. */
    @FuzzTest
    void tokenizerConfig(byte[] bytes) {
        FuzzSupport.write(tokenizerConfigDir.resolve(Tokenizer.TOKENIZER_CONFIG), bytes);
        FuzzSupport.expectParsedOrRefused(Tokenizer.TOKENIZER_CONFIG, () -> {
            try (Tokenizer t = Tokenizer.load(tokenizerConfigDir)) {
                t.prependedSpecialTokens();
                t.eosTokenId();
                t.padTokenId();
                if (t.chatTemplate().isPresent()) {
                    t.chatTemplate().get().render(
                            List.of(ChatTemplate.Message.user("Hi"), ChatTemplate.Message.assistant("Hello")), true);
                }
            }
        });
    }

    /**
     * Any text as a chat template (up to the first NUL byte; the rest is the user message),
     * rendered for a system, user and assistant message with and without the generation prompt.
     */
    @FuzzTest
    void chatTemplate(byte[] bytes) {
        String text = new String(bytes, StandardCharsets.UTF_8);
        int nul = text.indexOf('\0');
        String source = nul < 0 ? text : text.substring(0, nul);
        String message = nul < 0 ? "What is 2 + 2?" : text.substring(nul + 1);
        Path file = dir.resolve("chat_template.jinja");
        FuzzSupport.expectParsedOrRefused("chat_template.jinja", () -> {
            ChatTemplate t = ChatTemplate.of(source, Map.of("bos_token", "<s>", "eos_token", "</s>"), file);
            List<ChatTemplate.Message> msgs = List.of(ChatTemplate.Message.system("Be brief."),
                    ChatTemplate.Message.user(message), ChatTemplate.Message.assistant("4"));
            t.render(msgs, false);
            t.render(msgs.subList(0, 2), true);
        });
    }
}
