package dev.cdas.fanout;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cdas.InvalidArgumentException;
import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * {@code fanout.json} of an output folder: what its vectors were made with (the identity: data file
 * and its SHA-256, model, method, layer, training settings with the run's seed), the concepts
 * selected for the run (all shards' together) and the shard that wrote the folder. A rerun in the
 * folder must have the same identity (its finished concepts are kept); {@link ShardMerge} joins
 * folders of one identity and reports the selected concepts none of them finished.
 *
 * @param shard {@code i/n}, or {@code merged} for a folder written by {@link ShardMerge}
 */
public record RunRecord(Map<String, String> identity, List<SelectedConcept> concepts, String shard) {
    public static final String FILE = "fanout.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** A selected concept: its id, name and number of pairs (enough to recompute the shard assignment). */
    public record SelectedConcept(long id, String name, int pairs) {}

    public RunRecord {
        identity = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(identity));
        concepts = List.copyOf(concepts);
    }

    public static List<SelectedConcept> of(List<Concept> concepts) {
        return concepts.stream().map(c -> new SelectedConcept(c.id(), c.name(), c.pairs().size())).toList();
    }

    /** The folder's record, or null when it has none. */
    public static RunRecord read(Path dir) throws IOException {
        Path file = dir.resolve(FILE);
        if (!Files.exists(file)) {
            return null;
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new InvalidArgumentException(file + ": not JSON: " + dev.cdas.io.InputFiles.jsonError(e), e);
        }
        if (root == null || !root.path("identity").isObject() || !root.path("concepts").isArray() || !root.path("shard").isTextual()) {
            throw new InvalidArgumentException(file + ": not a fan-out record (needs identity, concepts and shard)");
        }
        Map<String, String> identity = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.get("identity").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            identity.put(e.getKey(), e.getValue().asText());
        }
        List<SelectedConcept> concepts = new ArrayList<>();
        for (JsonNode c : root.get("concepts")) {
            if (!c.path("concept_id").isIntegralNumber() || !c.path("concept").isTextual() || !c.path("pairs").isInt()) {
                throw new InvalidArgumentException(file + ": a concept needs concept_id, concept and pairs: " + c);
            }
            concepts.add(new SelectedConcept(c.get("concept_id").asLong(), c.get("concept").asText(), c.get("pairs").asInt()));
        }
        return new RunRecord(identity, concepts, root.get("shard").asText());
    }

    public void write(Path dir) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode id = root.putObject("identity");
        identity.forEach(id::put);
        var list = root.putArray("concepts");
        for (SelectedConcept c : concepts) {
            list.addObject().put("concept_id", c.id()).put("concept", c.name()).put("pairs", c.pairs());
        }
        root.put("shard", shard);
        AtomicFiles.write(dir.resolve(FILE),
                (JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n").getBytes(StandardCharsets.UTF_8));
    }

    /** "seed 42 here, 7 there"-style list of the identity keys that differ; empty when equal. */
    public static String difference(Map<String, String> here, Map<String, String> there) {
        List<String> diffs = new ArrayList<>();
        for (String k : here.keySet()) {
            if (!Objects.equals(here.get(k), there.get(k))) {
                diffs.add(k + " " + here.get(k) + " vs " + there.get(k));
            }
        }
        for (String k : there.keySet()) {
            if (!here.containsKey(k)) {
                diffs.add(k + " (absent) vs " + there.get(k));
            }
        }
        return String.join(", ", diffs);
    }
}
