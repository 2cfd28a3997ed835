package dev.cdas.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir
    Path dir;

    /** A file with the given raw header and data bytes (header not padded, as a hostile writer might). */
    private Path raw(String name, String header, int dataBytes) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        Path p = dir.resolve(name);
        Files.write(p, b.array());
        return p;
    }

    private SafetensorsFormatException bad(Path p) {
        return assertThrows(SafetensorsFormatException.class, () -> Safetensors.open(p).close());
    }

    private static void assertNames(SafetensorsFormatException e, Path file, String... parts) {
        String m = e.getMessage();
        assertTrue(m.startsWith(file.toString()), "message should start with the file: " + m);
        for (String part : parts) {
            assertTrue(m.contains(part), "message should mention '" + part + "': " + m);
        }
        assertEquals(file, e.file());
    }

    @Test
    void readsHandWrittenFile() throws IOException {
        Path p = raw("ok.safetensors",
                "{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                        + "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 16);
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).putInt(7).putInt(-9);
        byte[] all = Files.readAllBytes(p);
        System.arraycopy(data.array(), 0, all, all.length - 16, 16);
        Files.write(p, all);
        try (Safetensors st = Safetensors.open(p)) {
            assertEquals(Map.of("format", "pt"), st.metadata());
            assertEquals(java.util.List.of("b", "a"), java.util.List.copyOf(st.names()));
            Tensor a = st.tensor("a");
            assertEquals(StorageType.F32, a.dtype());
            assertArrayEquals(new long[] {2}, a.shape());
            assertArrayEquals(new float[] {1.5f, -2f}, a.toFloatArray());
            assertArrayEquals(new long[] {7, -9}, st.tensor("b").toLongArray());
            assertTrue(a.data().isReadOnly());
            SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> st.tensor("zz"));
            assertNames(e, p, "zz");
        }
    }

    @Test
    void tensorsAreViewsOfTheMappingAndDieWithTheArena() throws IOException {
        Path p = dir.resolve("v.safetensors");
        new SafetensorsWriter().add("x", new long[] {3}, new float[] {1, 2, 3}).write(p);
        Tensor t;
        try (Arena arena = Arena.ofConfined()) {
            Safetensors st = Safetensors.open(p, arena);
            t = st.tensor("x");
            assertTrue(t.data().isMapped(), "no copy: the tensor is a slice of the mapped file");
            assertEquals(st.dataStart(), t.data().address() - st.mapping().address());
            assertEquals(2f, t.getFloat(1));
        }
        assertThrows(IllegalStateException.class, () -> t.getFloat(0));
    }

    @Test
    void fileShorterThanEightBytes() throws IOException {
        Path p = dir.resolve("short.safetensors");
        Files.write(p, new byte[] {1, 2, 3});
        assertNames(bad(p), p, "header length", "3 bytes");
    }

    @Test
    void emptyFile() throws IOException {
        Path p = dir.resolve("empty.safetensors");
        Files.write(p, new byte[0]);
        assertNames(bad(p), p, "header length");
    }

    @Test
    void headerLongerThanFile() throws IOException {
        Path p = dir.resolve("trunc.safetensors");
        new SafetensorsWriter().add("x", new long[] {4}, new float[4]).write(p);
        byte[] all = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(all, 20)); // cut inside the header
        assertNames(bad(p), p, "header length", "past the end");
    }

    @Test
    void absurdHeaderLength() throws IOException {
        Path p = dir.resolve("huge.safetensors");
        ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40);
        Files.write(p, b.array());
        assertNames(bad(p), p, "header length", "exceeds the limit");
        ByteBuffer neg = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        Files.write(p, neg.array());
        assertNames(bad(p), p, "header length", "18446744073709551615");
    }

    @Test
    void truncatedData() throws IOException {
        Path p = dir.resolve("cut.safetensors");
        new SafetensorsWriter().add("weight", new long[] {4, 4}, new float[16]).write(p);
        byte[] all = Files.readAllBytes(p);
        Files.write(p, Arrays.copyOf(all, all.length - 4));
        assertNames(bad(p), p, "tensor weight", "data_offsets", "outside the data section");
    }

    @Test
    void malformedJson() throws IOException {
        Path p = raw("json.safetensors", "{\"a\": {\"dtype\": \"F32\",", 0);
        assertNames(bad(p), p, "header", "malformed JSON");
        Path q = raw("notjson.safetensors", "PK\u0003\u0004 not json", 0);
        assertNames(bad(q), q, "header");
        Path dup = raw("dup.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4);
        assertNames(bad(dup), dup, "malformed JSON", "a");
    }

    @Test
    void unknownDtype() throws IOException {
        Path p = raw("dt.safetensors", "{\"w\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
        assertNames(bad(p), p, "tensor w", "dtype", "F7");
    }

    @Test
    void shapeDoesNotMatchOffsets() throws IOException {
        Path p = raw("lie.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 24);
        assertNames(bad(p), p, "tensor w", "data_offsets", "20 bytes", "needs 24");
    }

    @Test
    void offsetsOutOfDataSection() throws IOException {
        Path p = raw("out.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}", 16);
        assertNames(bad(p), p, "tensor w", "outside the data section");
        Path q = raw("rev.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 16);
        assertNames(bad(q), q, "tensor w", "before begin");
        Path r = raw("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[-8,0]}}", 16);
        assertNames(bad(r), r, "tensor w", "data_offsets");
    }

    @Test
    void overlappingTensors() throws IOException {
        Path p = raw("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
        assertNames(bad(p), p, "tensor b", "overlaps tensor a");
    }

    @Test
    void negativeOrNonIntegerDims() throws IOException {
        Path p = raw("negdim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,0]}}", 0);
        assertNames(bad(p), p, "tensor w", "shape", "negative");
        Path q = raw("float.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4);
        assertNames(bad(q), q, "tensor w", "shape");
        Path o = raw("ovf.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,4]}}", 4);
        assertNames(bad(o), o, "tensor w", "shape", "overflows");
    }

    @Test
    void missingFieldsAndBadMetadata() throws IOException {
        Path p = raw("nodt.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
        assertNames(bad(p), p, "tensor w", "dtype", "missing");
        Path q = raw("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4);
        assertNames(bad(q), q, "tensor w", "shape", "missing");
        Path r = raw("nooff.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4);
        assertNames(bad(r), r, "tensor w", "data_offsets", "missing");
        Path m = raw("meta.safetensors", "{\"__metadata__\":{\"n\":3}}", 0);
        assertNames(bad(m), m, "__metadata__.n", "string");
        Path arr = raw("arr.safetensors", "[1,2]", 0);
        assertNames(bad(arr), arr, "header");
    }

    @Test
    void emptyAndScalarTensorsAreFine() throws IOException {
        Path p = raw("edge.safetensors", "{\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
                + "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}   ", 4);
        try (Safetensors st = Safetensors.open(p)) {
            assertEquals(0, st.tensor("e").elementCount());
            assertEquals(1, st.tensor("s").elementCount());
        }
    }

    @Test
    void missingFile() {
        Path p = dir.resolve("nope.safetensors");
        SafetensorsFormatException e = bad(p);
        assertNames(e, p, "not found");
        assertFalse(Files.exists(p));
    }
}
