package dev.cdas.data;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Reads pairs from JSON Lines: one object per line, blank lines skipped, UTF-8 (strictly). The four
 * text fields are required; {@code concept} and {@code concept_id} may be left out (a file of one
 * concept): a pair without them belongs to the concept named after the file (its name without the
 * extension) with id 0. Present but null or of the wrong type, they are errors. The keys are the
 * fields' own names unless a {@link PairColumns} maps them to others.
 */
public final class JsonlPairReader {

    private JsonlPairReader() {}

    /**
     * Reads every pair of the file, each field under its own name.
     *
     * @param file the {@code .jsonl} file
     * @return the pairs, in file order
     * @throws DataFormatException when the file is not valid pairs (the message names file, line and field)
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file) throws IOException {
        return read(file, PairColumns.DEFAULT);
    }

    /**
     * Reads every pair of the file, each field under the key {@code columns} gives it.
     *
     * @param file    the {@code .jsonl} file
     * @param columns the key of each field
     * @return the pairs, in file order
     * @throws DataFormatException when the file is not valid pairs (the message names file, line and key)
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file, PairColumns columns) throws IOException {
        List<ConceptPair> pairs = new ArrayList<>();
        for (TableRows.Row row : TableRows.readJsonl(file)) { // one JSON object a line, strict UTF-8
            JsonNode node = row.values();
            String where = row.location();
            pairs.add(new ConceptPair(
                    text(node, columns.negativeInput(), file, where),
                    text(node, columns.negativeOutput(), file, where),
                    text(node, columns.positiveInput(), file, where),
                    text(node, columns.positiveOutput(), file, where),
                    node.has(columns.concept()) ? text(node, columns.concept(), file, where) : defaultConcept(file),
                    node.has(columns.conceptId()) ? integer(node, columns.conceptId(), file, where) : 0,
                    file.getFileName() + " " + where));
        }
        return pairs;
    }

    /**
     * The concept of pairs that name none: the file's name without its extension ("startrek" for startrek.jsonl).
     *
     * @param file the pairs file
     * @return its name without the last extension
     */
    public static String defaultConcept(Path file) {
        String name = file.getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 ? name.substring(0, dot) : name;
    }

    private static JsonNode field(JsonNode node, String name, Path file, String where) throws DataFormatException {
        JsonNode v = node.get(name);
        if (v == null) {
            throw new DataFormatException(file, where, name, "missing");
        }
        if (v.isNull()) {
            throw new DataFormatException(file, where, name, "is null");
        }
        return v;
    }

    private static String text(JsonNode node, String name, Path file, String where) throws DataFormatException {
        JsonNode v = field(node, name, file, where);
        if (!v.isTextual()) {
            throw new DataFormatException(file, where, name, "expected a string, found " + describe(v));
        }
        return v.textValue();
    }

    private static long integer(JsonNode node, String name, Path file, String where) throws DataFormatException {
        JsonNode v = field(node, name, file, where);
        if (v.isIntegralNumber() && v.canConvertToLong()) {
            return v.longValue();
        }
        // 3.0 written by some tools is still an integer
        if (v.isFloatingPointNumber() && v.doubleValue() == Math.rint(v.doubleValue())
                && Math.abs(v.doubleValue()) < 0x1p53) {
            return (long) v.doubleValue();
        }
        throw new DataFormatException(file, where, name, "expected an integer, found " + describe(v));
    }

    private static String describe(JsonNode v) {
        String s = v.toString();
        return v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT) + " "
                + (s.length() > 40 ? s.substring(0, 40) + "..." : s);
    }
}
