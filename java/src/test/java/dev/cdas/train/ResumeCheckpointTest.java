package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 16 item 9: resume finds the checkpoint whatever the interval, and refuses one inconsistent with the run. */
class ResumeCheckpointTest {
    @TempDir
    Path dir;

    private static TrainingSettings settings() {
        return TrainingSettings.defaults().withEpochs(2).withBatchSize(4).withLr(0.05).withRank(1).withSeed(5);
    }

    /** Trains with a checkpoint every 2 steps and stops (a crash) at the 5th step: the checkpoint is at step 4. */
    private Path interruptedRun(List<ConceptPair> pairs) {
        Path ck = dir.resolve("v.checkpoint.safetensors");
        Objective crashing = HiddenDirectionObjective.crashingAt(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), 5);
        assertThrows(IllegalStateException.class, () -> new Trainer(crashing, settings().withCheckpointEvery(2))
                .train(pairs, new Trainer.Outputs(ck, null, null, null), false));
        return ck;
    }

    @Test
    void resumeFindsTheCheckpointWithoutTheInterval() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        Path ck = interruptedRun(pairs);
        // the command's paths: --resume without --checkpoint-every still names the checkpoint beside --out
        TrainJob.Spec spec = TrainJob.Spec.beside(dir.resolve("pairs.jsonl"), null, settings(), 1, "m", "cdas",
                dir.resolve("v.safetensors"), true);
        assertEquals(ck, spec.checkpoint());
        Trainer.Run whole = new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), settings())
                .train(pairs, Trainer.Outputs.none(), false);
        Trainer.Run resumed = new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), settings())
                .train(pairs, new Trainer.Outputs(spec.checkpoint(), null, null, null), true);
        assertTrue(resumed.resumed());
        assertArrayEquals(whole.w(), resumed.w());
        assertEquals(whole.log().entries(), resumed.log().entries());
        // without --resume, no checkpoint path unless checkpoints are written
        assertEquals(null, TrainJob.Spec.beside(dir.resolve("pairs.jsonl"), null, settings(), 1, "m", "cdas",
                dir.resolve("v.safetensors"), false).checkpoint());
    }

    @Test
    void inconsistentCheckpointsAreRefused() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        Path ck = interruptedRun(pairs);
        TrainingCheckpoint good = TrainingCheckpoint.read(ck);
        assertEquals(4, good.step());
        List<TrainingCheckpoint> forged = List.of(
                new TrainingCheckpoint(good.w(), good.adamM(), good.adamV(), 2_000_000_000L, 2_000_000_000L,
                        good.epochRngState(), good.rank(), good.dimension(), good.identity(), good.history()),
                new TrainingCheckpoint(good.w(), good.adamM(), good.adamV(), -7, -7,
                        good.epochRngState(), good.rank(), good.dimension(), good.identity(), good.history()),
                new TrainingCheckpoint(good.w(), good.adamM(), good.adamV(), 3, good.step(),
                        good.epochRngState(), good.rank(), good.dimension(), good.identity(), good.history()),
                new TrainingCheckpoint(good.w(), good.adamM(), new float[good.adamV().length], good.adamStep(), good.step(),
                        good.epochRngState(), good.rank(), good.dimension(), good.identity(), good.history().subList(0, 2)));
        List<String> expected = List.of("it is at step 2000000000, but this run has steps 0..7",
                "it is at step -7, but this run has steps 0..7", "its optimiser step 3 differs from its step 4",
                "its loss history has 2 entries for 4 steps");
        for (int i = 0; i < forged.size(); i++) {
            forged.get(i).write(ck);
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () ->
                    new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), settings())
                            .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
            assertEquals(ck + ": not a checkpoint of this run: " + expected.get(i)
                    + "; delete it or start afresh instead of resuming", e.getMessage());
        }
    }
}
