package dev.cdas.hostile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.io.InputFiles;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsFormatException;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.model.ChatTemplate;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.ModelConfig;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.model.Tokenizer;
import dev.cdas.train.AtomicFiles;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16's hostile files, at the library level: special files are refused by name (never opened,
 * so a FIFO cannot block and /dev/zero cannot fill the memory), outputs never replace anything but
 * a regular file, one vector reader with one set of rules, strict safetensors headers, bounded chat
 * templates. Every case must end in well under the time limits.
 */
public class HostileFilesTest {
    private static final Duration QUICK = Duration.ofSeconds(20);

    public static Path mkfifo(Path p) throws Exception {
        Process proc = new ProcessBuilder("mkfifo", p.toString()).inheritIO().start();
        assertEquals(0, proc.waitFor());
        return p;
    }

    private static String message(Throwable t) {
        return t.getMessage();
    }

    @Test
    void specialFilesAreRefusedByNameNotRead(@TempDir Path tmp) throws Exception {
        Path fifo = mkfifo(tmp.resolve("config.json"));
        assertTimeoutPreemptively(QUICK, () -> {
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> ModelConfig.load(tmp));
            assertTrue(message(e).startsWith(fifo + ": is a FIFO"), message(e));
            // /dev/zero as tokenizer.json: refused at once instead of an OutOfMemoryError after 30 s
            Path model = Files.createDirectories(tmp.resolve("m"));
            Files.createSymbolicLink(model.resolve("tokenizer.json"), Path.of("/dev/zero"));
            e = assertThrows(InvalidArgumentException.class, () -> Tokenizer.load(model));
            assertTrue(message(e).startsWith(model.resolve("tokenizer.json") + ": is a character device"), message(e));
            // a FIFO or folder as model.safetensors or as a vector: named, not "no model.safetensors in this folder"
            mkfifo(model.resolve("model.safetensors"));
            e = assertThrows(InvalidArgumentException.class, () -> dev.cdas.io.Checkpoint.open(model));
            assertTrue(message(e).startsWith(model.resolve("model.safetensors") + ": is a FIFO"), message(e));
            Path zeroModel = Files.createDirectories(tmp.resolve("zero-model"));
            Files.createSymbolicLink(zeroModel.resolve("model.safetensors"), Path.of("/dev/zero"));
            e = assertThrows(InvalidArgumentException.class, () -> dev.cdas.io.Checkpoint.open(zeroModel));
            assertTrue(message(e).startsWith(zeroModel.resolve("model.safetensors") + ": is a character device"), message(e));
            Path dirModel = Files.createDirectories(tmp.resolve("dir-model"));
            Files.createDirectories(dirModel.resolve("model.safetensors"));
            e = assertThrows(InvalidArgumentException.class, () -> dev.cdas.io.Checkpoint.open(dirModel));
            assertTrue(message(e).startsWith(dirModel.resolve("model.safetensors") + ": is a folder"), message(e));
            Path dirVector = Files.createDirectories(tmp.resolve("v.safetensors"));
            Path linked = Files.createSymbolicLink(tmp.resolve("link.safetensors"), dirVector);
            e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(linked));
            assertTrue(message(e).startsWith(linked + ": is a folder"), message(e));
            Path fifoVector = mkfifo(tmp.resolve("f.safetensors"));
            e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.readDirections(fifoVector));
            assertTrue(message(e).startsWith(fifoVector + ": is a FIFO"), message(e));
            // a data file that is a FIFO
            Path fifoData = mkfifo(tmp.resolve("pairs.jsonl"));
            e = assertThrows(InvalidArgumentException.class, () -> dev.cdas.data.PairReader.read(fifoData));
            assertTrue(message(e).startsWith(fifoData + ": is a FIFO"), message(e));
        });
    }

    @Test
    void textFilesAreBoundedAndStrictUtf8(@TempDir Path tmp) throws Exception {
        Path big = Files.write(tmp.resolve("big.json"), new byte[1000]);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> InputFiles.readString(big, 999));
        assertTrue(message(e).startsWith(big + ": is 1000 bytes, more than the limit of 999"), message(e));
        Path bad = Files.write(tmp.resolve("prompts.txt"), new byte[] {'h', 'i', (byte) 0xff, '\n'});
        e = assertThrows(InvalidArgumentException.class, () -> InputFiles.readString(bad));
        assertEquals(bad + ": is not valid UTF-8 text", message(e));
    }

    @Test
    void outputsReplaceOnlyRegularFiles(@TempDir Path tmp) throws Exception {
        Path fifo = mkfifo(tmp.resolve("out.safetensors"));
        Path dev = Files.createSymbolicLink(tmp.resolve("null.json"), Path.of("/dev/null"));
        Path dir = Files.createDirectories(tmp.resolve("dir.safetensors"));
        assertTimeoutPreemptively(QUICK, () -> {
            for (Path target : List.of(fifo, dir)) {
                InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                        () -> new SafetensorsWriter().add("w", new long[] {1}, new float[] {1}).write(target));
                assertTrue(message(e).startsWith(target + ": is "), message(e));
                assertTrue(message(e).contains("an output must be a regular file or a new path"), message(e));
            }
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                    () -> AtomicFiles.write(dev, new byte[] {1}));
            assertTrue(message(e).startsWith(dev + ": is a character device"), message(e));
        });
        assertTrue(Files.isSymbolicLink(dev) && Files.readSymbolicLink(dev).equals(Path.of("/dev/null")));
        assertTrue(Files.getAttribute(fifo, "unix:mode") instanceof Integer m && (m & 0170000) == 0010000, "still a FIFO");
        try (var s = Files.list(tmp)) {
            assertEquals(3, s.count(), "no temporary file left behind");
        }
        // regular files and new paths are still written
        Path ok = tmp.resolve("new.safetensors");
        new SafetensorsWriter().add("w", new long[] {1}, new float[] {1}).write(ok);
        new SafetensorsWriter().add("w", new long[] {1}, new float[] {1}).write(ok);
        assertTrue(Files.isRegularFile(ok));
    }

    private static Path vector(Path file, String name, long[] shape, float[] w, Map<String, String> meta) throws IOException {
        new SafetensorsWriter().metadata(meta).add(name, shape, w).write(file);
        return file;
    }

    private static final Map<String, String> META = Map.of("layer", "1", "factor_positive", "2.0", "factor_negative", "-1.0",
            "model", "m", "concept", "c", "method", "cdas");

    @Test
    void unusableDirectionsAreRefusedByTheOneReader(@TempDir Path tmp) throws Exception {
        float[] huge = new float[8];
        java.util.Arrays.fill(huge, 3e38f);
        Path h = vector(tmp.resolve("huge.safetensors"), "w", new long[] {8}, huge, META);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(h));
        assertTrue(message(e).startsWith(h + ": direction 0 has norm 8.485e+38; steering needs unit vectors"), message(e));
        Path z = vector(tmp.resolve("zero.safetensors"), "w", new long[] {8}, new float[8], META);
        e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.readDirections(z));
        assertEquals(z + ": direction 0 is zero; steering needs a unit vector", message(e));
        float[] nan = new float[8];
        nan[3] = Float.NaN;
        Path n = vector(tmp.resolve("nan.safetensors"), "w", new long[] {2, 4}, nan, META);
        e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(n));
        assertTrue(message(e).startsWith(n + ": direction 0 holds NaN at index 3"), message(e));
        // an I32 tensor: one line, not an UnsupportedOperationException
        Path i32 = tmp.resolve("i32.safetensors");
        new SafetensorsWriter().metadata(META).add("w", new long[] {2}, new int[] {1, 0}).write(i32);
        e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(i32));
        assertEquals(i32 + ": tensor w has dtype I32; directions must be F32, F64, F16 or BF16", message(e));
        // one rule for the tensor's name in every command: a lone tensor of any name is the direction
        float[] unit = new float[8];
        unit[2] = 1;
        Path lone = vector(tmp.resolve("lone.safetensors"), "weights", new long[] {8}, unit, META);
        SteeringVectorFile v = SteeringVectorFile.read(lone);
        assertEquals(1f, v.w()[2]);
        assertEquals("weights", SteeringVectorFile.readDirections(lone).tensorName());
        // factors that are not numbers: a one-line error naming the file
        Path badFactor = vector(tmp.resolve("f.safetensors"), "w", new long[] {8}, unit,
                Map.of("layer", "1", "factor_positive", "x", "factor_negative", "-1", "model", "m", "concept", "c", "method", "cdas"));
        e = assertThrows(InvalidArgumentException.class, () -> SteeringVectorFile.read(badFactor));
        assertTrue(message(e).startsWith(badFactor + ": metadata \"factor_positive\" = \"x\""), message(e));
    }

    @Test
    void bytesAfterTheHeaderJsonAreRefused(@TempDir Path tmp) throws Exception {
        for (String header : List.of("{}x", "{} {}", "{}\0")) {
            byte[] json = header.getBytes(StandardCharsets.UTF_8);
            ByteBuffer b = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
            b.putLong(json.length).put(json);
            Path f = Files.write(tmp.resolve("t.safetensors"), b.array());
            SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Safetensors.open(f).close());
            assertTrue(message(e).startsWith(f + ": header: malformed JSON"), message(e));
        }
        // trailing spaces (the writers' padding) stay allowed
        byte[] json = "{}      ".getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Safetensors.open(Files.write(tmp.resolve("ok.safetensors"), b.array())).close();
    }

    @Test
    void chatTemplateRenderingIsBounded() throws InterruptedException {
        Path file = Path.of("chat_template.jinja");
        List<ChatTemplate.Message> msgs = List.of(ChatTemplate.Message.user("hi"));
        assertTimeoutPreemptively(QUICK, () -> {
            // 50 characters 10^8 times: stopped at the output bound, not at 9.5 GB
            ChatTemplate big = ChatTemplate.of("{% for i in range(10000) %}{% for j in range(10000) %}"
                    + "{{ '01234567890123456789012345678901234567890123456789' }}{% endfor %}{% endfor %}", Map.of(), file);
            ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> big.render(msgs, true));
            assertTrue(message(e).startsWith(file + ": "), message(e));
        });
        String old = System.getProperty("cdas.chatTemplate.timeoutMs");
        System.setProperty("cdas.chatTemplate.timeoutMs", "1000");
        try {
            assertTimeoutPreemptively(QUICK, () -> {
                ChatTemplate loops = ChatTemplate.of("{% for i in range(10000) %}{% for j in range(10000) %}"
                        + "{% for k in range(10000) %}{% if k < 0 %}x{% endif %}{% endfor %}{% endfor %}{% endfor %}", Map.of(), file);
                ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> loops.render(msgs, true));
                assertTrue(message(e).contains("rendering took longer than 1000 ms"), message(e));
            });
            // the stopped rendering ends too, rather than looping on in its thread (10^12 steps here)
            long deadline = System.nanoTime() + 5_000_000_000L;
            while (renderingThreadsAlive() > 0 && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(0, renderingThreadsAlive(), "a rendering stopped by the time bound still runs 5 s later");
        } finally {
            if (old == null) {
                System.clearProperty("cdas.chatTemplate.timeoutMs");
            } else {
                System.setProperty("cdas.chatTemplate.timeoutMs", old);
            }
        }
        // an ordinary template still renders
        assertEquals("user: hi\n", assertTimeoutPreemptively(QUICK, () -> ChatTemplate.of(
                "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}", Map.of(), file).render(msgs, false)));
    }

    /** Threads still inside Jinjava (rendering threads wait for the next rendering outside it). */
    private static long renderingThreadsAlive() {
        return Thread.getAllStackTraces().entrySet().stream()
                .filter(e -> e.getKey().getName().equals("cdas-chat-template"))
                .filter(e -> Arrays.stream(e.getValue()).anyMatch(f -> f.getClassName().startsWith("com.hubspot.jinjava.")))
                .count();
    }

    @Test
    void threadCountsAreBounded() {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> dev.cdas.model.RuntimeOptions.defaults().withThreads(30000));
        assertTrue(message(e).startsWith("threads must be between 0 (the default) and "), message(e));
        assertEquals(4, dev.cdas.model.RuntimeOptions.defaults().withThreads(4).threads());
    }
}
