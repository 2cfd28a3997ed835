package dev.cdas.io;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One memory-mapped safetensors file: an 8-byte little-endian header length N, N bytes of JSON
 * header ({@code name -> {dtype, shape, data_offsets}} plus optional string {@code __metadata__}),
 * then the data section. The file is mapped read-only into an {@link Arena}; tensors are slices of
 * that mapping, never copies. Everything in the header is validated on open, so a tensor handed
 * out always lies inside the file and matches its dtype and shape.
 *
 * <p>Closing releases the mapping when this object created the arena; with a caller's arena the
 * mapping lives as long as that arena.
 */
public final class Safetensors implements AutoCloseable {
    /** Headers beyond this are refused (real checkpoints have headers of a few hundred KB). */
    public static final long MAX_HEADER_BYTES = 100L * 1024 * 1024;

    static final String METADATA_KEY = "__metadata__";
    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    private final Path file;
    private final Arena arena;
    private final boolean ownsArena;
    private final MemorySegment mapping;
    private final long dataStart;
    private final Map<String, Tensor> tensors;
    private final Map<String, String> metadata;
    private final BasicFileAttributes opened;

    private Safetensors(Path file, Arena arena, boolean ownsArena, MemorySegment mapping, long dataStart,
            Map<String, Tensor> tensors, Map<String, String> metadata, BasicFileAttributes opened) {
        this.opened = opened;
        this.file = file;
        this.arena = arena;
        this.ownsArena = ownsArena;
        this.mapping = mapping;
        this.dataStart = dataStart;
        this.tensors = tensors;
        this.metadata = metadata;
    }

    /**
     * Maps {@code file} into a new shared arena that {@link #close()} releases.
     *
     * @param file the .safetensors file
     * @return the open file; close it to unmap
     * @throws SafetensorsFormatException when the file is missing, not a regular file, or breaks the
     *         format (header length, JSON, dtypes, shapes, offsets)
     * @throws IOException                when it cannot be read or mapped
     */
    public static Safetensors open(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            return open(file, arena, true);
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * Maps {@code file} into the caller's arena; the tensors stay valid until that arena closes.
     *
     * @param file  the .safetensors file
     * @param arena the arena that owns the mapping (closing this object then leaves it open)
     * @return the open file
     * @throws SafetensorsFormatException when the file is missing, not a regular file, or breaks the format
     * @throws IOException                when it cannot be read or mapped
     */
    public static Safetensors open(Path file, Arena arena) throws IOException {
        return open(file, arena, false);
    }

    private static Safetensors open(Path file, Arena arena, boolean ownsArena) throws IOException {
        MemorySegment mapping;
        try {
            InputFiles.requireRegularFile(file);
        } catch (NoSuchFileException e) {
            throw new SafetensorsFormatException(file, null, "file not found", e);
        }
        BasicFileAttributes opened;
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            opened = Files.readAttributes(file, BasicFileAttributes.class);
            long size = ch.size();
            if (size < 8) {
                throw new SafetensorsFormatException(file, "header length",
                        "file is " + size + " bytes, shorter than the 8-byte header length (truncated or not a safetensors file)");
            }
            mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        } catch (NoSuchFileException e) {
            throw new SafetensorsFormatException(file, null, "file not found", e);
        }
        long size = mapping.byteSize();
        long headerLen = mapping.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLen < 0 || headerLen > MAX_HEADER_BYTES) {
            throw new SafetensorsFormatException(file, "header length",
                    Long.toUnsignedString(headerLen) + " bytes exceeds the limit of " + MAX_HEADER_BYTES
                            + " (corrupt, or not a safetensors file)");
        }
        if (headerLen > size - 8) {
            throw new SafetensorsFormatException(file, "header length",
                    headerLen + " bytes runs past the end of the file (" + size + " bytes; truncated?)");
        }
        if (headerLen < 2) {
            throw new SafetensorsFormatException(file, "header", "is " + headerLen + " bytes, too short for a JSON object");
        }
        byte[] headerBytes = mapping.asSlice(8, headerLen).toArray(ValueLayout.JAVA_BYTE);
        String header;
        try {
            header = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsFormatException(file, "header", "is not valid UTF-8", e);
        }
        if (!header.startsWith("{")) {
            throw new SafetensorsFormatException(file, "header", "does not start with '{' (not a safetensors file?)");
        }
        JsonNode root;
        try {
            // As strict as Python's safetensors (serde_json): trailing whitespace (the padding) only.
            root = JSON.readerFor(JsonNode.class).with(com.fasterxml.jackson.databind.DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
                    .readValue(header);
        } catch (JsonProcessingException e) {
            throw new SafetensorsFormatException(file, "header", "malformed JSON: " + InputFiles.jsonError(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsFormatException(file, "header", "is not a JSON object");
        }
        long dataStart = 8 + headerLen;
        long dataLen = size - dataStart;
        Map<String, String> metadata = Map.of();
        List<Entry> entries = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals(METADATA_KEY)) {
                metadata = parseMetadata(file, e.getValue());
            } else {
                entries.add(parseEntry(file, e.getKey(), e.getValue(), dataLen));
            }
        }
        // Overlap check over the byte ranges (empty tensors occupy nothing).
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
        Entry prev = null;
        for (Entry e : sorted) {
            if (e.begin == e.end) {
                continue;
            }
            if (prev != null && e.begin < prev.end) {
                throw new SafetensorsFormatException(file, "tensor " + e.name + ": data_offsets",
                        "[" + e.begin + ", " + e.end + ") overlaps tensor " + prev.name + " [" + prev.begin + ", " + prev.end + ")");
            }
            prev = e;
        }
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (Entry e : entries) {
            MemorySegment slice = mapping.asSlice(dataStart + e.begin, e.end - e.begin).asReadOnly();
            tensors.put(e.name, new Tensor(e.name, e.dtype, e.shape, slice));
        }
        return new Safetensors(file, arena, ownsArena, mapping, dataStart, Collections.unmodifiableMap(tensors), metadata, opened);
    }

    private record Entry(String name, StorageType dtype, long[] shape, long begin, long end) {}

    private static Map<String, String> parseMetadata(Path file, JsonNode node) throws SafetensorsFormatException {
        if (node.isNull()) {
            return Map.of();
        }
        if (!node.isObject()) {
            throw new SafetensorsFormatException(file, METADATA_KEY, "must be an object of strings, got " + node.getNodeType());
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : node.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafetensorsFormatException(file, METADATA_KEY + "." + e.getKey(),
                        "must be a string, got " + e.getValue().getNodeType());
            }
            out.put(e.getKey(), e.getValue().textValue());
        }
        return Collections.unmodifiableMap(out);
    }

    private static Entry parseEntry(Path file, String name, JsonNode node, long dataLen) throws SafetensorsFormatException {
        String where = "tensor " + name;
        if (!node.isObject()) {
            throw new SafetensorsFormatException(file, where, "must be an object with dtype, shape and data_offsets");
        }
        JsonNode dt = node.get("dtype");
        if (dt == null || !dt.isTextual()) {
            throw new SafetensorsFormatException(file, where + ": dtype", dt == null ? "missing" : "must be a string");
        }
        StorageType dtype = StorageType.fromHeaderName(dt.textValue()).orElseThrow(() -> new SafetensorsFormatException(file,
                where + ": dtype", "unknown dtype \"" + dt.textValue() + "\" (known: " + java.util.Arrays.toString(StorageType.values()) + ")"));
        JsonNode sh = node.get("shape");
        if (sh == null || !sh.isArray()) {
            throw new SafetensorsFormatException(file, where + ": shape", sh == null ? "missing" : "must be an array of integers");
        }
        long[] shape = new long[sh.size()];
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = sh.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong()) {
                throw new SafetensorsFormatException(file, where + ": shape", "dimension " + i + " is not an integer: " + d);
            }
            shape[i] = d.longValue();
            if (shape[i] < 0) {
                throw new SafetensorsFormatException(file, where + ": shape", "dimension " + i + " is negative: " + shape[i]);
            }
        }
        JsonNode off = node.get("data_offsets");
        if (off == null || !off.isArray() || off.size() != 2) {
            throw new SafetensorsFormatException(file, where + ": data_offsets",
                    off == null ? "missing" : "must be an array [begin, end]");
        }
        for (int i = 0; i < 2; i++) {
            if (!off.get(i).isIntegralNumber() || !off.get(i).canConvertToLong() || off.get(i).longValue() < 0) {
                throw new SafetensorsFormatException(file, where + ": data_offsets", "must be non-negative integers, got " + off);
            }
        }
        long begin = off.get(0).longValue();
        long end = off.get(1).longValue();
        if (end < begin) {
            throw new SafetensorsFormatException(file, where + ": data_offsets", "end " + end + " is before begin " + begin);
        }
        if (end > dataLen) {
            throw new SafetensorsFormatException(file, where + ": data_offsets",
                    "[" + begin + ", " + end + ") lies outside the data section (" + dataLen + " bytes; truncated file?)");
        }
        long bytes;
        try {
            bytes = Math.multiplyExact(Tensor.elementCount(shape), dtype.byteSize());
        } catch (ArithmeticException e) {
            throw new SafetensorsFormatException(file, where + ": shape", java.util.Arrays.toString(shape) + " overflows");
        }
        if (bytes != end - begin) {
            throw new SafetensorsFormatException(file, where + ": data_offsets",
                    "span " + (end - begin) + " bytes, but shape " + java.util.Arrays.toString(shape) + " of " + dtype
                            + " needs " + bytes);
        }
        return new Entry(name, dtype, shape, begin, end);
    }

    /**
     * The file that was opened.
     *
     * @return its path, as given to {@code open}
     */
    public Path file() {
        return file;
    }

    /**
     * Tensor names in header order.
     *
     * @return the names, unmodifiable
     */
    public Set<String> names() {
        return tensors.keySet();
    }

    /**
     * Whether the file holds a tensor of this name.
     *
     * @param name the tensor's name
     * @return true when it is in the header
     */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /**
     * The tensor, or a {@link SafetensorsFormatException} naming the file and the tensor.
     *
     * @param name the tensor's name
     * @return the tensor, a view into the mapping
     * @throws SafetensorsFormatException when the file has no tensor of that name
     */
    public Tensor tensor(String name) throws SafetensorsFormatException {
        Tensor t = tensors.get(name);
        if (t == null) {
            throw new SafetensorsFormatException(file, "tensor " + name, "not in this file");
        }
        return t;
    }

    /**
     * Every tensor, by name, in header order.
     *
     * @return the tensors, unmodifiable; views into the mapping
     */
    public Map<String, Tensor> tensors() {
        return tensors;
    }

    /**
     * The header's {@code __metadata__} (empty when absent).
     *
     * @return the metadata's keys and values, unmodifiable
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Offset of the data section in the file (8 + header length).
     *
     * @return the byte offset where the first tensor's data begins
     */
    public long dataStart() {
        return dataStart;
    }

    /**
     * The whole read-only mapping (for handing the file to native code in one piece).
     *
     * @return the mapping of the whole file, read-only
     */
    public MemorySegment mapping() {
        return mapping.asReadOnly();
    }

    /**
     * Fails, naming the file, if it was changed in place since it was opened (its size or
     * modification time differ): pages of a truncated mapping raise SIGBUS when touched, which no
     * JVM can catch, and a rewritten one is no longer the checkpoint that was validated. A file
     * deleted, or replaced by renaming another over it, is fine: the mapping keeps the opened one.
     * Callers check before handing the mapping to native code (docs/limits.md).
     *
     * @throws SafetensorsFormatException when its size or modification time changed since it was opened
     */
    public void checkUnchanged() throws SafetensorsFormatException {
        BasicFileAttributes now;
        try {
            now = Files.readAttributes(file, BasicFileAttributes.class);
        } catch (IOException e) {
            return; // gone from this path: the mapping still holds the opened file
        }
        Object key = opened.fileKey();
        if (key != null && now.fileKey() != null && !key.equals(now.fileKey())) {
            return; // another file renamed over this path; the mapping reads the opened one
        }
        FileTime was = opened.lastModifiedTime();
        if (now.size() != opened.size() || !now.lastModifiedTime().equals(was)) {
            throw new SafetensorsFormatException(file, null, "was changed while mapped (" + opened.size() + " bytes modified "
                    + was + " when opened, now " + now.size() + " bytes modified " + now.lastModifiedTime()
                    + "); a memory-mapped checkpoint must not be rewritten or truncated in place while in use: "
                    + "write a new file and rename it over the old one, then start again");
        }
    }

    @Override
    public void close() {
        if (ownsArena && arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "Safetensors[" + file + ", " + tensors.size() + " tensors]";
    }
}
