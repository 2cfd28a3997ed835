package dev.cdas.train;

import dev.cdas.NonFiniteException;
import dev.cdas.InvalidArgumentException;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    @TempDir
    Path dir;

    private static TrainingSettings settings(int epochs, int batch, double lr, int rank) {
        return TrainingSettings.defaults().withEpochs(epochs).withBatchSize(batch).withLr(lr).withRank(rank).withSeed(5);
    }

    @Test
    void findsTheHiddenDirection() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(40);
        HiddenDirectionObjective obj = new HiddenDirectionObjective(64, 1, 40, 1.0, 99);
        List<String> progress = new java.util.ArrayList<>();
        ProgressListener recorder = new ProgressListener() {
            @Override
            public void progress(String task, long done, long total, String detail) {
                progress.add(task + " " + done + "/" + total + " " + detail);
            }

            @Override
            public void finished(String task) {
                progress.add("finished " + task);
            }
        };
        Trainer.Run run = new Trainer(obj, settings(30, 8, 0.05, 1)).train(pairs,
                new Trainer.Outputs(null, dir.resolve("loss.csv"), dir.resolve("loss.png"), recorder), false);
        assertEquals(30 * 5, run.steps());
        assertEquals(150, obj.calls);
        double before = run.log().entries().getFirst().loss();
        double after = run.log().entries().getLast().loss();
        assertTrue(before > 0.8 && after < 0.45, "loss " + before + " -> " + after);
        assertTrue(obj.alignment(run.w()) > 0.97, "alignment " + obj.alignment(run.w()));
        double norm = GradientClipping.norm(run.w());
        assertEquals(1.0, norm, 1e-6);

        List<String> csv = Files.readAllLines(dir.resolve("loss.csv"));
        assertEquals("step,epoch,loss,grad_norm,lr,tokens", csv.getFirst());
        assertEquals(151, csv.size());
        assertTrue(csv.get(1).startsWith("0,0,"));
        byte[] png = Files.readAllBytes(dir.resolve("loss.png"));
        assertEquals((byte) 0x89, png[0]);
        assertEquals('P', png[1]);
        // One call per optimiser step, each with the step's loss and throughput, then the end.
        assertEquals(150 + 1, progress.size(), progress.toString());
        assertTrue(progress.getFirst().matches("train 1/150 loss \\d+\\.\\d{4}  \\d+ tok/s"), progress.getFirst());
        assertTrue(progress.get(149).startsWith("train 150/150 loss "), progress.get(149));
        assertEquals("finished train", progress.getLast());
        assertNoTemporaryFiles();
    }

    @Test
    void findsAHiddenSubspaceAtRankTwo() throws IOException {
        HiddenDirectionObjective obj = new HiddenDirectionObjective(32, 2, 24, 0.5, 3);
        Trainer.Run run = new Trainer(obj, settings(40, 6, 0.08, 2))
                .train(HiddenDirectionObjective.pairs(24), Trainer.Outputs.none(), false);
        assertTrue(obj.alignment(run.w()) > 0.97, "alignment " + obj.alignment(run.w()));
        for (int r = 0; r < 2; r++) {
            float[] row = Arrays.copyOfRange(run.w(), r * 32, (r + 1) * 32);
            assertEquals(1.0, GradientClipping.norm(row), 1e-6);
        }
    }

    @Test
    void sameSeedSameTrajectory() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        Trainer.Run a = new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), settings(3, 4, 0.05, 1))
                .train(pairs, Trainer.Outputs.none(), false);
        Trainer.Run b = new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), settings(3, 4, 0.05, 1))
                .train(pairs, Trainer.Outputs.none(), false);
        assertArrayEquals(a.w(), b.w());
        assertEquals(a.log().entries(), b.log().entries());
    }

    @Test
    void resumeGivesTheUninterruptedTrajectory() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13); // 4 batches per epoch, the last one short
        TrainingSettings s = settings(4, 4, 0.05, 2).withCheckpointEvery(3);
        Trainer.Run whole = new Trainer(new HiddenDirectionObjective(16, 2, 13, 1.0, 1), s)
                .train(pairs, Trainer.Outputs.none(), false);
        for (int crashAfter : new int[] {4, 8, 14}) { // mid-epoch, at an epoch boundary, late
            Path ck = dir.resolve("ck" + crashAfter + ".safetensors");
            Objective crashing = HiddenDirectionObjective.crashingAt(new HiddenDirectionObjective(16, 2, 13, 1.0, 1), crashAfter);
            assertThrows(IllegalStateException.class, () -> new Trainer(crashing, s)
                    .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
            TrainingCheckpoint saved = TrainingCheckpoint.read(ck);
            assertEquals(crashAfter / 3 * 3, saved.step());
            Trainer.Run resumed = new Trainer(new HiddenDirectionObjective(16, 2, 13, 1.0, 1), s)
                    .train(pairs, new Trainer.Outputs(ck, dir.resolve("loss.csv"), null, null), true);
            assertTrue(resumed.resumed());
            assertArrayEquals(whole.w(), resumed.w(), "crash after " + crashAfter);
            assertEquals(whole.log().entries(), resumed.log().entries());
            assertEquals(whole.steps() + 1, Files.readAllLines(dir.resolve("loss.csv")).size());
        }
        assertNoTemporaryFiles();
    }

    @Test
    void theExitCheckpointResumesToTheUninterruptedTrajectoryWhereverTheRunStops() throws IOException {
        // The exit hook (SIGTERM, Ctrl-C) may run between apply and the next step's next(), or after
        // next() has drawn a new epoch's order: either way its checkpoint resumes exactly. 13 pairs,
        // batch 4: 4 steps per epoch; stops mid-epoch (5, 6) and at epoch boundaries (4, 8), each
        // before and after next(); a checkpoint interval no step reaches.
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        TrainingSettings s = settings(4, 4, 0.05, 2).withCheckpointEvery(1000);
        Trainer.Run whole = new Trainer(new HiddenDirectionObjective(16, 2, 13, 1.0, 1), s).train(pairs, Trainer.Outputs.none(), false);
        for (int stopAt : new int[] {4, 5, 6, 8}) {
            for (boolean drawn : new boolean[] {false, true}) {
                Path ck = dir.resolve("exit-" + stopAt + "-" + drawn + ".safetensors");
                HiddenDirectionObjective obj = new HiddenDirectionObjective(16, 2, 13, 1.0, 1);
                List<String> said = new java.util.ArrayList<>();
                ProgressListener listener = new ProgressListener() {
                    @Override
                    public void progress(String task, long done, long total, String detail) {
                    }

                    @Override
                    public void interrupted(String task, long done, long total, String what) {
                        said.add(task + " " + done + "/" + total + ": " + what);
                    }
                };
                Trainer trainer = new Trainer(obj, s);
                try (Trainer.Session session = trainer.start(pairs, new Trainer.Outputs(ck, null, null, listener), false)) {
                    for (int i = 0; i < stopAt; i++) {
                        Batch b = session.next();
                        session.apply(obj.lossAndGradient(session.directions(), b));
                    }
                    if (drawn) {
                        session.next(); // the next step's minibatch (a new epoch's order at a boundary)
                    }
                    session.checkpointOnExit();
                    session.checkpointOnExit(); // a second call: the checkpoint of this step is there already
                }
                String what = stopAt + "/16: checkpoint of this step written to " + ck;
                assertEquals(List.of("train " + what, "train " + stopAt + "/16: the checkpoint of this step is " + ck), said);
                assertEquals(stopAt, TrainingCheckpoint.read(ck).step());
                Trainer.Run resumed = new Trainer(new HiddenDirectionObjective(16, 2, 13, 1.0, 1), s)
                        .train(pairs, new Trainer.Outputs(ck, null, null, null), true);
                assertArrayEquals(whole.w(), resumed.w(), "stopped after " + stopAt + (drawn ? ", next epoch drawn" : ""));
                assertEquals(whole.log().entries(), resumed.log().entries());
            }
        }
        assertNoTemporaryFiles();
    }

    @Test
    void resumeRefusesAnotherRunsCheckpoint() throws IOException {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(13);
        TrainingSettings s = settings(2, 4, 0.05, 1).withCheckpointEvery(2);
        Path ck = dir.resolve("ck.safetensors");
        new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), s).train(pairs, new Trainer.Outputs(ck, null, null, null), false);
        assertTrue(Files.exists(ck));
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () ->
                new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), s.withLr(0.1))
                        .train(pairs, new Trainer.Outputs(ck, null, null, null), true));
        assertTrue(e.getMessage().contains("lr 0.05 -> 0.1"), e.getMessage());
        assertThrows(InvalidArgumentException.class, () ->
                new Trainer(new HiddenDirectionObjective(16, 1, 13, 1.0, 1), s)
                        .train(HiddenDirectionObjective.pairs(12), new Trainer.Outputs(ck, null, null, null), true));
    }

    @Test
    void badObjectiveResultsStopTheRunWithoutOutputs() {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(8);
        Trainer.Outputs out = new Trainer.Outputs(dir.resolve("ck.safetensors"), dir.resolve("loss.csv"),
                dir.resolve("loss.png"), null);
        Objective nan = new Objective() {
            public int dimension() {
                return 4;
            }

            public Result lossAndGradient(float[] w, Batch b) {
                return new Result(Double.NaN, new float[4], 1);
            }
        };
        assertThrows(NonFiniteException.class, () -> new Trainer(nan, settings(1, 4, 0.1, 1)).train(pairs, out, false));
        Objective wrongSize = new Objective() {
            public int dimension() {
                return 4;
            }

            public Result lossAndGradient(float[] w, Batch b) {
                return new Result(1.0, new float[3], 1);
            }
        };
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> new Trainer(wrongSize, settings(1, 4, 0.1, 1)).train(pairs, out, false));
        assertTrue(e.getMessage().contains("size 3, expected 4"), e.getMessage());
        assertFalse(Files.exists(dir.resolve("loss.csv")));
        assertFalse(Files.exists(dir.resolve("loss.png")));
        assertNoTemporaryFiles();
    }

    @Test
    void batchesCoverEachPairOncePerEpochAndBuildBothDirections() {
        List<ConceptPair> pairs = HiddenDirectionObjective.pairs(10);
        Rng rng = new Rng(1);
        List<Batch> e0 = Batches.epoch(pairs, 4, 0, rng);
        List<Batch> e1 = Batches.epoch(pairs, 4, 1, rng);
        assertEquals(List.of(4, 4, 2), e0.stream().map(Batch::size).toList());
        int[] all = e0.stream().flatMapToInt(b -> Arrays.stream(b.pairIndices())).sorted().toArray();
        assertArrayEquals(new int[] {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, all);
        assertFalse(Arrays.equals(e0.getFirst().pairIndices(), e1.getFirst().pairIndices()));
        assertEquals(3, e1.getFirst().step());
        Batch b = e0.getFirst();
        ConceptPair p = b.pairs().getFirst();
        DirectionExample inject = b.inject().getFirst();
        assertEquals(List.of(p.negativeInput(), p.positiveInput(), p.positiveOutput()),
                List.of(inject.baseInput(), inject.sourceInput(), inject.response()));
        DirectionExample suppress = b.suppress().getFirst();
        assertEquals(List.of(p.positiveInput(), p.negativeInput(), p.negativeOutput()),
                List.of(suppress.baseInput(), suppress.sourceInput(), suppress.response()));
    }

    @Test
    void steeringVectorFileRoundTrips() throws IOException {
        Path f = dir.resolve("out/vector.safetensors");
        SteeringVectorFile v = new SteeringVectorFile(new float[] {0.6f, 0.8f, 0f, 0f, 1f, 0f}, 2, 3, 4,
                new double[] {2.5, -1.0}, new double[] {0.125, 0.0}, "demo/model", "food", "cdas",
                TrainingSettings.defaults().toMetadata());
        v.write(f);
        SteeringVectorFile back = SteeringVectorFile.read(f);
        assertArrayEquals(v.w(), back.w());
        assertEquals(2, back.rank());
        assertEquals(4, back.layer());
        assertArrayEquals(new double[] {2.5, -1.0}, back.factorPositive());
        assertEquals("0.04", back.settings().get("lr"));
        assertEquals("food", back.metadata().get("concept"));
        assertEquals("2.5,-1.0", back.metadata().get("factor_positive"));
        SteeringVectorFile one = new SteeringVectorFile(new float[] {1f, 0f}, 1, 2, 0, new double[] {3.0},
                new double[] {-0.5}, "m", "c", "cdas", java.util.Map.of());
        one.write(f);
        assertEquals(1, SteeringVectorFile.read(f).rank());
        assertEquals("3.0", SteeringVectorFile.read(f).metadata().get("factor_positive"));
        assertThrows(InvalidArgumentException.class, () -> new SteeringVectorFile(new float[3], 1, 2, 0,
                new double[] {1}, new double[] {1}, "m", "c", "cdas", java.util.Map.of()));
        assertNoTemporaryFiles();
    }

    private void assertNoTemporaryFiles() {
        try (Stream<Path> files = Files.walk(dir)) {
            List<Path> tmp = files.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
            assertTrue(tmp.isEmpty(), "temporary files left: " + tmp);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }
}
