package dev.cdas.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.train.AtomicFiles;
import dev.cdas.train.ProgressListener;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Judgements on disk, one small JSON file per (judge, prompt) named by the SHA-256 of the judge's
 * {@link Judge#id} and the prompt, so a rerun asks the judge only what it has not answered yet.
 * Only answers are cached, not failures (those are asked again). Files are written whole (temp
 * file and rename); an unreadable one counts as missing.
 */
public final class JudgeCache {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;

    /**
     * A cache in {@code dir} (created when the first answer is written).
     *
     * @param dir the cache's folder
     */
    public JudgeCache(Path dir) {
        this.dir = dir;
    }

    /** {@return the cache's folder} */
    public Path dir() {
        return dir;
    }

    /**
     * The hex SHA-256 of the judge id and the prompt (length-prefixed, so no two pairs share a key).
     *
     * @param judgeId the judge's {@link Judge#id}
     * @param prompt  the prompt
     * @return 64 lower-case hex digits
     * @throws dev.cdas.InternalException when the JVM has no SHA-256
     */
    public static String key(String judgeId, String prompt) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            byte[] id = judgeId.getBytes(StandardCharsets.UTF_8);
            d.update((id.length + ":").getBytes(StandardCharsets.UTF_8));
            d.update(id);
            d.update(prompt.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new dev.cdas.InternalException("SHA-256 is not available: " + e.getMessage());
        }
    }

    private Path file(String key) {
        return dir.resolve(key.substring(0, 2)).resolve(key + ".json");
    }

    /**
     * The cached answer of {@code judgeId} to {@code prompt}, or null.
     *
     * @param judgeId the judge's {@link Judge#id}
     * @param prompt  the prompt
     * @return the answer's text, or null when none is cached (or its file is unreadable)
     */
    public String get(String judgeId, String prompt) {
        Path f = file(key(judgeId, prompt));
        if (!Files.isRegularFile(f)) {
            return null;
        }
        try {
            JsonNode n = JSON.readTree(Files.readString(f, StandardCharsets.UTF_8));
            JsonNode t = n == null ? null : n.get("text");
            return t != null && t.isTextual() ? t.asText() : null;
        } catch (IOException e) {
            return null;
        }
    }

    /**
     * Caches an answer, replacing any earlier one for the same judge and prompt.
     *
     * @param judgeId the judge's {@link Judge#id}
     * @param prompt  the prompt
     * @param text    the judge's answer
     * @throws IOException when the file cannot be written (the message names it)
     */
    public void put(String judgeId, String prompt, String text) throws IOException {
        ObjectNode n = JSON.createObjectNode();
        n.put("judge", judgeId);
        n.put("text", text);
        AtomicFiles.write(file(key(judgeId, prompt)), JSON.writeValueAsBytes(n));
    }

    /**
     * The outcome of {@link #judgeAll}: the verdicts in order and how many came from the cache.
     *
     * @param verdicts one verdict per prompt, in order
     * @param cached   how many came from the cache
     */
    public record Results(List<Judge.Verdict> verdicts, int cached) {}

    /**
     * Verdicts for {@code prompts}: cached answers as they are, the rest from {@code judge} (in one
     * call, so it can work on them concurrently), whose answers are then cached.
     *
     * @param judge    the judge for the answers not cached
     * @param prompts  the prompts
     * @param listener progress reports, or null
     * @return the verdicts, in prompt order, and the number from the cache
     * @throws IOException  when an answer cannot be cached
     * @throws JudgeException when the judge cannot work at all
     */
    public Results judgeAll(Judge judge, List<String> prompts, ProgressListener listener) throws IOException {
        return judgeAll(judge, prompts, 2, listener);
    }

    /**
     * As {@link #judgeAll(Judge, List, ProgressListener)}, for ratings from 0 to {@code maxRating}
     * (the judge's {@link Judge#id(int)} keys the cache, {@link Judge#judge(List, int, ProgressListener)} answers).
     *
     * @param judge     the judge for the answers not cached
     * @param prompts   the prompts
     * @param maxRating the highest rating (2 for the steering axes, 1 for refusal)
     * @param listener  progress reports, or null
     * @return the verdicts, in prompt order, and the number from the cache
     * @throws IOException    when an answer cannot be cached
     * @throws JudgeException when the judge cannot work at all
     */
    public Results judgeAll(Judge judge, List<String> prompts, int maxRating, ProgressListener listener) throws IOException {
        String id = judge.id(maxRating);
        List<Judge.Verdict> out = new ArrayList<>(prompts.size());
        List<Integer> missing = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            String t = get(id, prompts.get(i));
            out.add(t == null ? null : Judge.Verdict.of(t));
            if (t == null) {
                missing.add(i);
            }
        }
        if (!missing.isEmpty()) {
            List<String> ask = missing.stream().map(prompts::get).toList();
            List<Judge.Verdict> got = judge.judge(ask, maxRating, listener);
            for (int k = 0; k < missing.size(); k++) {
                Judge.Verdict v = got.get(k);
                out.set(missing.get(k), v);
                if (v.ok()) {
                    put(id, ask.get(k), v.text());
                }
            }
        }
        return new Results(out, prompts.size() - missing.size());
    }
}
