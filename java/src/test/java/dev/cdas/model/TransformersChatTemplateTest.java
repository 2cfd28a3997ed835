package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertAll;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.model.PromptEncoder.EncodedPrompt;
import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * Real chat templates, compared with transformers. Other projects' model files are passed in, not
 * copied into this repository: {@code CDAS_CHAT_TEMPLATE_MODELS} lists model folders (each with
 * {@code tokenizer.json} and a chat template in {@code tokenizer_config.json} or
 * {@code chat_template.jinja}, e.g. Llama-3.1-8B-Instruct, Qwen2.5-7B-Instruct,
 * Phi-3.5-mini-instruct, gemma-2-2b-it), separated by {@code File.pathSeparator}, and
 * {@code CDAS_PYTHON} (default {@code python3}) a Python that imports transformers (and jinja2,
 * which its {@code apply_chat_template} needs). For each folder
 * and a few prompts, transformers renders the conversation with {@code apply_chat_template} (with
 * and without the generation prompt) and tokenises it without special tokens, as
 * {@code apply_chat_template(tokenize=True)} does; the test checks that {@link PromptEncoder} gives
 * the same ids, that its {@code prefix_len} is the length of the opening that transformers'
 * renderings of different single-user prompts share, and that its source position is the last
 * token, the end of the assistant header transformers' generation prompt adds. Without the
 * variable or without transformers the test is skipped (reported as such, never as a pass).
 */
class TransformersChatTemplateTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Prompts checked per folder: plain, padded with spaces, non-ASCII, a multi-line one. */
    private static final List<String> PROMPTS = List.of("Hello world!", "  What is the capital of France?  ",
            "\u00bfQu\u00e9 hora es?", "Line one.\nLine two.");
    /** Prompts whose renderings define the opening, independently of PromptEncoder's own probes. */
    private static final List<String> OPENING_PROBES = List.of("Tell me a story.", "42", "[x]", "\u00fcber");

    private static final String SCRIPT = """
            import json, sys
            from transformers import AutoTokenizer
            req = json.load(sys.stdin)
            tok = AutoTokenizer.from_pretrained(req["dir"])
            def render(content, gen):
                text = tok.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=gen, tokenize=False)
                return text, list(tok(text, add_special_tokens=False)["input_ids"])
            out = {"prompts": [], "probes": []}
            for p in req["prompts"]:
                text, ids = render(p, True)
                _, closed = render(p, False)
                out["prompts"].append({"text": text, "ids": ids, "ids_without_generation_prompt": closed})
            for p in req["probes"]:
                out["probes"].append(render(p, True)[1])
            print(json.dumps(out))
            """;

    private static String python() {
        String p = System.getenv("CDAS_PYTHON");
        return p == null || p.isBlank() ? "python3" : p;
    }

    /** Runs the script; its JSON output, or an AssertionError with the last line Python wrote to stderr. */
    private static JsonNode runPython(String stdin, String script) throws IOException, InterruptedException {
        Path err = Files.createTempFile("cdas-transformers", ".err");
        try {
            Process proc = new ProcessBuilder(python(), "-c", script).redirectError(err.toFile()).start();
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
    void promptEncoderAgreesWithApplyChatTemplate() {
        String models = System.getenv("CDAS_CHAT_TEMPLATE_MODELS");
        Assumptions.assumeTrue(models != null && !models.isBlank(),
                "CDAS_CHAT_TEMPLATE_MODELS is not set (model folders to compare with transformers, separated by "
                        + File.pathSeparator + ")");
        Assumptions.assumeTrue(transformersImportable(),
                python() + " cannot import transformers and jinja2 (set CDAS_PYTHON to a Python that can)");
        List<Executable> checks = new ArrayList<>();
        for (String d : models.split(File.pathSeparator)) {
            if (!d.isBlank()) {
                checks.add(() -> compare(Path.of(d)));
            }
        }
        assertFalse(checks.isEmpty(), "CDAS_CHAT_TEMPLATE_MODELS names no folder");
        assertAll("every folder agrees with transformers", checks); // each folder's failure is reported
    }

    private static void compare(Path dir) throws Exception {
        assertTrue(Files.isDirectory(dir), dir + " is not a folder");
        ObjectNode req = JSON.createObjectNode();
        req.put("dir", dir.toAbsolutePath().toString());
        req.set("prompts", JSON.valueToTree(PROMPTS));
        req.set("probes", JSON.valueToTree(OPENING_PROBES));
        JsonNode expected = runPython(JSON.writeValueAsString(req), SCRIPT);

        int[] opening = null;
        for (JsonNode probe : expected.get("probes")) {
            int[] p = ids(probe);
            opening = opening == null ? p : Arrays.copyOf(opening, commonPrefix(opening, p));
        }
        try (Tokenizer tok = Tokenizer.load(dir)) {
            PromptEncoder enc = PromptEncoder.of(tok);
            assertTrue(enc.usesChatTemplate(), dir + " has a chat template");
            assertEquals(opening.length, enc.prefixLen(), dir + ": prefix_len is the opening transformers' renderings share");
            assertArrayEquals(opening, enc.prefixIds());
            for (int i = 0; i < PROMPTS.size(); i++) {
                JsonNode e = expected.get("prompts").get(i);
                int[] ids = ids(e.get("ids"));
                int[] closed = ids(e.get("ids_without_generation_prompt"));
                EncodedPrompt p = enc.encodePrompt(PROMPTS.get(i));
                String what = dir + " prompt " + i;
                assertEquals(e.get("text").asText(), p.text(), what + ": rendered text");
                assertArrayEquals(ids, p.ids(), what + ": token ids");
                assertEquals(Math.min(commonPrefix(ids, opening), ids.length - 1), p.prefixLen(), what + ": prefix_len");
                assertEquals(ids.length - 1, p.sourcePosition(), what + ": the source is the last token");
                assertTrue(commonPrefix(ids, closed) < ids.length, what + ": the generation prompt adds a header");
                assertEquals(ids[ids.length - 1], p.ids()[p.sourcePosition()], what + ": the source token ends the header");
            }
        }
    }
}
