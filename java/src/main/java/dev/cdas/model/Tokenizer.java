package dev.cdas.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * A Hugging Face fast tokenizer ({@code tokenizer.json}) run by the Rust tokenizers library through
 * DJL, plus what {@code tokenizer_config.json} adds: the special tokens by role and the chat
 * template.
 *
 * <p><b>Offline use.</b> DJL's tokenizers jar carries the native library for linux/macOS/windows
 * (x86_64 and aarch64) and unpacks it on first use into {@code $DJL_CACHE_DIR/tokenizers}
 * (default {@code ~/.djl.ai}; {@code DJL_CACHE_DIR} may be an environment variable or a system
 * property). Nothing is downloaded: this class sets {@code ai.djl.offline=true} unless the caller
 * set it, and it only ever reads local files. Where the home folder is not writable (containers,
 * CI), set {@code DJL_CACHE_DIR} to a writable folder.
 */
public final class Tokenizer implements AutoCloseable {
    /** The tokenizer's file in a model folder (required). */
    public static final String TOKENIZER_JSON = "tokenizer.json";
    /** The tokenizer's settings in a model folder: special tokens, chat template (optional). */
    public static final String TOKENIZER_CONFIG = "tokenizer_config.json";
    /** A chat template kept in its own file (transformers 4.43 and later); preferred over tokenizer_config.json's. */
    public static final String CHAT_TEMPLATE_FILE = "chat_template.jinja";
    private static final ObjectMapper JSON = new ObjectMapper();

    static {
        if (System.getProperty("ai.djl.offline") == null) {
            System.setProperty("ai.djl.offline", "true");
        }
    }

    private final Path folder;
    private final HuggingFaceTokenizer hf;
    private final Map<String, Integer> vocab;
    private final Map<String, String> specialTokens;
    private final String chatTemplateSource;
    private final Path chatTemplateFile;
    private final int vocabSize;
    private final int[] prependedSpecials;

    private Tokenizer(Path folder, HuggingFaceTokenizer hf, Map<String, Integer> vocab, Map<String, String> specialTokens,
            String chatTemplateSource, Path chatTemplateFile) {
        this.folder = folder;
        this.hf = hf;
        this.vocab = vocab;
        this.specialTokens = specialTokens;
        this.chatTemplateSource = chatTemplateSource;
        this.chatTemplateFile = chatTemplateFile;
        this.vocabSize = vocab.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        int[] with = encode("a", true);
        int[] without = encode("a", false);
        int at = indexOf(with, without);
        this.prependedSpecials = at > 0 ? java.util.Arrays.copyOf(with, at) : new int[0];
    }

    private static int indexOf(int[] haystack, int[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /**
     * Loads tokenizer.json (required) and tokenizer_config.json (optional) from a model folder.
     *
     * @param folder the model folder
     * @return the tokenizer; close it to free the native tokenizer
     * @throws TokenizerException when tokenizer.json is missing, unreadable, malformed or not a
     *         tokenizers file, or tokenizer_config.json is malformed
     * @throws dev.cdas.InvalidArgumentException when a file is not a regular file, too large or not UTF-8
     */
    public static Tokenizer load(Path folder) throws TokenizerException {
        Path tokJson = folder.resolve(TOKENIZER_JSON);
        String text;
        try {
            text = dev.cdas.io.InputFiles.readString(tokJson);
        } catch (NoSuchFileException e) {
            boolean slow = Files.exists(folder.resolve("tokenizer.model")) || Files.exists(folder.resolve("vocab.json"));
            throw new TokenizerException(folder, null, "no " + TOKENIZER_JSON + " in this folder"
                    + (slow ? " (only a slow tokenizer's files are here: convert it with transformers, "
                            + "AutoTokenizer.from_pretrained(dir).save_pretrained(dir), which writes tokenizer.json)" : ""), e);
        } catch (IOException e) {
            throw new TokenizerException(tokJson, null, "cannot be read: " + e.getMessage(), e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new TokenizerException(tokJson, null, "malformed JSON: " + dev.cdas.io.InputFiles.jsonError(e), e);
        }
        if (root == null || !root.isObject() || !root.has("model")) {
            throw new TokenizerException(tokJson, "model", "missing: not a Hugging Face tokenizers file");
        }
        Map<String, Integer> vocab = vocabulary(tokJson, root);

        Map<String, String> specials = new LinkedHashMap<>();
        String template = null;
        Path templateFile = null;
        Path cfgPath = folder.resolve(TOKENIZER_CONFIG);
        if (Files.exists(cfgPath)) {
            JsonNode cfg;
            try {
                cfg = JSON.readTree(dev.cdas.io.InputFiles.readString(cfgPath));
            } catch (JsonProcessingException e) {
                throw new TokenizerException(cfgPath, null, "malformed JSON: " + dev.cdas.io.InputFiles.jsonError(e), e);
            } catch (IOException e) {
                throw new TokenizerException(cfgPath, null, "cannot be read: " + e.getMessage(), e);
            }
            for (String role : new String[] {"bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token", "mask_token"}) {
                String tok = tokenText(cfgPath, role, cfg.get(role));
                if (tok != null) {
                    specials.put(role, tok);
                }
            }
            JsonNode ct = cfg.get("chat_template");
            if (ct != null && !ct.isNull()) {
                template = chatTemplate(cfgPath, ct);
                templateFile = cfgPath;
            }
        }
        Path jinja = folder.resolve(CHAT_TEMPLATE_FILE);
        if (Files.exists(jinja)) { // transformers >= 4.43 saves it beside, and prefers it
            try {
                template = dev.cdas.io.InputFiles.readString(jinja);
                templateFile = jinja;
            } catch (IOException e) {
                throw new TokenizerException(jinja, null, "cannot be read: " + e.getMessage(), e);
            }
        }
        HuggingFaceTokenizer hf;
        try {
            Map<String, String> options = new HashMap<>();
            options.put("addSpecialTokens", "true");
            options.put("truncation", "false");
            options.put("padding", "false");
            options.put("maxLength", String.valueOf(Integer.MAX_VALUE / 2));
            hf = HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), options);
        } catch (IOException | RuntimeException e) {
            throw new TokenizerException(tokJson, null, "the tokenizers library rejected it: " + e.getMessage(), e);
        } catch (UnsatisfiedLinkError e) {
            throw new TokenizerException(tokJson, null, "the native tokenizers library could not be loaded (it is unpacked into "
                    + "DJL_CACHE_DIR, default ~/.djl.ai; set DJL_CACHE_DIR to a writable folder): " + e.getMessage(), e);
        }
        return new Tokenizer(folder, hf, vocab, Collections.unmodifiableMap(specials), template, templateFile);
    }

    /**
     * token -> id from the model's vocabulary (BPE/WordPiece/WordLevel: an object of ids; Unigram: a
     * list of [piece, score]) and added_tokens (a list of {"id": ..., "content": ...}); an entry of
     * another shape is refused, naming it.
     */
    private static Map<String, Integer> vocabulary(Path file, JsonNode root) throws TokenizerException {
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode v = root.get("model").get("vocab");
        if (v != null && v.isObject()) {
            for (Map.Entry<String, JsonNode> e : v.properties()) {
                vocab.put(e.getKey(), tokenId(file, "model.vocab[" + abbreviate(TextNode.valueOf(e.getKey()).toString()) + "]", e.getValue()));
            }
        } else if (v != null && v.isArray()) {
            for (int i = 0; i < v.size(); i++) {
                JsonNode piece = v.get(i);
                if (!piece.isArray() || piece.isEmpty() || !piece.get(0).isTextual()) {
                    throw new TokenizerException(file, "model.vocab[" + i + "]", "must be a list [piece, score] whose piece is a string");
                }
                vocab.put(piece.get(0).textValue(), i);
            }
        } else {
            throw new TokenizerException(file, "model.vocab", "missing");
        }
        JsonNode added = root.get("added_tokens");
        if (added != null && added.isArray()) {
            for (int i = 0; i < added.size(); i++) {
                JsonNode t = added.get(i);
                String field = "added_tokens[" + i + "]";
                if (!t.isObject() || !t.path("content").isTextual()) {
                    throw new TokenizerException(file, field, "must be an object with a string \"content\"");
                }
                vocab.put(t.get("content").textValue(), tokenId(file, field + ".id", t.get("id")));
            }
        }
        return Collections.unmodifiableMap(vocab);
    }

    /** A token id: an integer from 0 to 2^31 - 2 (so that the vocabulary's size, the largest id + 1, is an int). */
    private static int tokenId(Path file, String field, JsonNode node) throws TokenizerException {
        if (node == null || !node.isIntegralNumber() || !node.canConvertToInt() || node.intValue() < 0
                || node.intValue() == Integer.MAX_VALUE) {
            throw new TokenizerException(file, field, "must be a token id, an integer from 0 to " + (Integer.MAX_VALUE - 1)
                    + ", got " + (node == null ? "nothing" : abbreviate(node.toString())));
        }
        return node.intValue();
    }

    private static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 40) + "...";
    }

    /** A special token is a string or an AddedToken object {"content": ...}. */
    private static String tokenText(Path file, String field, JsonNode node) throws TokenizerException {
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.textValue();
        }
        if (node.isObject() && node.has("content")) {
            return node.get("content").asText();
        }
        throw new TokenizerException(file, field, "must be a string or {\"content\": ...}, got " + node);
    }

    /** chat_template is a string or a list of {name, template}; the one named "default" is the chat template. */
    private static String chatTemplate(Path file, JsonNode node) throws TokenizerException {
        if (node.isTextual()) {
            return node.textValue();
        }
        if (node.isArray()) {
            for (JsonNode t : node) {
                if ("default".equals(t.path("name").asText()) && t.path("template").isTextual()) {
                    return t.get("template").textValue();
                }
            }
            throw new TokenizerException(file, "chat_template", "is a list without a template named \"default\"");
        }
        throw new TokenizerException(file, "chat_template", "must be a string or a list of {name, template}");
    }

    /** {@return the model folder the tokenizer was loaded from} */
    public Path folder() {
        return folder;
    }

    /**
     * Token ids of {@code text}; with {@code addSpecialTokens} the tokenizer's post-processor adds e.g. BOS.
     *
     * @param text             the text to encode
     * @param addSpecialTokens whether to let the post-processor add its special tokens
     * @return the ids
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        Encoding enc = hf.encode(text, addSpecialTokens, false);
        long[] ids = enc.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            out[i] = Math.toIntExact(ids[i]);
        }
        return out;
    }

    /**
     * The text of token ids.
     *
     * @param ids               the ids
     * @param skipSpecialTokens whether to leave special tokens out of the text
     * @return the decoded text
     */
    public String decode(int[] ids, boolean skipSpecialTokens) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            l[i] = ids[i];
        }
        return hf.decode(l, skipSpecialTokens);
    }

    /**
     * One more than the largest id (vocabulary plus added tokens); may be below the model's padded vocab_size.
     *
     * @return the size of the id space
     */
    public int vocabSize() {
        return vocabSize;
    }

    /**
     * The id of a token in the vocabulary or among the added tokens.
     *
     * @param token the token's text, exactly as in tokenizer.json
     * @return its id, or empty when it is not a token
     */
    public OptionalInt tokenId(String token) {
        Integer id = vocab.get(token);
        return id == null ? OptionalInt.empty() : OptionalInt.of(id);
    }

    /**
     * Special tokens from tokenizer_config.json by role: bos_token, eos_token, pad_token, unk_token, ...
     *
     * @return the tokens' texts by role
     */
    public Map<String, String> specialTokens() {
        return specialTokens;
    }

    /** {@return the bos_token of tokenizer_config.json, if any} */
    public Optional<String> bosToken() {
        return Optional.ofNullable(specialTokens.get("bos_token"));
    }

    /** {@return the eos_token of tokenizer_config.json, if any} */
    public Optional<String> eosToken() {
        return Optional.ofNullable(specialTokens.get("eos_token"));
    }

    /** {@return the id of the eos_token, if it has one that is a token} */
    public OptionalInt eosTokenId() {
        return eosToken().map(this::tokenId).orElse(OptionalInt.empty());
    }

    /** {@return the id of the pad_token, if it has one that is a token} */
    public OptionalInt padTokenId() {
        String pad = specialTokens.get("pad_token");
        return pad == null ? OptionalInt.empty() : tokenId(pad);
    }

    /**
     * The ids the post-processor puts before the text when special tokens are added (e.g. [BOS], or none).
     *
     * @return a copy of the ids, empty when none
     */
    public int[] prependedSpecialTokens() {
        return prependedSpecials.clone();
    }

    /**
     * Whether encoding with special tokens starts with a BOS (or other) token.
     *
     * @return true when at least one token is prepended
     */
    public boolean addsBos() {
        return prependedSpecials.length > 0;
    }

    /**
     * The chat template, when tokenizer_config.json (or chat_template.jinja) has one.
     *
     * @return the template, or empty
     */
    public Optional<ChatTemplate> chatTemplate() {
        return chatTemplateSource == null ? Optional.empty()
                : Optional.of(new ChatTemplate(chatTemplateSource, specialTokens, chatTemplateFile));
    }

    @Override
    public void close() {
        hf.close();
    }

    @Override
    public String toString() {
        return "Tokenizer[" + folder + ", vocab " + vocabSize + (chatTemplateSource != null ? ", chat template" : "") + "]";
    }
}
