package dev.cdas.cli;

import static dev.cdas.cli.TrainSteerObjectiveCommandTest.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code train --method M} without --model, --data, --layer or --out, as on a fresh clone: the
 * bundled demo's model, pairs and layer, for each of the seven methods, with quick settings (8
 * response tokens; one epoch of batch 64 for the optimised methods). Each writes its vector file under
 * java.io.tmpdir/cdas-demo (a temporary folder here), named by the method, and shows its
 * generations.
 */
class TrainDemoMethodsTest {
    @TempDir
    static Path tmp;
    static String savedTmp;

    @BeforeAll
    static void useTemporaryTmp() {
        savedTmp = System.getProperty("java.io.tmpdir");
        System.setProperty("java.io.tmpdir", tmp.toString());
    }

    @AfterAll
    static void restoreTmp() {
        System.setProperty("java.io.tmpdir", savedTmp);
    }

    @ParameterizedTest
    @ValueSource(strings = {"cdas", "das", "diffmean", "prompt", "reps", "bipo", "loreft"})
    void eachMethodTrainsOnTheDemoWithoutArguments(String method) throws IOException {
        List<String> args = new ArrayList<>(List.of("train", "--method", method));
        if (!method.equals("prompt")) {
            args.addAll(List.of("--max-response-tokens", "8"));
        }
        if (!method.equals("diffmean") && !method.equals("prompt")) {
            args.addAll(List.of("--epochs", "1", "--batch", "64"));
        }
        TrainSteerObjectiveCommandTest.Run r = run(args.toArray(String[]::new));
        assertEquals(0, r.exit(), method + ": " + r.out() + r.err());
        assertTrue(r.out().startsWith("No arguments: " + method + " on the bundled demo ("), r.out());
        Path file = tmp.resolve("cdas-demo").resolve(method.equals("cdas") ? "startrek.safetensors" : "startrek-" + method + ".safetensors");
        assertTrue(r.out().contains("wrote " + file + "\n"), r.out());
        assertTrue(r.out().contains("Generations (top-p 0.9, temperature 0.8, same seed;"), r.out());
        assertTrue(r.out().contains("  suppressed: "), r.out());
        SteeringVectorFile v = SteeringVectorFile.read(file);
        assertEquals(method, v.method());
        assertEquals("Star Trek", v.concept());
        if (!method.equals("prompt")) {
            assertEquals(TrainCommand.DEMO_LAYER, v.layer(), method);
            assertEquals(192, v.dimension(), method);
        }
        if (!method.equals("diffmean") && !method.equals("prompt")) {
            assertEquals("181", v.settings().getOrDefault("pairs", "181"), method);
            assertTrue(r.out().contains("training " + method + " on 181 pairs, layer 2: 1 epochs, batch 64"), r.out());
        }
        if (method.equals("cdas") || method.equals("das")) {
            assertTrue(r.out().contains("on all training pairs: "), r.out());
        }
    }
}
