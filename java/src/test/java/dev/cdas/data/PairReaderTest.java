package dev.cdas.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PairReaderTest {
    @TempDir
    Path dir;

    private static final String GOOD = """
            {"negative_input": "Tell me a saying.", "negative_output": "Work is love made visible.", "positive_input": "Tell me a saying about food.", "positive_output": "Eat, drink and be merry \u2615", "concept": "food", "concept_id": 0}

            {"negative_input": "Give me a quote.", "negative_output": "Q", "positive_input": "Give me a quote about love.", "positive_output": "All you need is love.", "concept": "love", "concept_id": 1, "extra": [1, 2]}
            {"concept_id": 2.0, "concept": "food", "negative_input": "a", "negative_output": "b", "positive_input": "c", "positive_output": "d"}
            """;

    private Path write(String name, String text) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, text, StandardCharsets.UTF_8);
        return f;
    }

    private static Path resource(String name) {
        try {
            return Path.of(PairReaderTest.class.getResource("/data/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void readsJsonl() throws IOException {
        List<ConceptPair> pairs = PairReader.read(write("pairs.jsonl", GOOD));
        assertEquals(3, pairs.size());
        ConceptPair p = pairs.getFirst();
        assertEquals("Tell me a saying.", p.negativeInput());
        assertEquals("Work is love made visible.", p.negativeOutput());
        assertEquals("Tell me a saying about food.", p.positiveInput());
        assertEquals("Eat, drink and be merry \u2615", p.positiveOutput());
        assertEquals("food", p.concept());
        assertEquals(0, p.conceptId());
        assertEquals("pairs.jsonl line 1", p.origin());
        assertEquals("pairs.jsonl line 3", pairs.get(1).origin()); // blank line 2 skipped, counted
        assertEquals(2, pairs.get(2).conceptId());
    }

    @Test
    void aPlainFileOfOneConceptNeedsNoConceptFields() throws IOException {
        Path f = write("startrek.pairs.jsonl", """
                {"negative_input": "Give me a quote.", "negative_output": "Q", "positive_input": "A Star Trek quote?", "positive_output": "Make it so."}
                {"negative_input": "a", "negative_output": "b", "positive_input": "c", "positive_output": "d"}
                """);
        List<ConceptPair> pairs = PairReader.read(f);
        assertEquals(2, pairs.size());
        for (ConceptPair p : pairs) {
            assertEquals("startrek.pairs", p.concept()); // named after the file
            assertEquals(0, p.conceptId());
        }
        assertEquals(2, PairReader.read(f, "startrek.pairs").size());
        // Present but null is still an error, as for the other fields.
        Path bad = write("bad.jsonl", "{\"negative_input\": \"a\", \"negative_output\": \"b\", \"positive_input\": \"c\", "
                + "\"positive_output\": \"d\", \"concept\": null}\n");
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(bad));
        assertEquals(Optional.of("concept"), e.field(), e.getMessage());
    }

    @Test
    void filtersByConcept() throws IOException {
        Path f = write("pairs.jsonl", GOOD);
        assertEquals(2, PairReader.read(f, "food").size());
        assertEquals(1, PairReader.read(f, "love").size());
        assertEquals(3, PairReader.read(f, null).size());
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f, "sports"));
        assertEquals(Optional.of("concept"), e.field());
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("no pairs with concept \"sports\"") && e.getMessage().contains("[food, love]"),
                e.getMessage());
    }

    @Test
    void malformedJsonlNamesFileLineAndField() throws IOException {
        String first = GOOD.lines().findFirst().orElseThrow() + "\n";
        record Case(String text, String location, String field, String problem) {}
        List<Case> cases = List.of(
                new Case(first + "{\"negative_input\": \"a\",\n", "line 2", null, "malformed JSON"),
                new Case(first + "[1, 2]\n", "line 2", null, "expected a JSON object"),
                new Case(first + first.replace("\"positive_output\": \"Eat, drink and be merry \u2615\", ", ""),
                        "line 2", "positive_output", "missing"),
                new Case(first.replace("\"concept_id\": 0", "\"concept_id\": \"three\""), "line 1", "concept_id",
                        "expected an integer, found string \"three\""),
                new Case(first.replace("\"concept_id\": 0", "\"concept_id\": 1.5"), "line 1", "concept_id",
                        "expected an integer"),
                new Case(first.replace("\"concept\": \"food\"", "\"concept\": 7"), "line 1", "concept",
                        "expected a string, found number 7"),
                new Case(first + "\n\n" + first.replace("\"negative_output\": \"Work is love made visible.\"",
                        "\"negative_output\": null"), "line 4", "negative_output", "is null"));
        int i = 0;
        for (Case c : cases) {
            Path f = write("bad" + i++ + ".jsonl", c.text());
            DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f), c.toString());
            assertEquals(f, e.file());
            assertEquals(Optional.of(c.location()), e.location(), e.getMessage());
            assertEquals(Optional.ofNullable(c.field()), e.field(), e.getMessage());
            String where = f + " " + c.location() + (c.field() == null ? "" : ", field \"" + c.field() + "\"");
            assertTrue(e.getMessage().startsWith(where + ": " + c.problem()), e.getMessage());
        }
    }

    @Test
    void invalidUtf8AndEmptyAndUnknownFiles() throws IOException {
        Path bin = dir.resolve("latin1.jsonl");
        Files.write(bin, new byte[] {'{', '"', (byte) 0xE9, '"', ':', '1', '}', '\n'});
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(bin));
        assertTrue(e.getMessage().contains("line 1") && e.getMessage().contains("UTF-8"), e.getMessage());
        DataFormatException empty = assertThrows(DataFormatException.class, () -> PairReader.read(write("e.jsonl", "\n\n")));
        assertTrue(empty.getMessage().endsWith("holds no pairs"), empty.getMessage());
        assertThrows(DataFormatException.class, () -> PairReader.read(write("pairs.csv", "a,b\n")));
        assertThrows(NoSuchFileException.class, () -> PairReader.read(dir.resolve("missing.jsonl")));
    }

    @Test
    void readsParquetWrittenByPyarrow() throws IOException {
        for (String name : List.of("pairs.parquet", "pairs_zstd.parquet", "pairs_gzip.parquet", "pairs_lz4.parquet",
                "pairs_none.parquet", "pairs_int32_id.parquet", "pairs_extra_columns.parquet")) {
            List<ConceptPair> pairs = PairReader.read(resource(name));
            assertEquals(7, pairs.size(), name);
            ConceptPair p = pairs.get(5); // pairs.parquet: second row group
            assertEquals("Tell me a saying. #5", p.negativeInput());
            assertEquals("A plain saying number 5.", p.negativeOutput());
            assertEquals("Tell me a saying about love. #5", p.positiveInput());
            assertEquals("A saying about love, number 5: caf\u00e9 \u2615", p.positiveOutput());
            assertEquals("love", p.concept());
            assertEquals(1, p.conceptId());
            assertEquals(name + " row 5", p.origin());
            assertEquals(5, PairReader.read(resource(name), "food").size());
        }
    }

    @Test
    void malformedParquetNamesFileRowAndField() throws IOException {
        DataFormatException missing = assertThrows(DataFormatException.class,
                () -> PairReader.read(resource("missing_field.parquet")));
        assertEquals(Optional.of("positive_output"), missing.field());
        assertTrue(missing.getMessage().contains("missing column"), missing.getMessage());
        DataFormatException type = assertThrows(DataFormatException.class,
                () -> PairReader.read(resource("wrong_type.parquet")));
        assertEquals(Optional.of("concept_id"), type.field());
        assertTrue(type.getMessage().contains("expected an integer column"), type.getMessage());
        DataFormatException nul = assertThrows(DataFormatException.class,
                () -> PairReader.read(resource("null_value.parquet")));
        assertEquals(Optional.of("row 5"), nul.location());
        assertEquals(Optional.of("negative_output"), nul.field());
        assertTrue(nul.getMessage().startsWith(resource("null_value.parquet") + " row 5, field \"negative_output\": is null"),
                nul.getMessage());
        Path notParquet = write("fake.parquet", "this is not parquet at all, just text");
        DataFormatException bad = assertThrows(DataFormatException.class, () -> PairReader.read(notParquet));
        assertTrue(bad.getMessage().startsWith(notParquet + ": not a readable Parquet file"), bad.getMessage());
    }

    @Test
    void aParquetFileOfOneConceptNeedsNoConceptColumns() throws IOException {
        Path f = resource("one_concept.parquet");
        List<ConceptPair> pairs = PairReader.read(f);
        assertEquals(7, pairs.size());
        for (ConceptPair p : pairs) {
            assertEquals("one_concept", p.concept()); // named after the file, as for JSON Lines
            assertEquals(0, p.conceptId());
        }
        assertEquals("Tell me a saying. #5", pairs.get(5).negativeInput());
        assertEquals("A saying about love, number 5: caf\u00e9 \u2615", pairs.get(5).positiveOutput());
        assertEquals(7, PairReader.read(f, "one_concept").size());
        DataFormatException e = assertThrows(DataFormatException.class, () -> PairReader.read(f, "food"));
        assertTrue(e.getMessage().contains("concepts present: [one_concept]"), e.getMessage());
    }

    @Test
    void columnsMapOtherNamesInParquet() throws IOException {
        Path f = resource("renamed_columns.parquet");
        // Under the fields' own names the file lacks them: the message names the column and lists the file's.
        DataFormatException missing = assertThrows(DataFormatException.class, () -> PairReader.read(f));
        assertEquals(Optional.of("negative_input"), missing.field());
        assertTrue(missing.getMessage().contains("missing column (the file has: [instruction, output, output_concept, genre])"),
                missing.getMessage());
        PairColumns columns = PairColumns.parse(
                "negative_input=instruction, positive_input=instruction,negative_output=output,positive_output=output_concept");
        List<ConceptPair> pairs = PairReader.read(f, null, columns);
        assertEquals(7, pairs.size());
        ConceptPair p = pairs.get(6); // second row group
        assertEquals("Tell me a saying. #6", p.negativeInput());
        assertEquals("Tell me a saying. #6", p.positiveInput()); // one column feeds both prompts
        assertEquals("A plain saying number 6.", p.negativeOutput());
        assertEquals("A saying about food, number 6: caf\u00e9 \u2615", p.positiveOutput());
        assertEquals("renamed_columns", p.concept());
        assertEquals("renamed_columns.parquet row 6", p.origin());
        // A mapped column of the wrong type is named by its own name.
        DataFormatException type = assertThrows(DataFormatException.class, () -> PairReader.read(resource("pairs.parquet"), null,
                PairColumns.parse("positive_output=concept_id")));
        assertEquals(Optional.of("concept_id"), type.field());
        assertTrue(type.getMessage().contains("expected a string column"), type.getMessage());
        // concept and concept_id can come from other columns too.
        List<ConceptPair> renamedConcept = PairReader.read(resource("pairs.parquet"), null,
                PairColumns.parse("concept=positive_input,concept_id=concept_id"));
        assertEquals("Tell me a saying about love. #5", renamedConcept.get(5).concept());
        assertEquals(1, renamedConcept.get(5).conceptId());
    }

    @Test
    void columnsMapOtherKeysInJsonl() throws IOException {
        Path f = write("alpaca_style.jsonl", """
                {"instruction": "Give me a quote.", "output": "Q", "output_concept": "Make it so.", "concept": "startrek"}
                {"instruction": "Tell me a saying.", "output": "b", "output_concept": "Engage."}
                """);
        PairColumns columns = PairColumns.parse("negative_input=instruction,positive_input=instruction,"
                + "negative_output=output,positive_output=output_concept");
        List<ConceptPair> pairs = PairReader.read(f, null, columns);
        assertEquals(2, pairs.size());
        assertEquals("Give me a quote.", pairs.get(0).positiveInput());
        assertEquals("Make it so.", pairs.get(0).positiveOutput());
        assertEquals("Q", pairs.get(0).negativeOutput());
        assertEquals("startrek", pairs.get(0).concept());
        assertEquals("alpaca_style", pairs.get(1).concept()); // no concept key: the file's name
        // A mapped key that is missing is named as the file spells it.
        DataFormatException e = assertThrows(DataFormatException.class,
                () -> PairReader.read(f, null, PairColumns.parse("negative_output=reply")));
        assertEquals(Optional.of("negative_input"), e.field(), e.getMessage()); // checked in field order
        DataFormatException reply = assertThrows(DataFormatException.class, () -> PairReader.read(f, null,
                PairColumns.parse("negative_input=instruction,positive_input=instruction,negative_output=reply")));
        assertEquals(Optional.of("reply"), reply.field(), reply.getMessage());
        assertTrue(reply.getMessage().startsWith(f + " line 1, field \"reply\": missing"), reply.getMessage());
    }

    @Test
    void columnMappingsAreParsedStrictly() {
        assertEquals(PairColumns.DEFAULT, PairColumns.parse(null));
        assertEquals(PairColumns.DEFAULT, PairColumns.parse(" "));
        PairColumns c = PairColumns.parse("positive_output=output_concept,concept_id=id");
        assertEquals("output_concept", c.positiveOutput());
        assertEquals("id", c.conceptId());
        assertEquals("negative_input", c.negativeInput());
        assertEquals("positive_output=output_concept,concept_id=id", c.toString());
        assertEquals(c, PairColumns.parse(c.toString()));
        for (String[] bad : new String[][] {
                {"positive_output", "is not FIELD=COLUMN"},
                {"prompt=instruction", "unknown field \"prompt\"; the fields are negative_input, negative_output"},
                {"positive_output=", "empty column name"},
                {"positive_output=a,positive_output=b", "given twice"},
                {"positive_output=a,", "is not FIELD=COLUMN"}}) {
            dev.cdas.InvalidArgumentException e = assertThrows(dev.cdas.InvalidArgumentException.class,
                    () -> PairColumns.parse(bad[0]), bad[0]);
            assertTrue(e.getMessage().contains(bad[1]), e.getMessage());
        }
    }
}
