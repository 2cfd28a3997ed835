package dev.cdas.data;

import dev.cdas.InvalidArgumentException;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Which column (Parquet) or key (JSON Lines) of a pairs file holds each of the six fields of a
 * {@link ConceptPair}. {@link #DEFAULT} reads every field from the column of its own name; other
 * datasets are read through a mapping such as {@code positive_output=output_concept}. One column
 * may feed several fields (for example {@code negative_input=instruction,positive_input=instruction}
 * for a dataset whose pairs share their prompt).
 *
 * @param negativeInput  the column of {@code negative_input}
 * @param negativeOutput the column of {@code negative_output}
 * @param positiveInput  the column of {@code positive_input}
 * @param positiveOutput the column of {@code positive_output}
 * @param concept        the column of {@code concept} (optional in the file: see {@link PairReader})
 * @param conceptId      the column of {@code concept_id} (optional in the file: see {@link PairReader})
 */
public record PairColumns(String negativeInput, String negativeOutput, String positiveInput, String positiveOutput,
        String concept, String conceptId) {

    /** The six fields' names, in the order of the record's components. */
    public static final List<String> FIELDS = List.of(ConceptPair.NEGATIVE_INPUT, ConceptPair.NEGATIVE_OUTPUT,
            ConceptPair.POSITIVE_INPUT, ConceptPair.POSITIVE_OUTPUT, ConceptPair.CONCEPT, ConceptPair.CONCEPT_ID);

    /** Every field read from the column of its own name. */
    public static final PairColumns DEFAULT = new PairColumns(ConceptPair.NEGATIVE_INPUT, ConceptPair.NEGATIVE_OUTPUT,
            ConceptPair.POSITIVE_INPUT, ConceptPair.POSITIVE_OUTPUT, ConceptPair.CONCEPT, ConceptPair.CONCEPT_ID);

    /**
     * Checks that every column name is present and not blank.
     *
     * @throws InvalidArgumentException when a column name is null or blank
     */
    public PairColumns {
        for (String c : new String[] {negativeInput, negativeOutput, positiveInput, positiveOutput, concept, conceptId}) {
            if (c == null || c.isBlank()) {
                throw new InvalidArgumentException("a pairs file column name is " + (c == null ? "null" : "blank"));
            }
        }
    }

    /**
     * Parses a mapping {@code FIELD=COLUMN[,FIELD=COLUMN...]}; the fields it leaves out keep their
     * own names. A null or empty text gives {@link #DEFAULT}.
     *
     * @param mapping the mapping, e.g. {@code "negative_input=instruction,positive_output=output_concept"}
     * @return the columns
     * @throws InvalidArgumentException when an entry is not {@code FIELD=COLUMN}, names an unknown
     *                                  field, names a field twice or gives an empty column
     */
    public static PairColumns parse(String mapping) {
        if (mapping == null || mapping.isBlank()) {
            return DEFAULT;
        }
        Map<String, String> columns = new LinkedHashMap<>();
        for (String f : FIELDS) {
            columns.put(f, f);
        }
        Map<String, String> given = new LinkedHashMap<>();
        for (String entry : mapping.split(",", -1)) {
            int eq = entry.indexOf('=');
            if (eq < 0) {
                throw new InvalidArgumentException("column mapping entry \"" + entry + "\" is not FIELD=COLUMN");
            }
            String field = entry.substring(0, eq).strip();
            String column = entry.substring(eq + 1).strip();
            if (!columns.containsKey(field)) {
                throw new InvalidArgumentException("column mapping: unknown field \"" + field + "\"; the fields are "
                        + String.join(", ", FIELDS));
            }
            if (column.isEmpty()) {
                throw new InvalidArgumentException("column mapping: field \"" + field + "\" has an empty column name");
            }
            if (given.put(field, column) != null) {
                throw new InvalidArgumentException("column mapping: field \"" + field + "\" is given twice");
            }
            columns.put(field, column);
        }
        return new PairColumns(columns.get(FIELDS.get(0)), columns.get(FIELDS.get(1)), columns.get(FIELDS.get(2)),
                columns.get(FIELDS.get(3)), columns.get(FIELDS.get(4)), columns.get(FIELDS.get(5)));
    }

    /**
     * The column of one field.
     *
     * @param field one of {@link #FIELDS}
     * @return the column (or JSON key) that holds it
     * @throws InvalidArgumentException when {@code field} is not one of {@link #FIELDS}
     */
    public String column(String field) {
        return switch (field) {
            case ConceptPair.NEGATIVE_INPUT -> negativeInput;
            case ConceptPair.NEGATIVE_OUTPUT -> negativeOutput;
            case ConceptPair.POSITIVE_INPUT -> positiveInput;
            case ConceptPair.POSITIVE_OUTPUT -> positiveOutput;
            case ConceptPair.CONCEPT -> concept;
            case ConceptPair.CONCEPT_ID -> conceptId;
            default -> throw new InvalidArgumentException("unknown pair field \"" + field + "\"");
        };
    }

    /**
     * The mapping as {@link #parse} reads it, listing only the fields not read from their own name
     * (empty for {@link #DEFAULT}).
     */
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder();
        for (String f : FIELDS) {
            if (!column(f).equals(f)) {
                sb.append(sb.isEmpty() ? "" : ",").append(f).append('=').append(column(f));
            }
        }
        return sb.toString();
    }
}
