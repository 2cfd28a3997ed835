package dev.cdas.data;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.TreeSet;

/**
 * Reads training pairs from {@code .jsonl}/{@code .json}/{@code .ndjson} or {@code .parquet}, with an
 * optional concept filter. In both formats the four text fields are required and {@code concept}
 * and {@code concept_id} may be left out by a file of one concept, which is then named after the
 * file; {@link PairColumns} maps the fields to other column names.
 */
public final class PairReader {
    private PairReader() {}

    /** The two file formats, told apart by the file name's extension. */
    public enum Format {
        /** JSON Lines: {@code .jsonl}, {@code .ndjson} or {@code .json}, one object per line. */
        JSONL,
        /** Apache Parquet: {@code .parquet}. */
        PARQUET
    }

    /**
     * The format of a pairs file, from its name.
     *
     * @param file the pairs file
     * @return its format
     * @throws DataFormatException when the extension is neither JSON Lines nor Parquet
     */
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

    /**
     * Reads every pair of a file, each field from the column of its own name.
     *
     * @param file a {@code .jsonl} or {@code .parquet} file
     * @return the pairs, in file order (never empty)
     * @throws java.nio.file.NoSuchFileException when the file does not exist
     * @throws DataFormatException when the file is not valid pairs or holds none
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file) throws IOException {
        return readAll(file, PairColumns.DEFAULT);
    }

    /** Every pair of the file, each field from the column {@code columns} gives it; never empty. */
    private static List<ConceptPair> readAll(Path file, PairColumns columns) throws IOException {
        Format format = formatOf(file);
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such data file");
        }
        dev.cdas.io.InputFiles.requireRegularFile(file);
        List<ConceptPair> pairs = format == Format.JSONL
                ? JsonlPairReader.read(file, columns) : ParquetPairReader.read(file, columns);
        if (pairs.isEmpty()) {
            throw new DataFormatException(file, null, null, "holds no pairs");
        }
        return pairs;
    }

    /**
     * The pairs of one concept ({@code concept == null}: all of them). An empty result is an
     * error that lists the concepts the file does have.
     *
     * @param file    a {@code .jsonl} or {@code .parquet} file
     * @param concept the concept to keep, or null for all
     * @return the pairs of that concept, in file order (never empty)
     * @throws DataFormatException when the file is not valid pairs or holds none of the concept
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file, String concept) throws IOException {
        return read(file, concept, PairColumns.DEFAULT);
    }

    /**
     * The pairs of one concept ({@code concept == null}: all of them), each field from the column
     * {@code columns} gives it.
     *
     * @param file    a {@code .jsonl} or {@code .parquet} file
     * @param concept the concept to keep, or null for all
     * @param columns the column of each field
     * @return the pairs of that concept, in file order (never empty)
     * @throws DataFormatException when the file is not valid pairs or holds none of the concept
     * @throws IOException         when the file cannot be read
     */
    public static List<ConceptPair> read(Path file, String concept, PairColumns columns) throws IOException {
        List<ConceptPair> all = readAll(file, columns);
        if (concept == null) {
            return all;
        }
        List<ConceptPair> kept = all.stream().filter(p -> p.concept().equals(concept)).toList();
        if (kept.isEmpty()) {
            TreeSet<String> present = new TreeSet<>();
            all.forEach(p -> present.add(p.concept()));
            String list = present.stream().limit(20).toList() + (present.size() > 20 ? " and " + (present.size() - 20) + " more" : "");
            throw new DataFormatException(file, null, columns.concept(),
                    "no pairs with concept \"" + concept + "\" (" + all.size() + " pairs; concepts present: " + list + ")");
        }
        return kept;
    }
}
