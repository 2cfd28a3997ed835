package dev.cdas.io;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.cdas.fuzz.FuzzSupport;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * Fuzz targets for the safetensors reader and the sharded checkpoint index (docs/fuzzing.md).
 * The committed inputs under {@code src/test/resources/dev/cdas/io/SafetensorsFuzzTestInputs/}
 * replay in every test run; {@code scripts/fuzz.sh} fuzzes.
 */
class SafetensorsFuzzTest {
    private static Path dir;
    private static Path indexDir;

    @BeforeAll
    static void setUp() throws IOException {
        dir = FuzzSupport.tempDir("st");
        indexDir = Files.createDirectories(dir.resolve("sharded"));
        for (String shard : new String[] {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
            try (var in = SafetensorsFuzzTest.class.getResourceAsStream("/fixtures/llama/" + shard)) {
                Files.copy(in, indexDir.resolve(shard));
            }
        }
    }

    @AfterAll
    static void tearDown() {
        FuzzSupport.deleteTree(dir);
    }

    /** Any bytes as a .safetensors file: header length, JSON header, dtypes, shapes, offsets, truncation. */
    @FuzzTest
    void safetensors(byte[] bytes) {
        Path file = FuzzSupport.write(dir.resolve("fuzz.safetensors"), bytes);
        FuzzSupport.expectParsedOrRefused("fuzz.safetensors", () -> {
            try (Safetensors st = Safetensors.open(file)) {
                st.metadata();
                for (String name : st.names()) {
                    Tensor t = st.tensor(name);
                    switch (t.dtype()) {
                        case F16, BF16, F32, F64 -> t.toFloatArray();
                        case F8_E4M3, F8_E5M2 -> t.data().byteSize();
                        default -> t.toLongArray();
                    }
                }
            }
        });
    }

    /** Any bytes as model.safetensors.index.json beside two valid shards. */
    @FuzzTest
    void shardedIndex(byte[] bytes) {
        Path index = FuzzSupport.write(indexDir.resolve(Checkpoint.INDEX_FILE), bytes);
        FuzzSupport.expectParsedOrRefused(null, () -> {
            try (Checkpoint c = Checkpoint.open(index)) {
                c.metadata();
                for (String name : c.names()) {
                    c.tensor(name);
                    c.fileOf(name);
                }
            }
        });
    }
}
