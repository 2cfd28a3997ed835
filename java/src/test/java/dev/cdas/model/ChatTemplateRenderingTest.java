package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * {@link ChatTemplate} renders on a per-thread copy of Jinjava's global context that it reuses
 * ({@code renderOnThisThread}) instead of Jinjava's {@code renderForResult}, which copies the
 * global context for every rendering. These tests render the same templates and variables both
 * ways, in random order on one thread and on several threads at once, and require the same text
 * and the same errors: the fixture families' templates, the four published-structure templates
 * of {@code fixtures/chat-templates/}, and templates that set variables, define macros, fail or
 * raise, so that anything a rendering left behind in the reused copy would change a later one.
 */
class ChatTemplateRenderingTest {
    private static final Map<String, String> SPECIAL = Map.of("bos_token", "<s>", "eos_token", "</s>");

    /** Templates that leave as much behind as a template can: variables, a namespace, a macro, a loop variable. */
    private static final List<String> STATEFUL = List.of(
            "{% set greeting = 'hello ' ~ messages[0].content %}{{ greeting }}|{{ leaked | default('none') }}",
            "{{ greeting | default('no greeting') }}{% set leaked = 'yes' %}{{ leaked }}",
            "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"
                    + "|{{ loop | default('no loop') }}",
            "{% macro turn(m) %}[{{ m.role }}:{{ m.content }}]{% endmacro %}{% for m in messages %}{{ turn(m) }}{% endfor %}",
            "{{ turn(messages[0]) if turn is defined else 'no macro' }}|{{ ns.n if ns is defined else 'no ns' }}",
            "{{ raise_exception('refused: ' ~ messages[0].content) }}",
            "{% if add_generation_prompt %}{{ undefined_function(1) }}{% endif %}{{ bos_token }}",
            "{% for m in messages %}{{ m.content | upper }}{% endfor %}{{ eos_token if not add_generation_prompt }}",
            "{{ messages[0].content[:3] }}{{ 'x' * 3 }}{% if messages | length > 1 %}{{ messages[1].role }}{% endif %}");

    private static List<String> templates() throws IOException {
        List<String> all = new ArrayList<>(STATEFUL);
        ObjectMapper json = new ObjectMapper();
        for (String family : Fixtures.CHAT_FAMILIES) {
            all.add(json.readTree(Files.readString(Fixtures.dir(family).resolve(Tokenizer.TOKENIZER_CONFIG)))
                    .get("chat_template").asText());
        }
        for (String name : List.of("gemma2.jinja", "llama31.jinja", "phi35.jinja", "qwen25.jinja")) {
            try (InputStream in = ChatTemplateRenderingTest.class.getResourceAsStream("/fixtures/chat-templates/" + name)) {
                all.add(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            }
        }
        return all;
    }

    private static Map<String, Object> vars(Random rnd) {
        List<Map<String, Object>> messages = new ArrayList<>();
        String[] contents = {"Why is the sky blue?", "  padded  ", "", "über 3 + 4", "line\nbreak", "{{ not a tag }}"};
        int n = 1 + rnd.nextInt(4);
        if (rnd.nextInt(4) == 0) {
            messages.add(Map.of("role", "system", "content", contents[rnd.nextInt(contents.length)]));
        }
        for (int i = 0; i < n; i++) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", i % 2 == 0 ? "user" : "assistant");
            m.put("content", contents[rnd.nextInt(contents.length)]);
            messages.add(m);
        }
        Map<String, Object> vars = new HashMap<>(SPECIAL);
        vars.put("messages", messages);
        vars.put("add_generation_prompt", rnd.nextBoolean());
        return vars;
    }

    /** The output and, for each error, its severity, message and the exception's class and message. */
    private static String summary(RenderResult r) {
        StringBuilder sb = new StringBuilder("output=").append(r.getOutput());
        for (TemplateError e : r.getErrors()) {
            Throwable t = e.getException();
            sb.append("\nerror ").append(e.getSeverity()).append(' ').append(e.getReason()).append(" line ").append(e.getLineno())
                    .append(": ").append(e.getMessage())
                    .append(t == null ? "" : " (" + t.getClass().getName() + ": " + t.getMessage() + ")");
        }
        return sb.toString();
    }

    @Test
    void reusedGlobalContextRendersWhatAFreshCopyRenders() throws IOException {
        List<String> templates = templates();
        Random rnd = new Random(20261202);
        int errors = 0;
        for (int i = 0; i < 600; i++) {
            String t = templates.get(rnd.nextInt(templates.size()));
            Map<String, Object> v = vars(rnd);
            String fresh = summary(ChatTemplate.renderWithFreshGlobalCopy(t, v));
            String reused = summary(ChatTemplate.renderOnThisThread(t, v));
            assertEquals(fresh, reused, "rendering " + i + " of " + t);
            errors += fresh.contains("\nerror ") ? 1 : 0;
        }
        assertTrue(errors > 50, "the mix includes failing renderings: " + errors);
    }

    @Test
    void nothingARenderingSetsIsSeenByTheNext() {
        Map<String, Object> v = vars(new Random(1));
        ChatTemplate.renderOnThisThread(STATEFUL.get(0), v);
        ChatTemplate.renderOnThisThread(STATEFUL.get(1), v);
        ChatTemplate.renderOnThisThread(STATEFUL.get(3), v);
        ChatTemplate.renderOnThisThread(STATEFUL.get(2), v);
        String after = ChatTemplate.renderOnThisThread(STATEFUL.get(1), v).getOutput();
        assertEquals("no greetingyes", after);
        assertEquals(ChatTemplate.renderWithFreshGlobalCopy(STATEFUL.get(4), v).getOutput(),
                ChatTemplate.renderOnThisThread(STATEFUL.get(4), v).getOutput());
        assertTrue(ChatTemplate.renderOnThisThread(STATEFUL.get(4), v).getOutput().endsWith("|no ns"));
        assertTrue(ChatTemplate.renderOnThisThread(STATEFUL.get(0), v).getOutput().endsWith("|none"));
    }

    @Test
    void threadsRenderingAtOnceGetTheirOwnResults() throws Exception {
        List<String> templates = templates();
        ExecutorService pool = Executors.newFixedThreadPool(4);
        try {
            List<Future<List<String[]>>> runs = new ArrayList<>();
            for (int th = 0; th < 4; th++) {
                long seed = 77 + th;
                runs.add(pool.submit(() -> {
                    Random rnd = new Random(seed);
                    List<String[]> out = new ArrayList<>();
                    for (int i = 0; i < 150; i++) {
                        String t = templates.get(rnd.nextInt(templates.size()));
                        Map<String, Object> v = vars(rnd);
                        String reused = summary(ChatTemplate.renderOnThisThread(t, v));
                        out.add(new String[] {t, reused, summary(ChatTemplate.renderWithFreshGlobalCopy(t, v))});
                    }
                    return out;
                }));
            }
            for (Future<List<String[]>> run : runs) {
                for (String[] r : run.get()) {
                    assertEquals(r[2], r[1], "rendering of " + r[0]);
                }
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void chatTemplateRenderUsesTheReusedPathAndStillReportsRefusals() {
        ChatTemplate t = ChatTemplate.of(STATEFUL.get(5), SPECIAL, java.nio.file.Path.of("tokenizer_config.json"));
        ChatTemplateException e = org.junit.jupiter.api.Assertions.assertThrows(ChatTemplateException.class,
                () -> t.render(List.of(ChatTemplate.Message.user("no")), true));
        assertTrue(e.getMessage().contains("refused: no"), e.getMessage());
        ChatTemplate ok = ChatTemplate.of(STATEFUL.get(7), SPECIAL, java.nio.file.Path.of("tokenizer_config.json"));
        for (int i = 0; i < 3; i++) {
            assertEquals("WHY</s>", assertDoesNotThrowRender(ok, false));
            assertEquals("WHY", assertDoesNotThrowRender(ok, true));
        }
        assertFalse(e.getMessage().contains("\n"));
    }

    private static String assertDoesNotThrowRender(ChatTemplate t, boolean generationPrompt) {
        try {
            return t.render(List.of(ChatTemplate.Message.user("why")), generationPrompt);
        } catch (ChatTemplateException e) {
            throw new AssertionError(e);
        }
    }
}
