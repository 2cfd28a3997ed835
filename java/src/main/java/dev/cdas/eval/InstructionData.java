package dev.cdas.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cdas.data.DataFormatException;
import dev.cdas.data.TableRows;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Instruction lists (held-out instructions, harmful or harmless prompts) in JSONL or Parquet with
 * one text column: {@code column} when given, else the first of {@link #COLUMNS} the file has.
 * Every row's value must be a non-blank string.
 */
public final class InstructionData {
    /** The column names tried in order when none is given. */
    public static final List<String> COLUMNS = List.of("instruction", "prompt", "input", "text", "goal", "question");

    private InstructionData() {}

    /**
     * The instructions of a JSONL or Parquet file, in file order.
     *
     * @param file   the file
     * @param column the column to read, or null for the first of {@link #COLUMNS} the first row has
     * @return the instructions, never empty
     * @throws DataFormatException when the file is not valid JSONL or Parquet, holds no rows, has no
     *         such column, or a row's value is missing or not a non-blank string (the message names the
     *         file, row and field)
     * @throws IOException         when the file cannot be read
     */
    public static List<String> read(Path file, String column) throws IOException {
        List<TableRows.Row> rows = TableRows.read(file, column == null ? Set.of() : Set.of(column),
                column == null ? Set.copyOf(COLUMNS) : Set.of());
        String name = column;
        if (name == null) {
            JsonNode first = rows.getFirst().values();
            for (String c : COLUMNS) {
                if (first.has(c) && first.get(c).isTextual()) {
                    name = c;
                    break;
                }
            }
            if (name == null) {
                throw new DataFormatException(file, rows.getFirst().location(), null,
                        "no instruction column: expected one of " + COLUMNS + " (or name it with --column)");
            }
        }
        List<String> out = new ArrayList<>(rows.size());
        for (TableRows.Row r : rows) {
            JsonNode v = r.values().get(name);
            if (v == null || !v.isTextual() || v.asText().isBlank()) {
                throw new DataFormatException(file, r.location(), name, v == null || v.isNull() ? "missing" : "must be a non-blank string");
            }
            out.add(v.asText());
        }
        return out;
    }
}
