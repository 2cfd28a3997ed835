package dev.cdas.io;

import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {
    @TempDir
    Path dir;

    private List<Path> listing() throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.sorted().toList();
        }
    }

    @Test
    void roundTripsEveryKindOfTensorAndMetadata() throws IOException {
        Random r = new Random(7);
        float[] f = new float[3 * 5];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) r.nextGaussian();
        }
        double[] d = {Math.PI, -0.0, Double.MAX_VALUE};
        int[] ints = {1, -2, Integer.MAX_VALUE};
        long[] longs = {Long.MIN_VALUE, 0, 42};
        float[] bf = {1f, -2.5f, 3.140625f, 0f};
        Path p = dir.resolve("rt.safetensors");
        new SafetensorsWriter()
                .metadata("format", "pt").metadata(Map.of("note", "ünïcödé \"quoted\""))
                .add("f32", new long[] {3, 5}, f)
                .add("f64", new long[] {3}, d)
                .add("i32", new long[] {3}, ints)
                .add("i64", new long[] {1, 3}, longs)
                .addBf16("bf16", new long[] {2, 2}, bf)
                .add("scalar", new long[] {}, new float[] {9f})
                .add("empty", new long[] {0, 7}, new float[0])
                .write(p);
        byte[] all = Files.readAllBytes(p);
        long headerLen = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, headerLen % 8, "header padded to 8 bytes");
        String header = new String(all, 8, (int) headerLen, java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(header.stripTrailing().endsWith("}") && header.substring(header.lastIndexOf('}') + 1).isBlank(),
                "padding is spaces after the JSON: [" + header + "]");
        try (Safetensors st = Safetensors.open(p)) {
            assertEquals(Map.of("format", "pt", "note", "ünïcödé \"quoted\""), st.metadata());
            assertEquals(List.of("f32", "f64", "i32", "i64", "bf16", "scalar", "empty"), List.copyOf(st.names()));
            assertArrayEquals(f, st.tensor("f32").toFloatArray());
            assertArrayEquals(new long[] {3, 5}, st.tensor("f32").shape());
            assertEquals(StorageType.F64, st.tensor("f64").dtype());
            assertEquals((float) Math.PI, st.tensor("f64").getFloat(0));
            assertArrayEquals(new long[] {1, -2, Integer.MAX_VALUE}, st.tensor("i32").toLongArray());
            assertArrayEquals(longs, st.tensor("i64").toLongArray());
            assertEquals(StorageType.BF16, st.tensor("bf16").dtype());
            assertArrayEquals(bf, st.tensor("bf16").toFloatArray(), "these values are exact in bf16");
            assertEquals(9f, st.tensor("scalar").getFloat(0));
            assertEquals(0, st.tensor("empty").byteSize());
            assertEquals(0, st.dataStart() % 8);
        }
        assertEquals(List.of(p), listing(), "no temporary file left");
    }

    @Test
    void copiesTensorsFromAnotherFile() throws IOException {
        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        new SafetensorsWriter().add("x", new long[] {2}, new float[] {4, 5}).write(a);
        try (Safetensors st = Safetensors.open(a)) {
            new SafetensorsWriter().add(st.tensor("x")).write(b);
        }
        try (Safetensors st = Safetensors.open(b)) {
            assertArrayEquals(new float[] {4, 5}, st.tensor("x").toFloatArray());
        }
    }

    @Test
    void bf16RoundsToNearestEven() {
        assertEquals((short) 0x3f80, SafetensorsWriter.toBf16(1.0f));
        assertEquals((short) 0x3f80, SafetensorsWriter.toBf16(Float.intBitsToFloat(0x3f808000))); // tie -> even
        assertEquals((short) 0x3f82, SafetensorsWriter.toBf16(Float.intBitsToFloat(0x3f818000))); // tie -> even (up)
        assertTrue(Float.isNaN(Float.intBitsToFloat(SafetensorsWriter.toBf16(Float.NaN) << 16)));
    }

    @Test
    void failingWriterLeavesNoFile() throws IOException {
        Path p = dir.resolve("never.safetensors");
        SafetensorsWriter w = new SafetensorsWriter()
                .add("ok", new long[] {2}, new float[] {1, 2})
                .add("boom", StorageType.F32, new long[] {1024}, dst -> {
                    throw new IOException("source went away");
                });
        IOException e = assertThrows(IOException.class, () -> w.write(p));
        assertEquals("cannot write " + p.toAbsolutePath() + ": source went away (the previous file, if any, is unchanged)",
                e.getMessage());
        assertEquals(List.of(), listing(), "neither the target nor a temporary file exists");
    }

    @Test
    void failureLeavesExistingFileUntouched() throws IOException {
        Path p = dir.resolve("keep.safetensors");
        new SafetensorsWriter().metadata("v", "1").add("x", new long[] {1}, new float[] {1}).write(p);
        byte[] before = Files.readAllBytes(p);
        SafetensorsWriter w = new SafetensorsWriter().metadata("v", "2")
                .add("x", StorageType.F32, new long[] {1}, dst -> {
                    throw new UncheckedIOException(new IOException("disk on fire"));
                });
        assertThrows(UncheckedIOException.class, () -> w.write(p));
        assertArrayEquals(before, Files.readAllBytes(p));
        assertEquals(List.of(p), listing());
        // and a successful write replaces it
        new SafetensorsWriter().metadata("v", "3").add("x", new long[] {1}, new float[] {3}).write(p);
        try (Safetensors st = Safetensors.open(p)) {
            assertEquals("3", st.metadata().get("v"));
        }
    }

    @Test
    void missingFolderFailsWithoutCreatingAnything() {
        Path p = dir.resolve("no/such/dir/x.safetensors");
        IOException e = assertThrows(IOException.class,
                () -> new SafetensorsWriter().add("x", new long[] {1}, new float[] {1}).write(p));
        assertEquals("cannot write " + p.toAbsolutePath() + ": the folder " + p.toAbsolutePath().getParent()
                + " does not exist (the previous file, if any, is unchanged)", e.getMessage());
        assertFalse(Files.exists(dir.resolve("no")));
    }

    @Test
    void rejectsInconsistentInput() {
        SafetensorsWriter w = new SafetensorsWriter().add("x", new long[] {1}, new float[] {1});
        assertThrows(InvalidArgumentException.class, () -> w.add("x", new long[] {1}, new float[] {1}));
        assertThrows(InvalidArgumentException.class, () -> w.add("y", new long[] {2}, new float[] {1}));
        assertThrows(InvalidArgumentException.class, () -> w.add("__metadata__", new long[] {1}, new float[] {1}));
        assertThrows(InvalidArgumentException.class, () -> w.add("z", new long[] {-1}, new float[] {}));
        assertThrows(InvalidArgumentException.class, () -> w.add("", new long[] {1}, new float[] {1}));
    }

    @Test
    void emptyFileIsValid() throws IOException {
        Path p = dir.resolve("nothing.safetensors");
        new SafetensorsWriter().write(p);
        try (Safetensors st = Safetensors.open(p)) {
            assertTrue(st.names().isEmpty());
            assertEquals(16, Files.size(p));
        }
    }
}
