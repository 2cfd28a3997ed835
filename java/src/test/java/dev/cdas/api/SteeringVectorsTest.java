package dev.cdas.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Fixtures;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainingSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SteeringVectorsTest {
    @TempDir
    Path dir;

    /** The example of package-info.java, line for line (tiny fixture model, two pairs). */
    @Test
    void packageExample() throws Exception {
        Path modelDir = Fixtures.dir("llama");
        Path pairsFile = dir.resolve("pairs.jsonl");
        Files.writeString(pairsFile, """
                {"negative_input": "Hello", "negative_output": "fine", "positive_input": "Tell me", "positive_output": "sea tea", "concept": "sea", "concept_id": 1}
                {"negative_input": "How are you", "negative_output": "good", "positive_input": "Write", "positive_output": "the sea", "concept": "sea", "concept_id": 1}
                """);
        Path outFile = dir.resolve("sea.safetensors");
        List<String> printed = new ArrayList<>();

        try (ModelFolder folder = ModelFolder.open(modelDir);
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            List<ConceptPair> pairs = PairReader.read(pairsFile, null);
            TrainingSettings settings = TrainingSettings.defaults().withEpochs(2);
            SteeringVectorFile vector = SteeringVectors.train(folder, model, pairs, 1, SteeringMethod.CDAS, settings,
                    (task, done, total, detail) -> printed.add(task + " " + done + "/" + total + " " + detail));
            vector.write(outFile);
            List<String> replies = SteeringVectors.steer(folder, model, vector, vector.values(true, 1.0),
                    List.of("Tell me about the weather."), GenerationOptions.greedy(16));
            printed.add(replies.getFirst());
        }

        SteeringVectorFile written = SteeringVectorFile.read(outFile);
        assertEquals(1, written.layer());
        assertEquals("sea", written.concept());
        assertEquals("cdas", written.method());
        assertTrue(printed.getFirst().startsWith("train 1/"), printed.toString());
        assertEquals(3, printed.size(), "two steps (2 epochs x 1 batch), then the reply: " + printed);
    }
}
