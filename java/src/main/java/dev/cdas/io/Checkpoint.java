package dev.cdas.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The weights of a Hugging Face checkpoint folder: either one {@code model.safetensors} or shards
 * listed by {@code model.safetensors.index.json} ({@code {"metadata": {...}, "weight_map": {tensor:
 * shard file}}}). All files are memory-mapped into one shared arena that {@link #close()} releases.
 */
public final class Checkpoint implements AutoCloseable {
    /** The file name of an unsharded checkpoint. */
    public static final String SINGLE_FILE = "model.safetensors";
    /** The file name of a sharded checkpoint's index. */
    public static final String INDEX_FILE = "model.safetensors.index.json";

    private final Path location;
    private final Arena arena;
    private final List<Safetensors> files;
    private final Map<String, Safetensors> byTensor;
    private final Map<String, String> metadata;

    private Checkpoint(Path location, Arena arena, List<Safetensors> files, Map<String, Safetensors> byTensor,
            Map<String, String> metadata) {
        this.location = location;
        this.arena = arena;
        this.files = files;
        this.byTensor = byTensor;
        this.metadata = metadata;
    }

    /**
     * Opens a checkpoint: a folder (index preferred, else model.safetensors), an index file, or a
     * single .safetensors file.
     *
     * @param path a checkpoint folder, an index file or a .safetensors file
     * @return the open checkpoint; close it to unmap every file
     * @throws SafetensorsFormatException when there is no checkpoint at the path or a file breaks the
     *         format (an index naming a missing shard, a tensor in two shards, ...)
     * @throws IOException                when a file cannot be read or mapped
     */
    public static Checkpoint open(Path path) throws IOException {
        if (Files.isDirectory(path)) {
            Path index = path.resolve(INDEX_FILE);
            Path single = path.resolve(SINGLE_FILE);
            if (Files.exists(index)) {
                return openIndex(index);
            }
            if (Files.exists(single)) {
                return openSingle(single);
            }
            throw new SafetensorsFormatException(path, null,
                    "no " + SINGLE_FILE + " or " + INDEX_FILE + " in this folder (only safetensors checkpoints are read)");
        }
        if (!Files.exists(path)) {
            throw new SafetensorsFormatException(path, null, "file not found");
        }
        return path.getFileName().toString().endsWith(".json") ? openIndex(path) : openSingle(path);
    }

    private static Checkpoint openSingle(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try {
            Safetensors st = Safetensors.open(file, arena);
            Map<String, Safetensors> byTensor = new LinkedHashMap<>();
            for (String n : st.names()) {
                byTensor.put(n, st);
            }
            return new Checkpoint(file, arena, List.of(st), Collections.unmodifiableMap(byTensor), st.metadata());
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    private static Checkpoint openIndex(Path index) throws IOException {
        JsonNode root;
        try {
            root = Safetensors.JSON.readTree(InputFiles.readString(index));
        } catch (JsonProcessingException e) {
            throw new SafetensorsFormatException(index, null, "malformed JSON: " + InputFiles.jsonError(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsFormatException(index, null, "is not a JSON object");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new SafetensorsFormatException(index, "weight_map", map == null ? "missing" : "must be an object");
        }
        Map<String, String> metadata = new LinkedHashMap<>();
        JsonNode meta = root.get("metadata");
        if (meta != null && meta.isObject()) {
            meta.properties().forEach(e -> metadata.put(e.getKey(), e.getValue().asText()));
        }
        Path dir = index.toAbsolutePath().getParent();
        Map<String, String> tensorToShard = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : map.properties()) {
            if (!e.getValue().isTextual()) {
                throw new SafetensorsFormatException(index, "weight_map." + e.getKey(), "must be a shard file name");
            }
            String shard = e.getValue().textValue();
            Path resolved = dir.resolve(shard).normalize();
            if (shard.isEmpty() || !resolved.getParent().equals(dir.normalize())) {
                throw new SafetensorsFormatException(index, "weight_map." + e.getKey(),
                        "shard \"" + shard + "\" must be a file name in the index's folder");
            }
            tensorToShard.put(e.getKey(), shard);
        }
        if (tensorToShard.isEmpty()) {
            throw new SafetensorsFormatException(index, "weight_map", "is empty");
        }
        Arena arena = Arena.ofShared();
        try {
            Map<String, Safetensors> shards = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : tensorToShard.entrySet()) {
                String shard = e.getValue();
                if (!shards.containsKey(shard)) {
                    Path shardPath = dir.resolve(shard);
                    if (!Files.exists(shardPath)) {
                        throw new SafetensorsFormatException(index, "weight_map." + e.getKey(),
                                "shard file " + shard + " is missing from " + dir);
                    }
                    try {
                        shards.put(shard, Safetensors.open(shardPath, arena));
                    } catch (NoSuchFileException ex) {
                        throw new SafetensorsFormatException(index, "weight_map." + e.getKey(),
                                "shard file " + shard + " is missing", ex);
                    }
                }
            }
            Map<String, Safetensors> byTensor = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : tensorToShard.entrySet()) {
                Safetensors st = shards.get(e.getValue());
                if (!st.contains(e.getKey())) {
                    throw new SafetensorsFormatException(st.file(), "tensor " + e.getKey(),
                            "listed in " + index.getFileName() + " but not in this shard");
                }
                byTensor.put(e.getKey(), st);
            }
            return new Checkpoint(index, arena, List.copyOf(shards.values()), Collections.unmodifiableMap(byTensor),
                    Collections.unmodifiableMap(metadata));
        } catch (IOException | RuntimeException | Error e) {
            arena.close();
            throw e;
        }
    }

    /**
     * The file opened: model.safetensors or the index.
     *
     * @return the path of model.safetensors, of the index, or of the single file opened
     */
    public Path location() {
        return location;
    }

    /**
     * The safetensors files, in shard order.
     *
     * @return the files, unmodifiable
     */
    public List<Safetensors> files() {
        return files;
    }

    /**
     * The names of every tensor across the files.
     *
     * @return the names, unmodifiable
     */
    public Set<String> names() {
        return byTensor.keySet();
    }

    /**
     * Whether the checkpoint holds a tensor of this name.
     *
     * @param name the tensor's name
     * @return true when one of its files has it
     */
    public boolean contains(String name) {
        return byTensor.containsKey(name);
    }

    /**
     * A tensor of the checkpoint.
     *
     * @param name the tensor's name
     * @return the tensor, a view into its file's mapping (valid until {@link #close()})
     * @throws SafetensorsFormatException when no file of the checkpoint holds it
     */
    public Tensor tensor(String name) throws SafetensorsFormatException {
        Safetensors st = byTensor.get(name);
        if (st == null) {
            throw new SafetensorsFormatException(location, "tensor " + name, "not in this checkpoint");
        }
        return st.tensor(name);
    }

    /**
     * The file that holds a tensor (for messages), or null.
     *
     * @param name the tensor's name
     * @return the file holding it, or null when none does
     */
    public Path fileOf(String name) {
        Safetensors st = byTensor.get(name);
        return st == null ? null : st.file();
    }

    /**
     * The index's "metadata" for a sharded checkpoint, else the file's __metadata__.
     *
     * @return the metadata's keys and values, unmodifiable
     */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * {@link Safetensors#checkUnchanged()} for every file of the checkpoint.
     *
     * @throws SafetensorsFormatException when one of the files changed since it was opened
     */
    public void checkUnchanged() throws SafetensorsFormatException {
        for (Safetensors f : files) {
            f.checkUnchanged();
        }
    }

    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "Checkpoint[" + location + ", " + files.size() + " file(s), " + byTensor.size() + " tensors]";
    }
}
