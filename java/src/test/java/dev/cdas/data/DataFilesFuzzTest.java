package dev.cdas.data;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.cdas.eval.MultipleChoiceData;
import dev.cdas.eval.MultipleChoiceFormat;
import dev.cdas.fuzz.FuzzSupport;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz targets for the training-pair readers (JSONL, Parquet) and the table reader behind the
 * evaluation data (docs/fuzzing.md). Committed inputs under
 * {@code src/test/resources/dev/cdas/data/DataFilesFuzzTestInputs/} replay in every test run.
 */
class DataFilesFuzzTest {
    private static Path dir;

    @BeforeAll
    static void setUp() {
        dir = FuzzSupport.tempDir("data");
    }

    @AfterAll
    static void tearDown() {
        FuzzSupport.deleteTree(dir);
    }

    /** Any bytes as a .jsonl file of concept pairs. */
    @FuzzTest
    void jsonlPairs(byte[] bytes) {
        Path file = FuzzSupport.write(dir.resolve("pairs.jsonl"), bytes);
        FuzzSupport.expectParsedOrRefused("pairs.jsonl", () -> PairReader.read(file));
    }

    /** Any bytes as a .parquet file of concept pairs. */
    @FuzzTest
    void parquetPairs(byte[] bytes) {
        Path file = FuzzSupport.write(dir.resolve("pairs.parquet"), bytes);
        FuzzSupport.expectParsedOrRefused("pairs.parquet", () -> PairReader.read(file));
    }

    /** Any bytes as a .jsonl table, read as rows and as MMLU and TruthfulQA questions. */
    @FuzzTest
    void tableRowsJsonl(byte[] bytes) {
        tableRows(FuzzSupport.write(dir.resolve("rows.jsonl"), bytes));
    }

    /** Any bytes as a .parquet table, read as rows and as MMLU and TruthfulQA questions. */
    @FuzzTest
    void tableRowsParquet(byte[] bytes) {
        tableRows(FuzzSupport.write(dir.resolve("rows.parquet"), bytes));
    }

    private static void tableRows(Path file) {
        String name = file.getFileName().toString();
        FuzzSupport.expectParsedOrRefused(name, () -> TableRows.read(file, Set.of("question"), Set.of("subject", "choices")));
        FuzzSupport.expectParsedOrRefused(name, () -> MultipleChoiceData.read(file, MultipleChoiceFormat.MMLU, ""));
        FuzzSupport.expectParsedOrRefused(name, () -> MultipleChoiceData.read(file, MultipleChoiceFormat.TRUTHFULQA_MC1, ""));
    }
}
