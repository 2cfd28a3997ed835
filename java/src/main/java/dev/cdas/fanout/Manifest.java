package dev.cdas.fanout;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.InvalidArgumentException;
import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** {@code manifest.jsonl} of an output folder: one {@link ManifestEntry} per line, by ascending concept id. */
public final class Manifest {
    public static final String FILE = "manifest.jsonl";
    private static final ObjectMapper JSON = new ObjectMapper();

    private Manifest() {}

    /** The entries of {@code file} by concept id; empty when it does not exist. */
    public static Map<Long, ManifestEntry> read(Path file) throws IOException {
        Map<Long, ManifestEntry> entries = new TreeMap<>();
        if (!Files.exists(file)) {
            return entries;
        }
        List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
        for (int i = 0; i < lines.size(); i++) {
            if (lines.get(i).isBlank()) {
                continue;
            }
            String where = file + " line " + (i + 1);
            ManifestEntry e;
            try {
                e = ManifestEntry.fromJson(JSON.readTree(lines.get(i)), where);
            } catch (JsonProcessingException ex) {
                throw new InvalidArgumentException(where + ": not JSON: " + dev.cdas.io.InputFiles.jsonError(ex), ex);
            }
            if (entries.put(e.conceptId(), e) != null) {
                throw new InvalidArgumentException(where + ": concept_id " + e.conceptId() + " appears twice");
            }
        }
        return entries;
    }

    /** Replaces {@code file} atomically with {@code entries}, one line each by ascending concept id. */
    public static void write(Path file, Collection<ManifestEntry> entries) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (ManifestEntry e : entries.stream().sorted(Comparator.comparingLong(ManifestEntry::conceptId)).toList()) {
            sb.append(JSON.writeValueAsString(e.toJson())).append('\n');
        }
        AtomicFiles.write(file, sb.toString().getBytes(StandardCharsets.UTF_8));
    }
}
