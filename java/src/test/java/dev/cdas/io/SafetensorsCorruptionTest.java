package dev.cdas.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Whatever happens to the bytes, opening either succeeds with in-bounds tensors or fails with the typed error. */
class SafetensorsCorruptionTest {
    @TempDir
    Path dir;

    @Test
    void randomHeaderDamageNeverEscapesAsAnUntypedError() throws IOException {
        Path good = dir.resolve("good.safetensors");
        new SafetensorsWriter().metadata("k", "v")
                .add("a", new long[] {3, 4}, new float[12])
                .add("b", new long[] {5}, new long[5])
                .addBf16("c", new long[] {2, 3}, new float[6])
                .write(good);
        byte[] original = Files.readAllBytes(good);
        long headerEnd;
        try (Safetensors st = Safetensors.open(good)) {
            headerEnd = st.dataStart();
        }
        Random r = new Random(2024);
        Path p = dir.resolve("bad.safetensors");
        int typed = 0;
        for (int trial = 0; trial < 600; trial++) {
            byte[] b = original.clone();
            int kind = trial % 3;
            if (kind == 0) { // flip a few header bytes to digits / punctuation
                for (int k = 0; k < 1 + r.nextInt(3); k++) {
                    int at = 8 + r.nextInt((int) headerEnd - 8);
                    b[at] = (byte) "0123456789[]{},:\"-9 ".charAt(r.nextInt(20));
                }
            } else if (kind == 1) { // truncate anywhere
                b = Arrays.copyOf(b, r.nextInt(b.length));
            } else { // scribble on the length prefix
                b[r.nextInt(8)] = (byte) r.nextInt(256);
            }
            Files.write(p, b);
            try (Safetensors st = Safetensors.open(p)) {
                for (Tensor t : st.tensors().values()) {
                    assertEquals(Tensor.elementCount(t.shape()) * t.dtype().byteSize(), t.byteSize());
                    if (t.byteSize() > 0) {
                        t.data().get(ValueLayout.JAVA_BYTE, t.byteSize() - 1); // in bounds
                    }
                }
            } catch (SafetensorsFormatException e) {
                assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
                typed++;
            } catch (RuntimeException e) {
                fail("trial " + trial + ": untyped " + e, e);
            }
        }
        assertTrue(typed > 300, "most damage is detected: " + typed);
    }

    @Test
    void readsF16() throws IOException {
        Path p = dir.resolve("f16.safetensors");
        float[] values = {1f, -0.5f, 65504f, 0f};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(8);
            for (int i = 0; i < values.length; i++) {
                s.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i, Float.floatToFloat16(values[i]));
            }
            new SafetensorsWriter().add("h", StorageType.F16, new long[] {4}, s).write(p);
        }
        try (Safetensors st = Safetensors.open(p)) {
            assertArrayEquals(values, st.tensor("h").toFloatArray());
        }
    }
}
