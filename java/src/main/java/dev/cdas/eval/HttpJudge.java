package dev.cdas.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.InvalidArgumentException;
import dev.cdas.train.ProgressListener;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A judge behind an OpenAI-compatible chat-completions endpoint ({@code POST url} with
 * {@code {"model", "messages": [{"role": "user", "content": prompt}], "temperature": 0,
 * "max_tokens"}}, the answer in {@code choices[0].message.content}). Each request has a time
 * limit; a 429 or 5xx answer, a timeout or a broken connection is retried after an exponentially
 * growing pause (the server's Retry-After when it gives one, up to {@link Settings#maxPause});
 * when the attempts are spent the prompt's verdict is failed. Other 4xx answers (a refused key,
 * an unknown model) stop the whole run with a {@link JudgeException}. At most
 * {@link Settings#concurrency} requests are in flight. The key goes only into the Authorization
 * header; it is in no message, report or cache entry.
 */
public final class HttpJudge implements Judge {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * How to reach the endpoint: {@code apiKey} may be null (no Authorization header); a request
     * gets {@code timeout}, a prompt at most {@code attempts} requests, the first pause is
     * {@code backoff} and each next one doubles, none longer than {@code maxPause}.
     *
     * @param url         the endpoint, http or https
     * @param model       the judge model's name, sent as "model"
     * @param apiKey      the bearer token, or null for none
     * @param timeout     the time limit of one request, positive
     * @param attempts    the most requests per prompt, at least 1
     * @param backoff     the first pause between attempts, not negative
     * @param maxPause    the longest pause, not negative
     * @param concurrency the most requests in flight, at least 1
     * @param maxTokens   the answer's token limit, sent as "max_tokens", at least 1
     */
    public record Settings(URI url, String model, String apiKey, Duration timeout, int attempts, Duration backoff,
            Duration maxPause, int concurrency, int maxTokens) {
        /**
         * Checks the settings.
         *
         * @throws InvalidArgumentException when the URL is not http(s), the model is blank, or a count or
         *         duration is out of range
         */
        public Settings {
            if (url == null || url.getScheme() == null || !(url.getScheme().equals("http") || url.getScheme().equals("https"))) {
                throw new InvalidArgumentException("the judge URL must be an http or https URL, got " + url);
            }
            if (model == null || model.isBlank()) {
                throw new InvalidArgumentException("the judge model name is empty");
            }
            if (timeout.isNegative() || timeout.isZero() || attempts < 1 || concurrency < 1 || maxTokens < 1
                    || backoff.isNegative() || maxPause.isNegative()) {
                throw new InvalidArgumentException("judge settings: the time limit, attempts, concurrency and max tokens must be positive");
            }
        }

        @Override
        public String toString() {
            return "Settings[url=" + url + ", model=" + model + ", key " + (apiKey == null ? "none" : "set") + "]";
        }
    }

    private final Settings settings;
    private final HttpClient client;

    /**
     * A judge that sends its prompts to the endpoint of {@code settings}.
     *
     * @param settings the endpoint, model, key and retry settings
     */
    public HttpJudge(Settings settings) {
        this.settings = settings;
        this.client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(settings.timeout()).build();
    }

    @Override
    public String id() {
        return "openai-chat:" + settings.model() + ":max_tokens=" + settings.maxTokens();
    }

    @Override
    public List<Verdict> judge(List<String> prompts, ProgressListener listener) {
        AtomicLong done = new AtomicLong();
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(settings.concurrency(), Math.max(1, prompts.size())), r -> {
            Thread t = new Thread(r, "cdas-judge");
            t.setDaemon(true);
            return t;
        });
        try {
            List<Future<Verdict>> futures = new ArrayList<>();
            for (String p : prompts) {
                futures.add(pool.submit(() -> {
                    Verdict v = ask(p);
                    long n = done.incrementAndGet();
                    if (listener != null) {
                        listener.progress("judge", n, prompts.size(), "");
                    }
                    return v;
                }));
            }
            List<Verdict> out = new ArrayList<>(prompts.size());
            for (Future<Verdict> f : futures) {
                try {
                    out.add(f.get());
                } catch (ExecutionException e) {
                    if (e.getCause() instanceof JudgeException je) {
                        throw new JudgeException(je.getMessage());
                    }
                    if (e.getCause() instanceof RuntimeException re) {
                        throw re;
                    }
                    throw new dev.cdas.InternalException("judge request failed: " + e.getCause());
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new JudgeException("interrupted while waiting for the judge");
                }
            }
            return out;
        } finally {
            pool.shutdownNow();
            if (listener != null) {
                listener.finished("judge");
            }
        }
    }

    /** One prompt, with retries. */
    Verdict ask(String prompt) throws InterruptedException {
        ObjectNode body = JSON.createObjectNode();
        body.put("model", settings.model());
        ObjectNode msg = body.putArray("messages").addObject();
        msg.put("role", "user");
        msg.put("content", prompt);
        body.put("temperature", 0);
        body.put("max_tokens", settings.maxTokens());
        HttpRequest.Builder b = HttpRequest.newBuilder(settings.url()).timeout(settings.timeout())
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.UTF_8));
        if (settings.apiKey() != null) {
            b.header("Authorization", "Bearer " + settings.apiKey());
        }
        HttpRequest request = b.build();
        String last = "no attempt";
        for (int attempt = 1; attempt <= settings.attempts(); attempt++) {
            Duration pause = pause(attempt, null);
            CompletableFuture<HttpResponse<String>> pending =
                    client.sendAsync(request, HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
            try {
                // The caller's own clock bounds the wait as well as the request's timeout.
                HttpResponse<String> r = pending.get(settings.timeout().toMillis(), TimeUnit.MILLISECONDS);
                int code = r.statusCode();
                if (code == 200) {
                    return content(r.body());
                }
                last = "HTTP " + code + snippet(r.body());
                if (code != 429 && code < 500) {
                    throw new JudgeException("the judge at " + settings.url() + " answered " + last);
                }
                pause = pause(attempt, r.headers().firstValue("Retry-After").orElse(null));
            } catch (TimeoutException e) {
                pending.cancel(true);
                last = "no answer within " + settings.timeout().toMillis() + " ms";
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                last = c instanceof HttpTimeoutException ? "no answer within " + settings.timeout().toMillis() + " ms"
                        : "connection failed: " + c;
            }
            if (attempt < settings.attempts()) {
                Thread.sleep(pause.toMillis());
            }
        }
        return Verdict.failed(last + " (after " + settings.attempts() + " attempt" + (settings.attempts() == 1 ? "" : "s") + ")");
    }

    /** The pause after attempt {@code attempt}: Retry-After (seconds or an HTTP date) if given, else backoff * 2^(attempt-1). */
    Duration pause(int attempt, String retryAfter) {
        Duration d = null;
        if (retryAfter != null) {
            String s = retryAfter.strip();
            try {
                d = Duration.ofSeconds(Long.parseLong(s));
            } catch (NumberFormatException e) {
                try {
                    d = Duration.between(java.time.Instant.now(), ZonedDateTime.parse(s, DateTimeFormatter.RFC_1123_DATE_TIME).toInstant());
                } catch (DateTimeParseException ignored) {
                    d = null; // not a form we know: fall back to our own backoff
                }
            }
        }
        if (d == null) {
            d = settings.backoff().multipliedBy(1L << Math.min(attempt - 1, 20));
        }
        if (d.isNegative()) {
            d = Duration.ZERO;
        }
        return d.compareTo(settings.maxPause()) > 0 ? settings.maxPause() : d;
    }

    private Verdict content(String body) {
        try {
            JsonNode n = JSON.readTree(body);
            JsonNode c = n == null ? null : n.path("choices").path(0).path("message").path("content");
            if (c != null && c.isTextual()) {
                return Verdict.of(c.asText());
            }
        } catch (IOException e) {
            // reported below
        }
        return Verdict.failed("the judge's answer has no choices[0].message.content" + snippet(body));
    }

    private static String snippet(String body) {
        if (body == null || body.isBlank()) {
            return "";
        }
        String s = body.strip().replaceAll("\\s+", " ");
        return ": " + (s.length() > 200 ? s.substring(0, 200) + "..." : s);
    }
}
