package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.DataFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainJobTest {
    @TempDir
    Path dir;

    /** Fixed factors: the model-side estimator is the runtime's (this only checks they reach the file). */
    private static SteeringFactorEstimator constantFactors(double pos, double neg) {
        return (w, rank, pairs) -> new SteeringFactorEstimator.Factors(
                java.util.Collections.nCopies(rank, pos).stream().mapToDouble(Double::doubleValue).toArray(),
                java.util.Collections.nCopies(rank, neg).stream().mapToDouble(Double::doubleValue).toArray());
    }

    private Path data(int n, String... concepts) throws IOException {
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String c = concepts[i % concepts.length];
            lines.add("{\"negative_input\": \"x" + i + "\", \"negative_output\": \"y" + i + "\", \"positive_input\": \"xc"
                    + i + "\", \"positive_output\": \"yc" + i + "\", \"concept\": \"" + c + "\", \"concept_id\": "
                    + (i % concepts.length) + "}");
        }
        Path f = dir.resolve("pairs.jsonl");
        Files.write(f, lines);
        return f;
    }

    @Test
    void writesTheResultWithMetadata() throws IOException {
        Path data = data(12, "food");
        Path out = dir.resolve("run/food.safetensors");
        TrainingSettings s = TrainingSettings.defaults().withEpochs(5).withBatchSize(4).withLr(0.05);
        TrainJob.Result r = TrainJob.run(TrainJob.Spec.beside(data, null, s, 3, "demo/model", "cdas", out, false),
                new HiddenDirectionObjective(24, 1, 12, 1.0, 2), constantFactors(1.5, -0.25), null);
        SteeringVectorFile v = SteeringVectorFile.read(out);
        assertEquals(24, v.dimension());
        assertEquals("food", v.concept());
        assertEquals(3, v.layer());
        assertEquals("cdas", v.method());
        assertEquals("1.5", v.metadata().get("factor_positive"));
        assertEquals("-0.25", v.metadata().get("factor_negative"));
        assertEquals("15", v.settings().get("steps"));
        assertEquals("4", v.settings().get("batch_size"));
        assertEquals(r.run().log().size(), 15);
        assertTrue(Files.exists(dir.resolve("run/food.loss.csv")));
        assertTrue(Files.exists(dir.resolve("run/food.loss.png")));
    }

    @Test
    void failuresLeaveNoResult() throws IOException {
        Path out = dir.resolve("v.safetensors");
        TrainingSettings s = TrainingSettings.defaults().withEpochs(1).withBatchSize(4);
        Path mixed = data(6, "food", "love");
        DataFormatException many = assertThrows(DataFormatException.class, () -> TrainJob.run(
                TrainJob.Spec.beside(mixed, null, s, 0, "m", "cdas", out, false),
                new HiddenDirectionObjective(8, 1, 6, 1.0, 2), constantFactors(1, 0), null));
        assertTrue(many.getMessage().contains("choose one"), many.getMessage());
        DataFormatException none = assertThrows(DataFormatException.class, () -> TrainJob.run(
                TrainJob.Spec.beside(mixed, "sports", s, 0, "m", "cdas", out, false),
                new HiddenDirectionObjective(8, 1, 6, 1.0, 2), constantFactors(1, 0), null));
        assertTrue(none.getMessage().contains("no pairs with concept \"sports\""), none.getMessage());
        Files.writeString(dir.resolve("bad.jsonl"), "{\"negative_input\": 1}\n");
        assertThrows(DataFormatException.class, () -> TrainJob.run(
                TrainJob.Spec.beside(dir.resolve("bad.jsonl"), null, s, 0, "m", "cdas", out, false),
                new HiddenDirectionObjective(8, 1, 6, 1.0, 2), constantFactors(1, 0), null));
        SteeringFactorEstimator failing = (w, rank, pairs) -> {
            throw new IllegalStateException("runtime failed");
        };
        assertThrows(IllegalStateException.class, () -> TrainJob.run(
                TrainJob.Spec.beside(mixed, "food", s, 0, "m", "cdas", out, false),
                new HiddenDirectionObjective(8, 1, 6, 1.0, 2), failing, null));
        assertFalse(Files.exists(out));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".tmp")
                    || p.getFileName().toString().endsWith(".safetensors")
                    || p.getFileName().toString().contains(".loss.")).toList(),
                    "a failure after training left a result, a temporary file or a loss curve behind");
        }
    }
}
