package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.model.ChatTemplate.Message;
import dev.cdas.model.PromptEncoder.EncodedPrompt;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real chat templates, compared with transformers' {@code apply_chat_template}. Other projects'
 * templates are passed in, not copied into this repository, in two ways:
 * <ul>
 *   <li>{@code CDAS_PUBLISHED_TEMPLATES}: a folder holding the templates Llama-3.1-Instruct,
 *       Qwen2.5-Instruct, Phi-3.5-mini-instruct and Gemma-2-it publish ({@code llama3_1.jinja},
 *       {@code qwen2_5.jinja}, {@code phi3_5.jinja}, {@code gemma.jinja}), which
 *       {@code scripts/fetch-published-templates.sh} takes from the trl wheel at test time and
 *       {@code scripts/test.sh} passes in. Each is paired with the fixture tokenizer of its family
 *       ({@link #PUBLISHED}): its special tokens are the ones the template writes (single tokens,
 *       as in the real vocabulary), so the rendered text, its split into special tokens and
 *       PromptEncoder's {@code prefix_len} and source are checked exactly; the fixture's small
 *       vocabulary splits ordinary words differently from the real model, identically on both
 *       sides. When the variable is set the check must run: a missing template or a Python without
 *       transformers fails the test.</li>
 *   <li>{@code CDAS_CHAT_TEMPLATE_MODELS}: model folders (each with {@code tokenizer.json} and a
 *       chat template in {@code tokenizer_config.json} or {@code chat_template.jinja}), separated by
 *       {@code File.pathSeparator}; without it that part is skipped (reported as such).</li>
 * </ul>
 * {@code CDAS_PYTHON} (default {@code python3}) is a Python that imports transformers and jinja2.
 * For each template and {@link #CONVERSATIONS} (one user turn of several kinds, with and without a
 * system message, an empty system message, several turns, two user turns in a row), transformers
 * renders the conversation with and without the generation prompt, or refuses it; the test checks
 * that ChatTemplate refuses what transformers refuses, renders the same text otherwise, and that
 * {@link PromptEncoder} gives the same ids, a {@code prefix_len} that is the length of what the ids
 * share with the opening transformers' renderings of four other single-user prompts share, and
 * the last token as the source, the end of the header transformers' generation prompt adds.
 */
class TransformersChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Each published template file and the fixture family whose tokenizer it is checked with. */
    static final Map<String, String> PUBLISHED = publishedPairs();

    private static Map<String, String> publishedPairs() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("llama3_1.jinja", "llama"); // <|begin_of_text|>, <|start_header_id|>, <|end_header_id|>, <|eot_id|>
        m.put("qwen2_5.jinja", "qwen2"); // <|im_start|>, <|im_end|>; no BOS
        m.put("phi3_5.jinja", "phi3"); // <|system|>, <|user|>, <|assistant|>, <|end|>; EOS <|endoftext|>
        m.put("gemma.jinja", "gemma2"); // <bos>, <start_of_turn>, <end_of_turn>
        return m;
    }

    /** Conversations checked per template. */
    private static final List<List<Message>> CONVERSATIONS = List.of(
            List.of(Message.user("Hello world!")),
            List.of(Message.user("  What is the capital of France?  ")),
            List.of(Message.user("\u00bfQu\u00e9 hora es?")),
            List.of(Message.user("Why?"), Message.assistant("Because."), Message.user("Tell me more.")),
            List.of(Message.user("Line one.\nLine two.")),
            List.of(Message.system("You are terse."), Message.user("Hi there.")),
            List.of(Message.system(""), Message.user("Hi there.")),
            List.of(Message.system(" Answer in one word. "), Message.user("Why?"), Message.assistant(" Because. "),
                    Message.user("More.")),
            List.of(Message.user("One."), Message.user("Two.")));
    /** The first conversations, which every chat template renders: one user turn, or user, assistant, user. */
    private static final int ALWAYS_RENDERED = 5;
    /** Prompts whose renderings define the opening, independently of PromptEncoder's own probes. */
    private static final List<String> OPENING_PROBES = List.of("Tell me a story.", "42", "[x]", "\u00fcber");

    private static final String SCRIPT = """
            import json, sys
            from transformers import AutoTokenizer
            req = json.load(sys.stdin)
            def render(tok, conv, gen):
                try:
                    text = tok.apply_chat_template(conv, add_generation_prompt=gen, tokenize=False)
                except Exception as e:
                    return {"error": type(e).__name__ + ": " + str(e)}
                return {"text": text, "ids": list(tok(text, add_special_tokens=False)["input_ids"])}
            out = []
            for d in req["dirs"]:
                tok = AutoTokenizer.from_pretrained(d)
                out.append({
                    "conversations": [{"gen": render(tok, c, True), "closed": render(tok, c, False)}
                                      for c in req["conversations"]],
                    "probes": [render(tok, [{"role": "user", "content": p}], True)["ids"] for p in req["probes"]],
                })
            print(json.dumps(out))
            """;

    @TempDir
    Path tmp;

    private static String python() {
        String p = System.getenv("CDAS_PYTHON");
        return p == null || p.isBlank() ? "python3" : p;
    }

    /** Runs the script; its JSON output, or an AssertionError with the last line Python wrote to stderr. */
    private static JsonNode runPython(String stdin) throws IOException, InterruptedException {
        Path err = Files.createTempFile("cdas-transformers", ".err");
        try {
            Process proc = new ProcessBuilder(python(), "-c", SCRIPT).redirectError(err.toFile()).start();
            try (OutputStream in = proc.getOutputStream()) {
                in.write(stdin.getBytes(StandardCharsets.UTF_8));
            }
            byte[] out = proc.getInputStream().readAllBytes();
            if (!proc.waitFor(300, TimeUnit.SECONDS)) {
                proc.destroyForcibly();
                throw new AssertionError("transformers did not finish in 300 s");
            }
            if (proc.exitValue() != 0) {
                List<String> lines = Files.readAllLines(err);
                throw new AssertionError("transformers failed: " + (lines.isEmpty() ? "exit " + proc.exitValue() : lines.getLast()));
            }
            return JSON.readTree(new String(out, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(err);
        }
    }

    private static boolean transformersImportable() {
        try {
            Process p = new ProcessBuilder(python(), "-c", "import transformers, jinja2")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    private static int[] ids(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).intValue();
        }
        return out;
    }

    private static int commonPrefix(int[] a, int[] b) {
        int i = 0;
        while (i < Math.min(a.length, b.length) && a[i] == b[i]) {
            i++;
        }
        return i;
    }

    @Test
    void publishedTemplatesAgreeWithApplyChatTemplate() throws Exception {
        String published = System.getenv("CDAS_PUBLISHED_TEMPLATES");
        Assumptions.assumeTrue(published != null && !published.isBlank(),
                "CDAS_PUBLISHED_TEMPLATES is not set (scripts/test.sh sets it after scripts/fetch-published-templates.sh)");
        assertTrue(transformersImportable(), python() + " cannot import transformers and jinja2, and CDAS_PUBLISHED_TEMPLATES "
                + "is set: the comparison must run (scripts/fetch-published-templates.sh installs them)");
        List<Path> dirs = new ArrayList<>();
        for (Map.Entry<String, String> e : PUBLISHED.entrySet()) {
            Path template = Path.of(published, e.getKey());
            assertTrue(Files.isRegularFile(template), template + " is missing (scripts/fetch-published-templates.sh fetches it)");
            dirs.add(folder(e.getKey().replace(".jinja", ""), e.getValue(), template));
        }
        // Gemma-2 refuses the three conversations with a system message and the two user turns in a row
        compare(dirs, PUBLISHED.keySet().stream().map(k -> k.equals("gemma.jinja") ? 4 : 0).toList());
    }

    /**
     * A model folder for transformers and for us: the fixture family's tokenizer.json, its
     * tokenizer_config.json without a chat template, and {@code template} as chat_template.jinja.
     */
    private Path folder(String name, String family, Path template) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve(name));
        Files.copy(Fixtures.dir(family).resolve(Tokenizer.TOKENIZER_JSON), dir.resolve(Tokenizer.TOKENIZER_JSON));
        ObjectNode config = (ObjectNode) JSON.readTree(Fixtures.dir(family).resolve(Tokenizer.TOKENIZER_CONFIG).toFile());
        config.remove("chat_template");
        JSON.writeValue(dir.resolve(Tokenizer.TOKENIZER_CONFIG).toFile(), config);
        Files.copy(template, dir.resolve(Tokenizer.CHAT_TEMPLATE_FILE));
        return dir;
    }

    @Test
    void modelFoldersAgreeWithApplyChatTemplate() throws Exception {
        String models = System.getenv("CDAS_CHAT_TEMPLATE_MODELS");
        Assumptions.assumeTrue(models != null && !models.isBlank(),
                "CDAS_CHAT_TEMPLATE_MODELS is not set (model folders to compare with transformers, separated by "
                        + File.pathSeparator + ")");
        Assumptions.assumeTrue(transformersImportable(),
                python() + " cannot import transformers and jinja2 (set CDAS_PYTHON to a Python that can)");
        List<Path> dirs = new ArrayList<>();
        for (String d : models.split(File.pathSeparator)) {
            if (!d.isBlank()) {
                assertTrue(Files.isDirectory(Path.of(d)), d + " is not a folder");
                dirs.add(Path.of(d));
            }
        }
        assertFalse(dirs.isEmpty(), "CDAS_CHAT_TEMPLATE_MODELS names no folder");
        compare(dirs, null);
    }

    /** One Python run for all folders (transformers imports once), then each folder's checks. */
    private static void compare(List<Path> dirs, List<Integer> expectedRefusals) throws Exception {
        ObjectNode req = JSON.createObjectNode();
        ArrayNode d = req.putArray("dirs");
        dirs.forEach(p -> d.add(p.toAbsolutePath().toString()));
        ArrayNode convs = req.putArray("conversations");
        for (List<Message> c : CONVERSATIONS) {
            ArrayNode turns = convs.addArray();
            c.forEach(m -> turns.addObject().put("role", m.role()).put("content", m.content()));
        }
        req.set("probes", JSON.valueToTree(OPENING_PROBES));
        JsonNode expected = runPython(JSON.writeValueAsString(req));
        assertEquals(dirs.size(), expected.size());
        List<Executable> checks = new ArrayList<>();
        for (int i = 0; i < dirs.size(); i++) {
            Path dir = dirs.get(i);
            JsonNode e = expected.get(i);
            Integer refusals = expectedRefusals == null ? null : expectedRefusals.get(i);
            checks.add(() -> compare(dir, e, refusals));
        }
        assertAll("every template agrees with transformers", checks); // each folder's failure is reported
    }

    private static void compare(Path dir, JsonNode expected, Integer expectedRefusals) throws Exception {
        int[] opening = null;
        for (JsonNode probe : expected.get("probes")) {
            int[] p = ids(probe);
            opening = opening == null ? p : Arrays.copyOf(opening, commonPrefix(opening, p));
        }
        int refused = 0;
        try (Tokenizer tok = Tokenizer.load(dir)) {
            PromptEncoder enc = PromptEncoder.of(tok);
            ChatTemplate template = tok.chatTemplate().orElseThrow();
            assertTrue(enc.usesChatTemplate(), dir + " has a chat template");
            assertEquals(opening.length, enc.prefixLen(), dir + ": prefix_len is the opening transformers' renderings share");
            assertArrayEquals(opening, enc.prefixIds());
            for (int i = 0; i < CONVERSATIONS.size(); i++) {
                List<Message> conv = CONVERSATIONS.get(i);
                JsonNode gen = expected.get("conversations").get(i).get("gen");
                JsonNode closed = expected.get("conversations").get(i).get("closed");
                String what = dir.getFileName() + " conversation " + i + " " + conv;
                if (gen.has("error")) {
                    assertTrue(i >= ALWAYS_RENDERED, what + ": transformers refused it: " + gen.get("error").asText());
                    // transformers refuses it (Gemma: a system message, two user turns in a row): so must we, in one line
                    ChatTemplateException ours = assertThrows(ChatTemplateException.class, () -> enc.encodePrompt(conv),
                            what + ": transformers refused it (" + gen.get("error").asText() + ")");
                    assertTrue(ours.getMessage().contains(Tokenizer.CHAT_TEMPLATE_FILE) && !ours.getMessage().contains("\n"),
                            ours.getMessage());
                    assertTrue(closed.has("error"), what + ": refused only with the generation prompt");
                    refused++;
                    continue;
                }
                int[] ids = ids(gen.get("ids"));
                int[] closedIds = ids(closed.get("ids"));
                EncodedPrompt p = enc.encodePrompt(conv);
                assertEquals(gen.get("text").asText(), p.text(), what + ": rendered text");
                assertArrayEquals(ids, p.ids(), what + ": token ids");
                assertEquals(closed.get("text").asText(), template.render(conv, false), what + ": without the generation prompt");
                assertEquals(Math.min(commonPrefix(ids, opening), ids.length - 1), p.prefixLen(), what + ": prefix_len");
                assertEquals(ids.length - 1, p.sourcePosition(), what + ": the source is the last token");
                assertTrue(commonPrefix(ids, closedIds) < ids.length, what + ": the generation prompt adds a header");
                assertEquals(ids[ids.length - 1], p.ids()[p.sourcePosition()], what + ": the source token ends the header");
            }
        }
        if (expectedRefusals != null) {
            assertEquals(expectedRefusals, refused, dir + ": conversations refused (by transformers, and by us)");
        }
    }
}
