package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.model.Fixtures;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code logits} end to end on the fixtures: what it writes, the clamp, --text/--chat, errors. */
class LogitsCommandTest {
    private record Run(int exit, String out, String err) {
    }

    private static Run run(String... args) {
        PrintStream savedOut = System.out;
        PrintStream savedErr = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        try (PrintStream o = new PrintStream(out, true, StandardCharsets.UTF_8);
             PrintStream e = new PrintStream(err, true, StandardCharsets.UTF_8)) {
            System.setOut(o);
            System.setErr(e);
            // one libtorch thread: tiny models on a loaded machine (see ModelTest)
            String[] all = Arrays.copyOf(args, args.length + 2);
            all[args.length] = "--threads";
            all[args.length + 1] = "1";
            int exit = Main.run(all);
            return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(savedOut);
            System.setErr(savedErr);
        }
    }

    @Test
    void writesTransformersLogitsAndHidden(@TempDir Path tmp) throws Exception {
        for (String family : Fixtures.FAMILIES) {
            Path dir = Fixtures.dir(family);
            Path out = tmp.resolve(family + ".safetensors");
            try (Safetensors ref = Safetensors.open(dir.resolve("reference.safetensors"))) {
                String ids = Arrays.stream(ref.tensor("input_ids").toLongArray()).mapToObj(Long::toString)
                        .collect(Collectors.joining(","));
                Run r = run("logits", "--model", dir.toString(), "--tokens", ids, "--out", out.toString(), "--layer", "1");
                assertEquals(0, r.exit(), r.out() + r.err());
                assertTrue(r.out().contains("wrote " + out), r.out());
                try (Safetensors got = Safetensors.open(out)) {
                    assertEquals("F32", got.tensor("logits").dtype().headerName());
                    assertEquals(12, got.tensor("logits").dim(0));
                    assertClose(ref.tensor("logits").toFloatArray(), got.tensor("logits").toFloatArray(), 1e-4, family + " logits");
                    assertClose(ref.tensor("hidden_states.2").toFloatArray(), got.tensor("hidden").toFloatArray(), 1e-4, family + " hidden");
                    assertEquals("1", got.metadata().get("layer"));
                }
            }
        }
    }

    @Test
    void clampsWithAVectorFile(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("gemma2");
        int d = 48;
        float[] w = new float[d];
        w[5] = 0.6f;
        w[17] = -0.8f;
        Path vector = tmp.resolve("v.safetensors");
        new SafetensorsWriter().metadata("layer", "1").add("direction", new long[] {d}, w).write(vector);
        Path out = tmp.resolve("out.safetensors");
        Run r = run("logits", "--model", dir.toString(), "--tokens", "2,5,9,11,40,7", "--out", out.toString(), "--vector",
                vector.toString(), "--factor", "3.5", "--prefix-len", "2");
        assertEquals(0, r.exit(), r.out() + r.err());
        try (Safetensors got = Safetensors.open(out)) {
            float[] h = got.tensor("hidden").toFloatArray();
            for (int t = 2; t < 6; t++) {
                double dot = 0;
                for (int i = 0; i < d; i++) {
                    dot += w[i] * h[t * d + i];
                }
                assertEquals(3.5, dot, 1e-4, "w.h at position " + t);
            }
            assertEquals("3.5", got.metadata().get("factor"));
            assertEquals("2", got.metadata().get("prefix_len"));
        }
    }

    @Test
    void tokenisesTextWithTheChatTemplate(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("llama");
        JsonNode expected = new ObjectMapper().readTree(Files.readString(dir.resolve("chat_expected.json")));
        JsonNode chat = expected.get("cases").get(0);
        Path out = tmp.resolve("chat.safetensors");
        Run r = run("logits", "--model", dir.toString(), "--text", chat.get("messages").get(0).get("content").asText(), "--chat",
                "--out", out.toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        try (Safetensors got = Safetensors.open(out)) {
            long[] ids = got.tensor("input_ids").toLongArray();
            long[] want = new long[chat.get("ids").size()];
            for (int i = 0; i < want.length; i++) {
                want[i] = chat.get("ids").get(i).asLong();
            }
            assertTrue(Arrays.equals(want, ids), Arrays.toString(ids) + " vs " + Arrays.toString(want));
            assertEquals(want.length, got.tensor("logits").dim(0));
        }
    }

    @Test
    void badInputIsOneLineNamingTheProblem(@TempDir Path tmp) {
        Path out = tmp.resolve("x.safetensors");
        String gpt2 = Fixtures.dir("gpt2").toString();
        Run r = run("logits", "--model", gpt2, "--tokens", "1,2,3", "--out", out.toString(), "--layer", "3");
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("hidden_layer = 3 is out of range"), r.err());
        r = run("logits", "--model", gpt2, "--tokens", "1,500", "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("input.tokens[0, 1] = 500 is outside the vocabulary [0, 101)"), r.err());
        r = run("logits", "--model", gpt2, "--text", "hello", "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("no tokenizer.json"), r.err());
        r = run("logits", "--model", tmp.toString(), "--tokens", "1", "--out", out.toString());
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("config.json"), r.err());
        assertTrue(Files.notExists(out), "nothing is written on failure");
    }

    /** --devices cpu:0,cpu:1: two CPU placement stages give the unsplit logits and hidden states to the bit. */
    @Test
    void layerSplitOverTwoCpuStagesEqualsTheUnsplitRun(@TempDir Path tmp) throws Exception {
        Path dir = Fixtures.dir("qwen2");
        Path whole = tmp.resolve("whole.safetensors");
        Path split = tmp.resolve("split.safetensors");
        Run a = run("logits", "--model", dir.toString(), "--tokens", "2,5,9,11,40,7", "--out", whole.toString(), "--layer", "1");
        assertEquals(0, a.exit(), a.out() + a.err());
        assertTrue(!a.err().contains("layer split"), a.err());
        Run b = run("logits", "--model", dir.toString(), "--tokens", "2,5,9,11,40,7", "--out", split.toString(), "--layer", "1",
                "--devices", "cpu:0,cpu:1");
        assertEquals(0, b.exit(), b.out() + b.err());
        assertEquals(1, b.err().split("layer split: blocks 0-1 on cpu:0, 2 on cpu:1", -1).length - 1, b.err());
        try (Safetensors x = Safetensors.open(whole); Safetensors y = Safetensors.open(split)) {
            assertTrue(Arrays.equals(x.tensor("logits").toFloatArray(), y.tensor("logits").toFloatArray()), "logits");
            assertTrue(Arrays.equals(x.tensor("hidden").toFloatArray(), y.tensor("hidden").toFloatArray()), "hidden");
            assertEquals("cpu:0,cpu:1", y.metadata().get("device"));
        }
        Run bad = run("logits", "--model", dir.toString(), "--tokens", "2,5", "--out", split.toString(), "--devices", "cpu:0,gpu:1");
        assertEquals(2, bad.exit());
        assertTrue(bad.err().contains("--devices") && bad.err().contains("gpu:1") && bad.err().strip().lines().count() == 1, bad.err());
        Run tooMany = run("logits", "--model", dir.toString(), "--tokens", "2,5", "--out", split.toString(), "--devices",
                "cpu:0,cpu:1,cpu:2,cpu:3");
        assertEquals(2, tooMany.exit());
        assertTrue(tooMany.err().contains("more devices than the model's 3 blocks"), tooMany.err());
        // --device cpu is the default, but given with --devices it is refused like any other --device
        Run both = run("logits", "--model", dir.toString(), "--tokens", "2,5", "--out", split.toString(), "--device", "cpu",
                "--devices", "cpu:0,cpu:1");
        assertEquals(2, both.exit());
        assertTrue(both.err().contains("give --device or --devices, not both") && both.err().strip().lines().count() == 1,
                both.err());
    }

    static void assertClose(float[] want, float[] got, double tol, String what) {
        assertEquals(want.length, got.length, what);
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            worst = Math.max(worst, Math.abs(want[i] - got[i]));
        }
        assertTrue(worst <= tol, what + " differ by " + worst);
    }
}
