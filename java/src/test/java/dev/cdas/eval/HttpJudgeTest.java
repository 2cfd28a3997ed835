package dev.cdas.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The HTTP judge against a chat-completions server on 127.0.0.1 that answers normally, slowly,
 * with 429 or 500 before answering, with a malformed rating, with 401, and not at all; the
 * cache in front of it.
 */
class HttpJudgeTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private HttpServer server;
    private final Map<String, AtomicInteger> hits = new ConcurrentHashMap<>();
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final CountDownLatch release = new CountDownLatch(1);
    private final List<Long> slowStarts = new java.util.concurrent.CopyOnWriteArrayList<>();
    private volatile String lastAuthorization;
    private volatile JsonNode lastBody;

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "test-judge-server");
            t.setDaemon(true);
            return t;
        }));
        server.createContext("/", this::handle);
        server.start();
    }

    @AfterEach
    void stop() {
        release.countDown();
        server.stop(0);
    }

    private void handle(HttpExchange ex) throws IOException {
        String path = ex.getRequestURI().getPath();
        int n = hits.computeIfAbsent(path, p -> new AtomicInteger()).incrementAndGet();
        lastAuthorization = ex.getRequestHeaders().getFirst("Authorization");
        lastBody = JSON.readTree(ex.getRequestBody().readAllBytes());
        try {
            switch (path) {
                case "/ok" -> answer(ex, 200, "The reply mentions it.\nRating: 2");
                case "/malformed" -> answer(ex, 200, "I would say it is quite good, maybe a two.");
                case "/slow" -> {
                    slowStarts.add(System.nanoTime());
                    sleep(1500);
                    answer(ex, 200, "Rating: 1");
                }
                case "/never" -> {
                    release.await(30, TimeUnit.SECONDS);
                    answer(ex, 200, "Rating: 1");
                }
                case "/429" -> {
                    if (n == 1) {
                        ex.getResponseHeaders().add("Retry-After", "1");
                        raw(ex, 429, "slow down");
                    } else {
                        answer(ex, 200, "Rating: 0");
                    }
                }
                case "/500" -> {
                    if (n == 1) {
                        raw(ex, 500, "oops");
                    } else {
                        answer(ex, 200, "Rating: 1");
                    }
                }
                case "/401" -> raw(ex, 401, "{\"error\": \"invalid key\"}");
                case "/busy" -> {
                    int now = inFlight.incrementAndGet();
                    maxInFlight.accumulateAndGet(now, Math::max);
                    sleep(100);
                    inFlight.decrementAndGet();
                    answer(ex, 200, "Rating: 2");
                }
                default -> raw(ex, 404, "no such path");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException e) {
            // the client gave up (time limit): nothing to answer
        }
    }

    private static void sleep(long ms) throws InterruptedException {
        Thread.sleep(ms);
    }

    private static void answer(HttpExchange ex, int code, String content) throws IOException {
        var root = JSON.createObjectNode();
        root.putArray("choices").addObject().putObject("message").put("role", "assistant").put("content", content);
        raw(ex, code, root.toString());
    }

    private static void raw(HttpExchange ex, int code, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.sendResponseHeaders(code, b.length);
        ex.getResponseBody().write(b);
        ex.close();
    }

    private HttpJudge judge(String path, Duration timeout, int attempts, int concurrency) {
        URI url = URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
        return new HttpJudge(new HttpJudge.Settings(url, "test-model", "sk-secret-123", timeout, attempts, Duration.ofMillis(20),
                Duration.ofSeconds(5), concurrency, 32));
    }

    private int hits(String path) {
        AtomicInteger n = hits.get(path);
        return n == null ? 0 : n.get();
    }

    @Test
    void answersNormallyWithTheKeyInTheHeaderOnly() {
        HttpJudge j = judge("/ok", Duration.ofSeconds(5), 3, 2);
        List<Judge.Verdict> v = j.judge(List.of("Rate this: {x}"), null);
        assertTrue(v.getFirst().ok(), String.valueOf(v));
        assertEquals(OptionalInt.of(2), JudgeAxis.CONCEPT.parse(v.getFirst().text()));
        assertEquals("Bearer sk-secret-123", lastAuthorization);
        assertEquals("test-model", lastBody.get("model").asText());
        assertEquals("Rate this: {x}", lastBody.get("messages").get(0).get("content").asText());
        assertEquals(0, lastBody.get("temperature").asInt());
        assertFalse(j.id().contains("sk-secret"), j.id());
        assertFalse(new HttpJudge.Settings(URI.create("http://x/"), "m", "sk-secret-123", Duration.ofSeconds(1), 1,
                Duration.ZERO, Duration.ZERO, 1, 1).toString().contains("sk-secret"));
    }

    @Test
    void slowAnswerHitsTheTimeLimit() {
        judge("/ok", Duration.ofSeconds(5), 1, 1).judge(List.of("warm up"), null); // a cold HttpClient is slow to start
        long t0 = System.nanoTime();
        Judge.Verdict v = judge("/slow", Duration.ofMillis(300), 2, 1).judge(List.of("p"), null).getFirst();
        double s = (System.nanoTime() - t0) / 1e9;
        assertFalse(v.ok());
        assertNull(v.text());
        assertTrue(v.error().contains("no answer within 300 ms") && v.error().contains("after 2 attempts"), v.error());
        assertEquals(2, hits("/slow"));
        // the second attempt started while the server was still working on the first (1.5 s): the time limit cut it short
        double gap = (slowStarts.get(1) - slowStarts.get(0)) / 1e9;
        assertTrue(gap < 1.2, "the second attempt came " + gap + " s after the first");
        assertTrue(s < 2.9, "took " + s + " s, as long as waiting for both slow answers");
    }

    @Test
    void noAnswerAtAllHitsTheTimeLimit() {
        long t0 = System.nanoTime();
        Judge.Verdict v = judge("/never", Duration.ofMillis(200), 1, 1).judge(List.of("p"), null).getFirst();
        assertFalse(v.ok());
        assertTrue(v.error().contains("no answer within 200 ms"), v.error());
        assertTrue((System.nanoTime() - t0) / 1e9 < 5);
    }

    @Test
    void tooManyRequestsIsRetriedAfterRetryAfter() {
        long t0 = System.nanoTime();
        Judge.Verdict v = judge("/429", Duration.ofSeconds(5), 3, 1).judge(List.of("p"), null).getFirst();
        double s = (System.nanoTime() - t0) / 1e9;
        assertTrue(v.ok(), String.valueOf(v));
        assertEquals(OptionalInt.of(0), JudgeAxis.FLUENCY.parse(v.text()));
        assertEquals(2, hits("/429"));
        assertTrue(s >= 0.95, "Retry-After: 1 was not honoured (" + s + " s)");
    }

    @Test
    void serverErrorIsRetried() {
        Judge.Verdict v = judge("/500", Duration.ofSeconds(5), 3, 1).judge(List.of("p"), null).getFirst();
        assertTrue(v.ok(), String.valueOf(v));
        assertEquals(2, hits("/500"));
    }

    @Test
    void serverErrorAfterTheLastAttemptFails() {
        Judge.Verdict v = judge("/500", Duration.ofSeconds(5), 1, 1).judge(List.of("p"), null).getFirst();
        assertFalse(v.ok());
        assertTrue(v.error().startsWith("HTTP 500: oops"), v.error());
        assertEquals(1, hits("/500"));
    }

    @Test
    void refusedKeyStopsTheRun() {
        JudgeException e = assertThrows(JudgeException.class, () -> judge("/401", Duration.ofSeconds(5), 3, 1).judge(List.of("p"), null));
        assertTrue(e.getMessage().contains("HTTP 401"), e.getMessage());
        assertFalse(e.getMessage().contains("sk-secret"));
        assertEquals(1, hits("/401"));
    }

    @Test
    void malformedRatingIsCountedUnparseableNotZero() {
        Judge.Verdict v = judge("/malformed", Duration.ofSeconds(5), 1, 1).judge(List.of("p"), null).getFirst();
        assertTrue(v.ok());
        int r = JudgeAxis.CONCEPT.parse(v.text()).orElse(SteeringScores.UNPARSEABLE);
        assertEquals(SteeringScores.UNPARSEABLE, r);
        SteeringScores.Summary s = SteeringScores.summarise(1, List.of(new SteeringScores.ReplyRatings(r, 2, 2),
                new SteeringScores.ReplyRatings(2, 2, 2)));
        assertEquals(1, s.unparseable());
        assertEquals(1, s.scored());
        assertEquals(2.0, s.concept(), 0); // the unparseable rating is left out, not averaged in as 0
        assertEquals(2.0, s.harmonic(), 0);
    }

    @Test
    void concurrencyIsBounded() {
        List<String> prompts = List.of("a", "b", "c", "d", "e", "f", "g", "h");
        List<Judge.Verdict> v = judge("/busy", Duration.ofSeconds(5), 1, 3).judge(prompts, null);
        assertEquals(8, v.size());
        assertTrue(v.stream().allMatch(Judge.Verdict::ok));
        assertTrue(maxInFlight.get() <= 3, "max in flight " + maxInFlight.get());
        assertTrue(maxInFlight.get() >= 2, "requests were not concurrent: " + maxInFlight.get());
    }

    @Test
    void cacheAnswersARerunWithoutRequests(@TempDir Path dir) throws IOException {
        JudgeCache cache = new JudgeCache(dir.resolve("cache"));
        HttpJudge j = judge("/ok", Duration.ofSeconds(5), 1, 2);
        List<String> prompts = List.of("one", "two", "three");
        JudgeCache.Results first = cache.judgeAll(j, prompts, null);
        assertEquals(0, first.cached());
        assertEquals(3, hits("/ok"));
        JudgeCache.Results again = cache.judgeAll(judge("/ok", Duration.ofSeconds(5), 1, 2), prompts, null);
        assertEquals(3, again.cached());
        assertEquals(3, hits("/ok"), "the rerun sent requests");
        assertEquals(first.verdicts(), again.verdicts());
        // failures are not cached: they are asked again
        JudgeCache.Results failed = cache.judgeAll(judge("/never", Duration.ofMillis(100), 1, 1), List.of("x"), null);
        assertFalse(failed.verdicts().getFirst().ok());
        cache.judgeAll(judge("/never", Duration.ofMillis(100), 1, 1), List.of("x"), null);
        assertEquals(2, hits("/never"));
        assertFalse(new String(java.nio.file.Files.readAllBytes(java.nio.file.Files.walk(dir).filter(java.nio.file.Files::isRegularFile)
                .findFirst().orElseThrow()), StandardCharsets.UTF_8).contains("sk-secret"));
    }

    @Test
    void retryAfterAsDateAndBackoffDoubling() {
        HttpJudge j = judge("/ok", Duration.ofSeconds(5), 3, 1);
        assertEquals(Duration.ofMillis(20), j.pause(1, null));
        assertEquals(Duration.ofMillis(80), j.pause(3, null));
        assertEquals(Duration.ofSeconds(3), j.pause(1, "3"));
        assertEquals(Duration.ofSeconds(5), j.pause(1, "3600")); // capped at maxPause
        assertEquals(Duration.ZERO, j.pause(1, "Wed, 21 Oct 2015 07:28:00 GMT")); // in the past
        assertEquals(Duration.ofMillis(40), j.pause(2, "soon")); // not a form we know: our backoff
    }
}
