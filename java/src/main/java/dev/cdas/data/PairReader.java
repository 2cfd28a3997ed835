package dev.cdas.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/** Reads training pairs from {@code .jsonl}/{@code .json}/{@code .ndjson} or {@code .parquet}, with an optional concept filter. */
public final class PairReader {
    private PairReader() {}

    public enum Format { JSONL, PARQUET }

    public static Format formatOf(Path file) throws DataFormatException {
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        if (name.endsWith(".jsonl") || name.endsWith(".ndjson") || name.endsWith(".json")) {
            return Format.JSONL;
        }
        if (name.endsWith(".parquet")) {
            return Format.PARQUET;
        }
        throw new DataFormatException(file, null, null,
                "unknown data format; expected a .jsonl or .parquet file");
    }

    public static List<ConceptPair> read(Path file) throws IOException {
        Format format = formatOf(file);
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such data file");
        }
        dev.cdas.io.InputFiles.requireRegularFile(file);
        List<ConceptPair> pairs = format == Format.JSONL ? JsonlPairReader.read(file) : ParquetPairReader.read(file);
        if (pairs.isEmpty()) {
            throw new DataFormatException(file, null, null, "holds no pairs");
        }
        return pairs;
    }

    /**
     * The pairs of one concept ({@code concept == null}: all of them). An empty result is an
     * error that lists the concepts the file does have.
     */
    public static List<ConceptPair> read(Path file, String concept) throws IOException {
        List<ConceptPair> all = read(file);
        if (concept == null) {
            return all;
        }
        List<ConceptPair> kept = all.stream().filter(p -> p.concept().equals(concept)).toList();
        if (kept.isEmpty()) {
            TreeSet<String> present = new TreeSet<>();
            all.forEach(p -> present.add(p.concept()));
            String list = present.stream().limit(20).toList() + (present.size() > 20 ? " and " + (present.size() - 20) + " more" : "");
            throw new DataFormatException(file, null, ConceptPair.CONCEPT,
                    "no pairs with concept \"" + concept + "\" (" + all.size() + " pairs; concepts present: " + list + ")");
        }
        return kept;
    }
}
