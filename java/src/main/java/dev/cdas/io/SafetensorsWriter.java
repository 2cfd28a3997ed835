package dev.cdas.io;

import dev.cdas.InvalidArgumentException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writes a safetensors file atomically: the tensors go to a temporary file in the target's folder,
 * which is flushed to disk and then renamed over the target, so a reader sees either the old file
 * or the complete new one, and a failure at any point leaves the target untouched and no temporary
 * file behind. The header is padded with spaces to a multiple of 8 bytes so that the data section
 * starts 8-aligned; tensors are laid out contiguously in the order they were added.
 *
 * <pre>{@code
 * new SafetensorsWriter()
 *     .metadata("layer", "10")
 *     .add("w", new long[] {2304}, wArray)
 *     .write(dir.resolve("vector.safetensors"));
 * }</pre>
 */
public final class SafetensorsWriter {

    /** Fills a tensor's bytes (little-endian) into {@code destination}, which is exactly its size. */
    @FunctionalInterface
    public interface Filler {
        /**
         * Writes the tensor's bytes.
         *
         * @param destination the tensor's place in the file's data section, exactly its size
         * @throws IOException when the bytes cannot be produced (the write then fails and the target stays as it was)
         */
        void fill(MemorySegment destination) throws IOException;
    }

    private record Pending(String name, StorageType dtype, long[] shape, long bytes, Filler filler) {}

    private final Map<String, Pending> tensors = new LinkedHashMap<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    /** An empty writer: no tensors, no metadata. */
    public SafetensorsWriter() {
    }

    /**
     * Adds one entry to the header's {@code __metadata__} (a later value for the same key replaces the earlier).
     *
     * @param key   the key, not empty
     * @param value the value, not null
     * @return this writer
     * @throws InvalidArgumentException when the key is null or empty
     * @throws NullPointerException     when the value is null
     */
    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(requireNonEmpty(key, "metadata key"), java.util.Objects.requireNonNull(value, "metadata value"));
        return this;
    }

    /**
     * Adds every entry of {@code entries} to the header's {@code __metadata__}, in its iteration order.
     *
     * @param entries the keys and values
     * @return this writer
     */
    public SafetensorsWriter metadata(Map<String, String> entries) {
        entries.forEach(this::metadata);
        return this;
    }

    /**
     * A tensor whose bytes {@code filler} writes at {@link #write} time.
     *
     * @param name   the tensor's name: not empty, not {@code __metadata__}, not added before
     * @param dtype  its element type
     * @param shape  its dimensions, none negative ({@code []} for a scalar)
     * @param filler writes its {@code elementCount x dtype.byteSize()} bytes
     * @return this writer
     * @throws InvalidArgumentException when the name is empty, reserved or taken, or a dimension is negative
     * @throws ArithmeticException      when the tensor's byte size overflows a long
     */
    public SafetensorsWriter add(String name, StorageType dtype, long[] shape, Filler filler) {
        requireNonEmpty(name, "tensor name");
        if (name.equals(Safetensors.METADATA_KEY)) {
            throw new InvalidArgumentException("\"" + Safetensors.METADATA_KEY + "\" is reserved and cannot name a tensor");
        }
        if (tensors.containsKey(name)) {
            throw new InvalidArgumentException("tensor " + name + " was already added");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new InvalidArgumentException("tensor " + name + ": negative dimension in " + Arrays.toString(shape));
            }
        }
        long bytes = Math.multiplyExact(Tensor.elementCount(shape), dtype.byteSize());
        tensors.put(name, new Pending(name, dtype, shape.clone(), bytes, filler));
        return this;
    }

    /**
     * Raw little-endian bytes of the given dtype (their size must match the shape).
     *
     * @param name  the tensor's name
     * @param dtype the element type of {@code data}
     * @param shape its dimensions
     * @param data  the bytes, copied at {@link #write} time (so they must stay valid until then)
     * @return this writer
     * @throws InvalidArgumentException when {@code data}'s size does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(String name, StorageType dtype, long[] shape, MemorySegment data) {
        long expected = Math.multiplyExact(Tensor.elementCount(shape), dtype.byteSize());
        if (data.byteSize() != expected) {
            throw new InvalidArgumentException("tensor " + name + ": " + data.byteSize() + " bytes given, shape "
                    + Arrays.toString(shape) + " of " + dtype + " needs " + expected);
        }
        return add(name, dtype, shape, dst -> dst.copyFrom(data));
    }

    /**
     * Adds a tensor read from a file, with its name, type, shape and bytes.
     *
     * @param t the tensor; its data must stay valid until {@link #write}
     * @return this writer
     * @throws InvalidArgumentException as {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(Tensor t) {
        return add(t.name(), t.dtype(), t.shape(), t.data());
    }

    /**
     * Adds an F32 tensor; {@code data} is copied now.
     *
     * @param name  the tensor's name
     * @param shape its dimensions, whose product is {@code data.length}
     * @param data  the values, row-major
     * @return this writer
     * @throws InvalidArgumentException when the element count does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(String name, long[] shape, float[] data) {
        checkCount(name, shape, data.length);
        float[] copy = data.clone();
        return add(name, StorageType.F32, shape, dst -> MemorySegment.copy(copy, 0, dst, Tensor.F32, 0, copy.length));
    }

    /**
     * Floats stored as bfloat16 (round to nearest even, NaN kept NaN).
     *
     * @param name  the tensor's name
     * @param shape its dimensions, whose product is {@code data.length}
     * @param data  the values, row-major; copied now
     * @return this writer
     * @throws InvalidArgumentException when the element count does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter addBf16(String name, long[] shape, float[] data) {
        checkCount(name, shape, data.length);
        float[] copy = data.clone();
        return add(name, StorageType.BF16, shape, dst -> {
            for (int i = 0; i < copy.length; i++) {
                dst.setAtIndex(Tensor.I16, i, toBf16(copy[i]));
            }
        });
    }

    /**
     * Adds an I32 tensor; {@code data} is copied now.
     *
     * @param name  the tensor's name
     * @param shape its dimensions, whose product is {@code data.length}
     * @param data  the values, row-major
     * @return this writer
     * @throws InvalidArgumentException when the element count does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(String name, long[] shape, int[] data) {
        checkCount(name, shape, data.length);
        int[] copy = data.clone();
        return add(name, StorageType.I32, shape, dst -> MemorySegment.copy(copy, 0, dst, Tensor.I32, 0, copy.length));
    }

    /**
     * Adds an I64 tensor; {@code data} is copied now.
     *
     * @param name  the tensor's name
     * @param shape its dimensions, whose product is {@code data.length}
     * @param data  the values, row-major
     * @return this writer
     * @throws InvalidArgumentException when the element count does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(String name, long[] shape, long[] data) {
        checkCount(name, shape, data.length);
        long[] copy = data.clone();
        return add(name, StorageType.I64, shape, dst -> MemorySegment.copy(copy, 0, dst, Tensor.I64, 0, copy.length));
    }

    /**
     * Adds an F64 tensor; {@code data} is copied now.
     *
     * @param name  the tensor's name
     * @param shape its dimensions, whose product is {@code data.length}
     * @param data  the values, row-major
     * @return this writer
     * @throws InvalidArgumentException when the element count does not match the shape, or as
     *         {@link #add(String, StorageType, long[], Filler)}
     */
    public SafetensorsWriter add(String name, long[] shape, double[] data) {
        checkCount(name, shape, data.length);
        double[] copy = data.clone();
        return add(name, StorageType.F64, shape, dst -> MemorySegment.copy(copy, 0, dst, Tensor.F64, 0, copy.length));
    }

    static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** The header this writer would produce (JSON, unpadded). */
    String headerJson() {
        ObjectNode root = Safetensors.JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(Safetensors.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Pending p : tensors.values()) {
            ObjectNode t = root.putObject(p.name);
            t.put("dtype", p.dtype.headerName());
            ArrayNode shape = t.putArray("shape");
            for (long d : p.shape) {
                shape.add(d);
            }
            ArrayNode off = t.putArray("data_offsets");
            off.add(offset);
            off.add(offset + p.bytes);
            offset += p.bytes;
        }
        try {
            return Safetensors.JSON.writeValueAsString(root);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static final long WRITE_CHUNK = 1L << 30; // bytes per write(2) call (a ByteBuffer holds < 2 GiB)

    /**
     * Writes everything added to {@code target}, atomically replacing any existing file.
     *
     * @param target the file to write; its folder must exist
     * @throws InvalidArgumentException when {@code target} exists and is not a regular file
     * @throws IOException              when the file cannot be written (a full disk, no permission, a
     *         filler's failure); the message names the file, and the target is left as it was
     */
    public void write(Path target) throws IOException {
        Path abs = target.toAbsolutePath();
        InputFiles.requireReplaceable(abs);
        Path dir = abs.getParent();
        byte[] json = headerJson().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        long dataLen = 0;
        for (Pending p : tensors.values()) {
            dataLen = Math.addExact(dataLen, p.bytes);
        }
        long total = 8 + padded + dataLen;
        Path tmp;
        try {
            tmp = OutputFiles.createTemp(dir, abs.getFileName().toString()); // the umask's permissions, not 0600
        } catch (IOException e) {
            throw OutputFiles.writeFailed(abs, e);
        }
        boolean done = false;
        try {
            // write(2), not a mapping: a full disk must fail the write, not fault (see OutputFiles.writeFully)
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment head = arena.allocate(8 + padded, 8);
                    head.set(Tensor.I64, 0, padded);
                    MemorySegment.copy(json, 0, head, ValueLayout.JAVA_BYTE, 8, json.length);
                    head.asSlice(8 + json.length, padded - json.length).fill((byte) ' ');
                    OutputFiles.writeFully(ch, head.asByteBuffer());
                }
                for (Pending p : tensors.values()) {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment data = arena.allocate(Math.max(1, p.bytes), 8).asSlice(0, p.bytes);
                        p.filler.fill(data);
                        for (long at = 0; at < p.bytes; at += WRITE_CHUNK) {
                            OutputFiles.writeFully(ch, data.asSlice(at, Math.min(WRITE_CHUNK, p.bytes - at)).asByteBuffer());
                        }
                    }
                }
                ch.force(true);
            }
            if (Files.size(tmp) != total) {
                throw new IOException("wrote " + Files.size(tmp) + " bytes, expected " + total);
            }
            try {
                Files.move(tmp, abs, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
            syncDirectory(dir);
        } catch (IOException e) {
            throw OutputFiles.writeFailed(abs, e);
        } finally {
            if (!done) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    /** Makes the rename durable; not every platform lets a directory be opened for this. */
    private static void syncDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // best effort (e.g. Windows); the data itself was forced before the rename
        }
    }

    private static void checkCount(String name, long[] shape, int length) {
        long n = Tensor.elementCount(shape);
        if (n != length) {
            throw new InvalidArgumentException("tensor " + name + ": " + length + " values given, shape "
                    + Arrays.toString(shape) + " needs " + n);
        }
    }

    private static String requireNonEmpty(String s, String what) {
        if (s == null || s.isEmpty()) {
            throw new InvalidArgumentException(what + " must not be empty");
        }
        return s;
    }

    List<String> names() {
        return new ArrayList<>(tensors.keySet());
    }
}
