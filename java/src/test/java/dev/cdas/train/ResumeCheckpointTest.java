package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 16 item 9: resume finds the checkpoint whatever the interval, and refuses one inconsistent with the run,
 * or one trained on another device kind or dtype ({@link Trainer#COMPUTE}).
 */
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
        // without --resume and without an interval, the same path: where a stopped run writes its exit checkpoint
        assertEquals(ck, TrainJob.Spec.beside(dir.resolve("pairs.jsonl"), null, settings(), 1, "m", "cdas",
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

    /** {@code inner} as an objective computing in {@code compute} (the label a model-backed objective gives). */
    private static Objective computingIn(Objective inner, String compute) {
        return new Objective() {
            @Override
            public int dimension() {
                return inner.dimension();
            }

            @Override
            public Result lossAndGradient(float[] w, Batch batch) {
                return inner.lossAndGradient(w, batch);
            }

            @Override
            public String compute() {
                return compute;
            }
        };
    }

    private Path interruptedRunComputingIn(List<ConceptPair> pairs, String compute) {
        Path ck = dir.resolve("v.checkpoint.safetensors");
        Objective crashing = HiddenDirectionObjective.crashingAt(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), 5);
        assertThrows(IllegalStateException.class, () -> new Trainer(computingIn(crashing, compute), settings().withCheckpointEvery(2))
                .train(pairs, new Trainer.Outputs(ck, null, null, null), false));
        return ck;
    }

    @Test
    void aCheckpointFromAnotherDtypeIsRefusedAndOneFromBeforeTheRecordResumes() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        Trainer.Run whole = new Trainer(computingIn(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), "cpu f16"), settings())
                .train(pairs, Trainer.Outputs.none(), false);

        Path ck = interruptedRunComputingIn(pairs, "cpu f16");
        assertEquals("cpu f16", TrainingCheckpoint.read(ck).identity().get(Trainer.COMPUTE));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () ->
                new Trainer(computingIn(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), "cpu f32"), settings())
                        .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
        assertTrue(e.getMessage().startsWith(ck + " was trained computing in cpu f16 but this run computes in cpu f32,"), e.getMessage());
        // other settings as well: the general message, naming every difference
        InvalidArgumentException both = assertThrows(InvalidArgumentException.class, () ->
                new Trainer(computingIn(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), "cuda f16"), settings().withLr(0.01))
                        .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
        assertTrue(both.getMessage().contains("was made by a different run: ") && both.getMessage().contains("compute cpu f16 -> cuda f16")
                && both.getMessage().contains("lr "), both.getMessage());

        Trainer.Run same = new Trainer(computingIn(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), "cpu f16"), settings())
                .train(pairs, new Trainer.Outputs(ck, null, null, null), true);
        assertTrue(same.resumed());
        assertArrayEquals(whole.w(), same.w());

        // a checkpoint written before the compute kind was recorded resumes wherever it runs
        Path old = interruptedRunComputingIn(pairs, "cpu f16");
        TrainingCheckpoint c = TrainingCheckpoint.read(old);
        Map<String, String> identity = new LinkedHashMap<>(c.identity());
        identity.remove(Trainer.COMPUTE);
        new TrainingCheckpoint(c.w(), c.adamM(), c.adamV(), c.adamStep(), c.step(), c.epochRngState(), c.rank(), c.dimension(),
                identity, c.history()).write(old);
        Trainer.Run resumedOld = new Trainer(computingIn(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), "cpu f32"), settings())
                .train(pairs, new Trainer.Outputs(old, null, null, null), true);
        assertTrue(resumedOld.resumed());
        assertArrayEquals(whole.w(), resumedOld.w());
    }
}
