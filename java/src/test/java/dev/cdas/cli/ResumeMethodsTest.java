package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.TrainingCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Resuming continues the interrupted run bit for bit for every trained method, at a minibatch size
 * above 1: RePS and BiPO compute each sequence's unsteered reference log-probability once, beside
 * the other new sequences of the minibatch that first needs it (so its rounding depends on that
 * minibatch), and BiPO's sequences can first appear in any epoch; CDAS caches the states that do not
 * depend on w. The finished run is resumed from its last checkpoint (one step before the end), so
 * the resumed run redoes the last step after replaying the five before it.
 */
class ResumeMethodsTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"reps", "bipo", "loreft", "cdas"})
    void resumingAFinishedRunGivesItsParametersBitForBit(String method) throws IOException {
        Path data = dir.resolve("six.jsonl");
        Files.write(data, Files.readAllLines(CliSupport.demoRoot().resolve(CliSupport.DEMO_HELDOUT)).subList(0, 6));
        Path out = dir.resolve(method + ".safetensors");
        TrainSteerObjectiveCommandTest.Run first = TrainSteerObjectiveCommandTest.run(train(method, data, out));
        assertEquals(0, first.exit(), first.out() + first.err());
        Path ck = dir.resolve(method + ".checkpoint.safetensors");
        assertTrue(Files.isRegularFile(ck), "a checkpoint beside --out: " + first.out() + first.err());
        assertEquals(5, TrainingCheckpoint.read(ck).step(), "the last checkpoint is one step before the end (6 steps)");
        SteeringVectorFile was = SteeringVectorFile.read(out);

        List<String> again = new ArrayList<>(List.of(train(method, data, out)));
        again.add("--resume");
        TrainSteerObjectiveCommandTest.Run resumed = TrainSteerObjectiveCommandTest.run(again.toArray(String[]::new));
        assertEquals(0, resumed.exit(), resumed.out() + resumed.err());
        assertTrue(resumed.out().contains("(resumed from the checkpoint beside --out)"), resumed.out());
        SteeringVectorFile now = SteeringVectorFile.read(out);
        assertArrayEquals(was.w(), now.w(), method + ": resuming the finished run redoes its last step exactly");
        assertArrayEquals(was.loreft(), now.loreft(), method + ": and LoReFT's edits");
    }

    private static String[] train(String method, Path data, Path out) {
        return new String[] {"train", "--method", method, "--model",
            CliSupport.demoRoot().resolve(CliSupport.DEMO_MODEL).toString(), "--data", data.toString(), "--layer", "1",
            "--out", out.toString(), "--epochs", "3", "--batch", "3", "--max-response-tokens", "12", "--threads", "1",
            "--dtype", "bf16", "--checkpoint-every", "1"};
    }
}
