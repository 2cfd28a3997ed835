package dev.cdas.train;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.cdas.fuzz.FuzzSupport;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz targets for the files training writes and others may hand over: steering vector files and
 * training checkpoints (docs/fuzzing.md). Committed inputs under
 * {@code src/test/resources/dev/cdas/train/VectorFilesFuzzTestInputs/} replay in every test run.
 */
class VectorFilesFuzzTest {
    private static Path dir;

    @BeforeAll
    static void setUp() {
        dir = FuzzSupport.tempDir("train");
    }

    @AfterAll
    static void tearDown() {
        FuzzSupport.deleteTree(dir);
    }

    /** Any bytes as a steering vector file: its directions, then the full file with its metadata. */
    @FuzzTest
    void steeringVector(byte[] bytes) {
        Path file = FuzzSupport.write(dir.resolve("vector.safetensors"), bytes);
        FuzzSupport.expectParsedOrRefused("vector.safetensors", () -> SteeringVectorFile.readDirections(file));
        FuzzSupport.expectParsedOrRefused("vector.safetensors", () -> {
            SteeringVectorFile v = SteeringVectorFile.read(file);
            v.metadata();
        });
    }

    /** Any bytes as a training checkpoint (what --resume reads). */
    @FuzzTest
    void trainingCheckpoint(byte[] bytes) {
        Path file = FuzzSupport.write(dir.resolve("checkpoint.safetensors"), bytes);
        FuzzSupport.expectParsedOrRefused("checkpoint.safetensors", () -> TrainingCheckpoint.read(file));
    }
}
