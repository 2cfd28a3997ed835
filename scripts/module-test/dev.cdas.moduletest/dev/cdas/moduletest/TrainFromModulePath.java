package dev.cdas.moduletest;

import dev.cdas.api.SteeringVectors;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainingSettings;
import java.nio.file.Path;
import java.util.List;

/**
 * Trains a DiffMean vector through the library's API from the module path and writes it:
 * {@code TrainFromModulePath MODEL_DIR PAIRS_FILE LAYER OUT}. Fails (exit 1) unless the library ran as the
 * named module dev.cdas exporting its API and keeping its internals.
 */
public final class TrainFromModulePath {
    private TrainFromModulePath() {}

    public static void main(String[] args) throws Exception {
        Module library = SteeringVectors.class.getModule();
        if (!"dev.cdas".equals(library.getName()) || !library.isExported("dev.cdas.api")
                || library.isExported("dev.cdas.fanout") || library.isExported("dev.cdas.reference")) {
            System.err.println("the library is not module dev.cdas with its API exported and its internals not: "
                    + library.getDescriptor());
            System.exit(1);
        }
        Path out = Path.of(args[3]);
        try (ModelFolder folder = ModelFolder.open(Path.of(args[0]));
             Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
            List<ConceptPair> pairs = PairReader.read(Path.of(args[1]));
            SteeringVectorFile vector = SteeringVectors.train(folder, model, pairs, Integer.parseInt(args[2]),
                    SteeringMethod.DIFFMEAN, TrainingSettings.defaults().withMaxResponseTokens(8),
                    (task, done, total, detail) -> { });
            vector.write(out);
        }
        System.out.println("wrote " + out + " from module " + library.getName());
    }
}
