package dev.cdas.model;

import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.interpret.Context;
import com.hubspot.jinjava.interpret.InterpretException;
import com.hubspot.jinjava.interpret.InvalidArgumentException;
import com.hubspot.jinjava.interpret.InvalidInputException;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.interpret.JinjavaInterpreter;
import com.hubspot.jinjava.interpret.TemplateSyntaxException;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import com.hubspot.jinjava.lib.tag.ForTag;
import com.hubspot.jinjava.tree.TagNode;
import java.util.AbstractCollection;
import java.util.Collection;
import java.util.Iterator;
import java.nio.file.Path;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * A tokenizer's Jinja chat template, rendered with Jinjava the way transformers'
 * {@code apply_chat_template} renders it: {@code trim_blocks} and {@code lstrip_blocks} on, the
 * variables {@code messages}, {@code add_generation_prompt} and the special tokens
 * ({@code bos_token}, {@code eos_token}, ...), and the functions {@code raise_exception(msg)} and
 * {@code strftime_now(fmt)}. As in transformers, the rendered text already contains the template's
 * own special tokens (e.g. {@code <bos>}), so it must be tokenised without adding special tokens.
 */
public final class ChatTemplate {
    /**
     * One chat turn; role is "system", "user" or "assistant".
     *
     * @param role    the speaker: "system", "user" or "assistant"
     * @param content the turn's text
     */
    public record Message(String role, String content) {
        /**
         * Checks that both are present.
         *
         * @throws NullPointerException when role or content is null
         */
        public Message {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }

        /**
         * A system turn.
         *
         * @param content the turn's text
         * @return the message
         */
        public static Message system(String content) {
            return new Message("system", content);
        }

        /**
         * A user turn.
         *
         * @param content the turn's text
         * @return the message
         */
        public static Message user(String content) {
            return new Message("user", content);
        }

        /**
         * An assistant turn.
         *
         * @param content the turn's text
         * @return the message
         */
        public static Message assistant(String content) {
            return new Message("assistant", content);
        }

        Map<String, Object> asMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("role", role);
            m.put("content", content);
            return m;
        }
    }

    /** What the template's raise_exception throws; found again in Jinjava's error list. */
    static final class RaisedException extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RaisedException(String message) {
            super(message);
        }
    }

    /**
     * The most characters a rendering may produce: 16 Mi by default, system property
     * {@code cdas.chatTemplate.maxOutputChars} (docs/limits.md). A model folder is data: its template
     * must not fill the memory.
     */
    public static final long MAX_OUTPUT_CHARS = Long.getLong("cdas.chatTemplate.maxOutputChars", 16L << 20);

    /**
     * The longest a rendering may take by default, in milliseconds (10 s); system property
     * {@code cdas.chatTemplate.timeoutMs} (docs/limits.md); a template looping for ever is stopped.
     */
    public static final long DEFAULT_TIMEOUT_MS = 10_000;

    static long timeoutMs() {
        return Long.getLong("cdas.chatTemplate.timeoutMs", DEFAULT_TIMEOUT_MS);
    }

    private static final JinjavaConfig CONFIG = newConfig();
    private static final Jinjava JINJAVA = newJinjava();

    /**
     * Each rendering thread's copy of Jinjava's global context (its filters, functions and tags), made
     * once and {@link Context#reset() reset} after each rendering. Jinjava's own
     * {@code renderForResult} copies the global context for every rendering, which was about nine
     * tenths of the time of a chat-template rendering (0.2 of 0.22 ms warm, 1.5 of 1.6 ms cold): in a
     * fan-out process on one core that was about 5% of the CPU. See {@link #renderOnThisThread}.
     */
    private static final ThreadLocal<Context> GLOBAL_COPY = ThreadLocal.withInitial(JINJAVA::getGlobalContextCopy);

    /**
     * The threads renderings run on (for the time bound): kept and reused, daemons, ended after a
     * minute unused. A fresh thread per rendering cost about ten times the rendering itself,
     * Jinjava building its per-thread state anew each time (docs/fuzzing.md).
     */
    private static final java.util.concurrent.ExecutorService RENDERERS = java.util.concurrent.Executors.newCachedThreadPool(
            r -> Thread.ofPlatform().daemon().name("cdas-chat-template").unstarted(r));

    private final String source;
    private final Map<String, String> specialTokens;
    private final Path file;

    ChatTemplate(String source, Map<String, String> specialTokens, Path file) {
        this.source = source;
        this.specialTokens = Map.copyOf(specialTokens);
        this.file = file;
    }

    /**
     * A template from its text (tests, or templates kept elsewhere); {@code file} is for messages.
     *
     * @param source        the Jinja2 template
     * @param specialTokens the special tokens by role (bos_token, eos_token, ...), made template variables
     * @param file          where the template came from
     * @return the template
     */
    public static ChatTemplate of(String source, Map<String, String> specialTokens, Path file) {
        return new ChatTemplate(source, specialTokens, file);
    }

    private static JinjavaConfig newConfig() {
        return JinjavaConfig.newBuilder()
                .withTrimBlocks(true)
                .withLstripBlocks(true)
                // Python Jinja semantics where Jinjava's legacy behaviour differs. Not LegacyOverrides.ALL:
                // its whitespaceRequiredWithinTokens leaves "{%- x %}" and multi-line "{{ '..\n..' }}" unparsed.
                .withLegacyOverrides(LegacyOverrides.newBuilder()
                        .withUseNaturalOperatorPrecedence(true)
                        .withParseWhitespaceControlStrictly(true)
                        .withEvaluateMapKeys(true)
                        .withIterateOverMapKeys(true)
                        .withUsePyishObjectMapper(true)
                        .withKeepNullableLoopValues(true)
                        .withUseTrimmingForNotesAndExpressions(true)
                        .build())
                .withFailOnUnknownTokens(false)
                .withMaxOutputSize(MAX_OUTPUT_CHARS)
                .withMaxStringLength(MAX_OUTPUT_CHARS)
                .build();
    }

    private static Jinjava newJinjava() {
        Jinjava j = new Jinjava(CONFIG);
        j.getGlobalContext().registerTag(new StoppableForTag());
        j.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "raise_exception", ChatTemplate.class, "raiseException", String.class));
        j.getGlobalContext().registerFunction(
                new ELFunctionDefinition("", "strftime_now", ChatTemplate.class, "strftimeNow", String.class));
        return j;
    }

    /**
     * The template function {@code raise_exception(msg)}: ends rendering with that message. Public only
     * for Jinjava to call.
     *
     * @param message the template's message
     * @return never returns
     */
    public static Object raiseException(String message) {
        throw new RaisedException(message);
    }

    /**
     * The common strftime codes used by chat templates (Llama 3.1's "%d %b %Y").
     *
     * The template function {@code strftime_now(fmt)}: today's date (local time zone) formatted with
     * {@code %d %m %Y %y %b %B %A %a %%}; other codes are kept as written.
     *
     * @param format the strftime format
     * @return the formatted date
     */
    public static String strftimeNow(String format) {
        LocalDate d = LocalDate.now();
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < format.length(); i++) {
            char c = format.charAt(i);
            if (c != '%' || i + 1 == format.length()) {
                sb.append(c);
                continue;
            }
            char k = format.charAt(++i);
            sb.append(switch (k) {
                case 'd' -> String.format(Locale.ROOT, "%02d", d.getDayOfMonth());
                case 'm' -> String.format(Locale.ROOT, "%02d", d.getMonthValue());
                case 'Y' -> String.valueOf(d.getYear());
                case 'y' -> String.format(Locale.ROOT, "%02d", d.getYear() % 100);
                case 'b' -> d.format(DateTimeFormatter.ofPattern("MMM", Locale.ENGLISH));
                case 'B' -> d.format(DateTimeFormatter.ofPattern("MMMM", Locale.ENGLISH));
                case 'A' -> d.format(DateTimeFormatter.ofPattern("EEEE", Locale.ENGLISH));
                case 'a' -> d.format(DateTimeFormatter.ofPattern("EEE", Locale.ENGLISH));
                case '%' -> "%";
                default -> "%" + k;
            });
        }
        return sb.toString();
    }

    /** {@return the Jinja2 template text} */
    public String source() {
        return source;
    }

    /**
     * The file the template came from (tokenizer_config.json or chat_template.jinja).
     *
     * @return the file, for messages
     */
    public Path file() {
        return file;
    }

    /**
     * Renders a conversation as transformers' {@code apply_chat_template(tokenize=False)} does.
     *
     * @param messages            the turns, in order
     * @param addGenerationPrompt whether to append the assistant header the reply follows
     * @return the rendered text, with the template's own special tokens
     * @throws ChatTemplateException when the template raises an exception, fails, or renders too much text
     */
    public String render(List<Message> messages, boolean addGenerationPrompt) throws ChatTemplateException {
        Map<String, Object> vars = new HashMap<>(specialTokens);
        List<Map<String, Object>> msgs = new ArrayList<>();
        for (Message m : messages) {
            msgs.add(m.asMap());
        }
        vars.put("messages", msgs);
        vars.put("add_generation_prompt", addGenerationPrompt);
        RenderResult result;
        try {
            result = renderBounded(vars);
        } catch (RaisedException e) {
            throw new ChatTemplateException(file, "the template refused these messages: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new ChatTemplateException(file, "rendering failed: " + e.getMessage(), e);
        }
        for (TemplateError err : result.getErrors()) {
            RaisedException raised = raised(err.getException());
            if (raised != null) {
                throw new ChatTemplateException(file, "the template refused these messages: " + raised.getMessage(), raised);
            }
        }
        for (TemplateError err : result.getErrors()) {
            if (err.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException(file, "rendering failed at line " + err.getLineno() + ": " + err.getMessage(),
                        err.getException());
            }
        }
        return result.getOutput();
    }

    /**
     * Renders on one of {@link #RENDERERS} so that a template that does not finish within {@link #DEFAULT_TIMEOUT_MS} (or
     * as set) can be interrupted (a loop stops at its next step, {@link StoppableForTag}; Jinjava also checks between
     * top-level nodes) and reported.
     */
    private RenderResult renderBounded(Map<String, Object> vars) throws ChatTemplateException {
        java.util.concurrent.Future<RenderResult> task = RENDERERS.submit(() -> renderOnThisThread(source, vars));
        long timeout = timeoutMs();
        try {
            return task.get(timeout, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            task.cancel(true); // interrupts the rendering thread, which StoppableForTag then ends
            throw new ChatTemplateException(file, "rendering took longer than " + timeout
                    + " ms (a template that loops for ever?) and was stopped (the bound is in docs/limits.md)", e);
        } catch (InterruptedException e) {
            task.cancel(true);
            Thread.currentThread().interrupt();
            throw new ChatTemplateException(file, "rendering was interrupted", e);
        } catch (java.util.concurrent.ExecutionException e) {
            Throwable c = e.getCause();
            if (c instanceof RuntimeException r) {
                throw r;
            }
            if (c instanceof Error err) {
                throw err;
            }
            throw new ChatTemplateException(file, "rendering failed: " + c, c);
        }
    }

    /**
     * What {@code JINJAVA.renderForResult(source, vars)} does (Jinjava 2.8: a copy of the global
     * context as the parent of the variables' context, an interpreter made current for the rendering,
     * the same exceptions turned into the same {@link TemplateError}s), except that the copy of the
     * global context is this thread's, reused: it is reset after each rendering as Jinjava resets its
     * own, and dropped (a fresh copy next time) if a rendering left anything in its variables.
     * ChatTemplateRenderingTest renders the fixture templates both ways and compares.
     */
    static RenderResult renderOnThisThread(String source, Map<String, ?> vars) {
        Context global = GLOBAL_COPY.get();
        int globalVariables = global.getScope().size();
        JinjavaInterpreter interpreter = new JinjavaInterpreter(JINJAVA, new Context(global, vars, CONFIG.getDisabled()), CONFIG);
        JinjavaInterpreter.pushCurrent(interpreter);
        try {
            return new RenderResult(interpreter.render(source), interpreter.getContext(), interpreter.getErrorsCopy());
        } catch (TemplateSyntaxException e) {
            return new RenderResult(TemplateError.fromException(e), interpreter.getContext(), interpreter.getErrorsCopy());
        } catch (InterpretException e) {
            return new RenderResult(TemplateError.fromSyntaxError(e), interpreter.getContext(), interpreter.getErrorsCopy());
        } catch (InvalidArgumentException e) {
            return new RenderResult(TemplateError.fromInvalidArgumentException(e), interpreter.getContext(),
                    interpreter.getErrorsCopy());
        } catch (InvalidInputException e) {
            return new RenderResult(TemplateError.fromInvalidInputException(e), interpreter.getContext(),
                    interpreter.getErrorsCopy());
        } catch (Exception e) {
            return new RenderResult(TemplateError.fromException(e), interpreter.getContext(), interpreter.getErrorsCopy());
        } finally {
            JinjavaInterpreter.popCurrent();
            global.reset();
            if (global.getScope().size() != globalVariables) {
                GLOBAL_COPY.remove();
            }
        }
    }

    /** For tests: Jinjava's own {@code renderForResult}, a fresh copy of the global context for this rendering. */
    static RenderResult renderWithFreshGlobalCopy(String source, Map<String, ?> vars) {
        return JINJAVA.renderForResult(source, vars);
    }

    /**
     * Jinjava's {@code for} tag, except that each step of a loop over a collection first checks
     * whether the rendering thread was interrupted (the time bound ran out) and, if so, stops the
     * loop. Jinjava itself checks for an interrupt only between the template's top-level nodes, so
     * a timed-out rendering of nested loops went on in its daemon thread, using a core and memory,
     * long after {@link #render} had reported it; in a fuzzing JVM these leftovers piled up and the
     * executions per second fell tenfold (docs/fuzzing.md).
     */
    private static final class StoppableForTag extends ForTag {
        private static final long serialVersionUID = 1L;

        @Override
        public String renderForCollection(TagNode tagNode, JinjavaInterpreter interpreter, List<String> loopVars,
                                          Object collection) {
            Object items = collection instanceof Collection<?> c ? new InterruptChecking<>(c) : collection;
            return super.renderForCollection(tagNode, interpreter, loopVars, items);
        }
    }

    /** A collection whose iterator stops (throws) once the current thread is interrupted; its size is the original's. */
    private static final class InterruptChecking<T> extends AbstractCollection<T> {
        private final Collection<T> items;

        InterruptChecking(Collection<T> items) {
            this.items = items;
        }

        @Override
        public int size() {
            return items.size();
        }

        @Override
        public Iterator<T> iterator() {
            Iterator<T> it = items.iterator();
            return new Iterator<>() {
                @Override
                public boolean hasNext() {
                    if (Thread.currentThread().isInterrupted()) {
                        throw new RenderingStopped();
                    }
                    return it.hasNext();
                }

                @Override
                public T next() {
                    return it.next();
                }
            };
        }
    }

    /** Ends a rendering whose time ran out (its caller has already reported the timeout). */
    private static final class RenderingStopped extends RuntimeException {
        private static final long serialVersionUID = 1L;

        RenderingStopped() {
            super("rendering stopped: the time bound ran out", null, false, false);
        }
    }

    private static RaisedException raised(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof RaisedException r) {
                return r;
            }
        }
        return null;
    }
}
