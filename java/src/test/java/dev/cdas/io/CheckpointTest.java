package dev.cdas.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointTest {
    @TempDir
    Path dir;

    private void twoShards() throws IOException {
        new SafetensorsWriter().add("a", new long[] {2}, new float[] {1, 2}).write(dir.resolve("s1.safetensors"));
        new SafetensorsWriter().add("b", new long[] {1}, new float[] {3}).add("extra", new long[] {1}, new float[] {0})
                .write(dir.resolve("s2.safetensors"));
    }

    private void index(String weightMap) throws IOException {
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE),
                "{\"metadata\": {\"total_size\": 12}, \"weight_map\": " + weightMap + "}");
    }

    private static void assertMentions(Exception e, Path file, String... parts) {
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "expected '" + p + "' in: " + e.getMessage());
        }
    }

    @Test
    void opensShardedCheckpoint() throws IOException {
        twoShards();
        index("{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}");
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertEquals(java.util.Set.of("a", "b"), c.names());
            assertEquals(2, c.files().size());
            assertArrayEquals(new float[] {3}, c.tensor("b").toFloatArray());
            assertEquals(dir.resolve("s2.safetensors").toAbsolutePath(), c.fileOf("b").toAbsolutePath());
            assertEquals("12", c.metadata().get("total_size"));
        }
    }

    @Test
    void opensSingleFileFolder() throws IOException {
        new SafetensorsWriter().add("w", new long[] {1}, new float[] {5}).write(dir.resolve("model.safetensors"));
        try (Checkpoint c = Checkpoint.open(dir)) {
            assertEquals(5f, c.tensor("w").getFloat(0));
        }
    }

    @Test
    void missingShardFile() throws IOException {
        twoShards();
        index("{\"a\": \"s1.safetensors\", \"b\": \"s3.safetensors\"}");
        Path idx = dir.resolve(Checkpoint.INDEX_FILE);
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertMentions(e, idx, "weight_map.b", "s3.safetensors", "missing");
    }

    @Test
    void indexNamesTensorTheShardLacks() throws IOException {
        twoShards();
        index("{\"a\": \"s1.safetensors\", \"c\": \"s2.safetensors\"}");
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertMentions(e, dir.resolve("s2.safetensors").toAbsolutePath(), "tensor c", Checkpoint.INDEX_FILE);
    }

    @Test
    void indexMayNotPointOutsideItsFolder() throws IOException {
        twoShards();
        index("{\"a\": \"../s1.safetensors\"}");
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertMentions(e, dir.resolve(Checkpoint.INDEX_FILE), "weight_map.a", "file name in the index's folder");
    }

    @Test
    void malformedIndex() throws IOException {
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), "{\"weight_map\": [}");
        assertMentions(assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir)),
                dir.resolve(Checkpoint.INDEX_FILE), "malformed JSON");
        Files.writeString(dir.resolve(Checkpoint.INDEX_FILE), "{\"metadata\": {}}");
        assertMentions(assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir)),
                dir.resolve(Checkpoint.INDEX_FILE), "weight_map", "missing");
    }

    /**
     * Jackson quotes the file in its messages: a duplicate field whose name holds a carriage return
     * (the fuzzer's shardedIndex crash-a2ae0765...) is written with an escape, on the message's one line.
     */
    @Test
    void jsonErrorQuotingLineBreaksStaysOnOneLine() throws IOException {
        Path idx = dir.resolve(Checkpoint.INDEX_FILE);
        Files.writeString(idx, "{\"weight_map\": {\"a\\r\\nb\": \"s1.safetensors\", \"a\\r\\nb\": \"s1.safetensors\"}}");
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertEquals(idx + ": malformed JSON: Duplicate field 'a\\r\\nb'", e.getMessage());
    }

    @Test
    void folderWithoutWeights() {
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertMentions(e, dir, "model.safetensors");
    }

    @Test
    void badShardIsReportedByItsOwnName() throws IOException {
        twoShards();
        Files.write(dir.resolve("s2.safetensors"), new byte[] {0, 0});
        index("{\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}");
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> Checkpoint.open(dir));
        assertTrue(e.getMessage().contains("s2.safetensors"), e.getMessage());
    }
}
