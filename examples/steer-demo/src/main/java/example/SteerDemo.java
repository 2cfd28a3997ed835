package example;

import dev.cdas.api.SteeringVectors;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainingSettings;
import java.nio.file.Path;
import java.util.List;

/** Trains a CDAS vector on (part of) the bundled demo, writes it, and injects it into one reply. */
public final class SteerDemo {
    public static void main(String[] args) throws Exception {
        Path demo = Path.of(args.length > 0 ? args[0] : "demo");
        Path out = Path.of(args.length > 1 ? args[1] : "startrek.safetensors");
        try (ModelFolder folder = ModelFolder.open(demo.resolve("model"));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            List<ConceptPair> pairs = PairReader.read(demo.resolve("data/startrek.jsonl"), null).subList(0, 32);
            SteeringVectorFile vector = SteeringVectors.train(folder, model, pairs, 2, SteeringMethod.CDAS,
                    TrainingSettings.defaults().withEpochs(1),
                    (task, done, total, detail) -> { });
            vector.write(out);
            System.out.println("trained on " + pairs.size() + " pairs, wrote " + out);
            String prompt = "Give me a quote.";
            List<String> plain = SteeringVectors.steer(folder, model, null, null,
                    List.of(prompt), GenerationOptions.greedy(24));
            List<String> injected = SteeringVectors.steer(folder, model, vector, vector.values(true, 1.0),
                    List.of(prompt), GenerationOptions.greedy(24));
            System.out.println(prompt + "\n  unsteered: " + plain.getFirst() + "\n  m = 1 (inject): " + injected.getFirst());
        }
    }
}
