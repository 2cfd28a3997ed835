package dev.cdas.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.DType;
import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data parallel over torch c10d (Gloo on 127.0.0.1) with the ranks as threads of this JVM, each its
 * own process group and model: the all-reduce against a plain sum, and training against one
 * process. scripts/test-distributed.sh runs the same with real processes, by hand and under torchrun.
 */
class DataParallelTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static ProcessGroup.Launch byHand(int port, int rank, int world) {
        return ProcessGroup.Launch.fromEnvironment(Map.of("MASTER_ADDR", "127.0.0.1", "MASTER_PORT", Integer.toString(port),
                "RANK", Integer.toString(rank), "WORLD_SIZE", Integer.toString(world)));
    }

    interface RankBody<T> {
        T run(ProcessGroup group) throws Exception;
    }

    /** Runs {@code body} as every rank of a fresh group of {@code world} threads; the results by rank. */
    static <T> List<T> ranks(int world, RankBody<T> body) throws Exception {
        int port = freePort();
        ExecutorService pool = Executors.newFixedThreadPool(world);
        try {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                futures.add(pool.submit(() -> {
                    try (ProcessGroup g = ProcessGroup.join(byHand(port, rank, world), ProcessGroup.Backend.GLOO, 0, TIMEOUT)) {
                        return body.run(g);
                    }
                }));
            }
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get(3, TimeUnit.MINUTES));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void launchFromTheEnvironment() {
        ProcessGroup.Launch hand = byHand(29511, 0, 2);
        assertTrue(hand.hostStore(), "by hand, rank 0 hosts the store");
        assertEquals("cdas/attempt_0", hand.storePrefix());
        assertFalse(byHand(29511, 1, 2).hostStore());
        ProcessGroup.Launch torchrun = ProcessGroup.Launch.fromEnvironment(Map.of("MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "29500",
                "RANK", "0", "WORLD_SIZE", "2", "LOCAL_RANK", "1", "TORCHELASTIC_USE_AGENT_STORE", "True",
                "TORCHELASTIC_RESTART_COUNT", "3", "TORCHELASTIC_RUN_ID", "x"));
        assertFalse(torchrun.hostStore(), "torchrun's agent hosts the store");
        assertEquals(1, torchrun.localRank());
        assertEquals("cdas/attempt_3", torchrun.storePrefix());
        assertTrue(torchrun.source().startsWith("torchrun: RANK=0, WORLD_SIZE=2"), torchrun.source());

        InvalidArgumentException missing = assertThrows(InvalidArgumentException.class,
                () -> ProcessGroup.Launch.fromEnvironment(Map.of("RANK", "0", "WORLD_SIZE", "2")));
        assertTrue(missing.getMessage().endsWith("missing: MASTER_ADDR, MASTER_PORT"), missing.getMessage());
        InvalidArgumentException outside = assertThrows(InvalidArgumentException.class, () -> byHand(29511, 2, 2));
        assertTrue(outside.getMessage().contains("RANK 2 is outside 0..1"), outside.getMessage());
        InvalidArgumentException port = assertThrows(InvalidArgumentException.class, () -> ProcessGroup.Launch.fromEnvironment(
                Map.of("MASTER_ADDR", "h", "MASTER_PORT", "http", "RANK", "0", "WORLD_SIZE", "1")));
        assertTrue(port.getMessage().contains("MASTER_PORT must be an integer"), port.getMessage());
    }

    @Test
    void allReduceIsTheSumOverRanks() throws Exception {
        int world = 3;
        int n = 1000;
        float[][] inputs = new float[world][n];
        Random random = new Random(17);
        double[] expected = new double[n];
        for (int r = 0; r < world; r++) {
            for (int i = 0; i < n; i++) {
                inputs[r][i] = (float) random.nextGaussian();
                expected[i] += inputs[r][i];
            }
        }
        List<float[]> results = ranks(world, g -> {
            assertEquals(world, g.worldSize());
            float[] buf = inputs[g.rank()].clone();
            g.allReduceSum(buf);
            g.barrier();
            return buf;
        });
        for (int r = 0; r < world; r++) {
            assertArrayEquals(results.get(0), results.get(r), "every rank ends with the same buffer");
            for (int i = 0; i < n; i++) {
                assertEquals(expected[i], results.get(r)[i], 1e-5, "element " + i + " on rank " + r);
            }
        }
    }

    private static Path demo() {
        for (Path p = Path.of("").toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("demo/model/config.json"))) {
                return p.resolve("demo");
            }
        }
        throw new IllegalStateException("demo/ not found above " + Path.of("").toAbsolutePath());
    }

    private static float[] train(Model model, ModelFolder folder, List<ConceptPair> pairs, TrainingSettings s, Collective group)
            throws IOException {
        return train(model, folder, pairs, s, group, null, false, -1);
    }

    /** crashAt >= 0: the objective throws at that call (0-based) on every rank, before its all-reduce. */
    private static float[] train(Model model, ModelFolder folder, List<ConceptPair> pairs, TrainingSettings s, Collective group,
            Path checkpoint, boolean resume, int crashAt) throws IOException {
        CdasObjective local = new CdasObjective(model, folder.prompts(), 1, s.maxResponseTokens());
        Objective objective = group == null ? local : new DataParallelObjective(local, group);
        if (crashAt >= 0) {
            objective = HiddenDirectionObjective.crashingAt(objective, crashAt);
        }
        return new Trainer(objective, s, group).train(pairs, new Trainer.Outputs(checkpoint, null, null, null), resume).w();
    }

    private static double maxDiff(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double m = 0;
        for (int i = 0; i < a.length; i++) {
            m = Math.max(m, Math.abs(a[i] - b[i]));
        }
        return m;
    }

    /**
     * Two ranks stop at step 3 of 6 (a crash on both); only rank 0 wrote the checkpoint (at step 2);
     * both resume from it and end with the vector of one uninterrupted process.
     */
    @Test
    void twoRanksResumeFromRankZerosCheckpoint() throws Exception {
        Path demo = demo();
        List<ConceptPair> pairs = PairReader.read(demo.resolve("data/startrek.jsonl")).subList(0, 5);
        TrainingSettings s = TrainingSettings.defaults().withEpochs(3).withBatchSize(4).withLr(0.05).withSeed(4)
                .withMaxResponseTokens(8).withCheckpointEvery(2);
        RuntimeOptions f32 = RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1);
        Path shared = dir.resolve("v.checkpoint.safetensors");
        Path rankOnesOwn = dir.resolve("rank1.checkpoint.safetensors");
        float[] single;
        List<float[]> ws;
        try (ModelFolder folder = ModelFolder.open(demo.resolve("model"));
             Model model = Model.create(folder.config(), folder.weights(), null, f32)) {
            single = train(model, folder, pairs, s.withCheckpointEvery(0), null);
            List<String> crashes = ranks(2, g -> {
                try {
                    train(model, folder, pairs, s, g, g.rank() == 0 ? shared : rankOnesOwn, false, 3);
                    return "no crash";
                } catch (IllegalStateException e) {
                    return e.getMessage();
                }
            });
            assertEquals(List.of("simulated crash", "simulated crash"), crashes);
            assertTrue(Files.exists(shared), "rank 0 wrote its checkpoint");
            assertFalse(Files.exists(rankOnesOwn), "rank 1 wrote no checkpoint");
            ws = ranks(2, g -> train(model, folder, pairs, s, g, shared, true, -1));
        }
        assertArrayEquals(ws.get(0), ws.get(1), "both ranks end with the same vector");
        double diff = maxDiff(single, ws.get(0));
        assertTrue(diff <= 1e-5, "max |w_resumed 2 ranks - w_1 process| = " + diff);
    }

    /**
     * 5 pairs in minibatches of 4 over 2 epochs: every epoch's last minibatch has one pair, so rank
     * 0's slice of it is empty (it still joins the all-reduce). Both ranks end with one vector, the
     * single-process one within 1e-5.
     */
    @Test
    void twoRanksTrainTheVectorOfOneProcess() throws Exception {
        Path demo = demo();
        List<ConceptPair> pairs = PairReader.read(demo.resolve("data/startrek.jsonl")).subList(0, 5);
        TrainingSettings s = TrainingSettings.defaults().withEpochs(2).withBatchSize(4).withLr(0.05).withSeed(3)
                .withMaxResponseTokens(8);
        assertEquals(0, DataParallelObjective.slice(1, 0, 2)[1], "the 1-pair minibatch leaves rank 0 empty");
        RuntimeOptions f32 = RuntimeOptions.defaults().withDtype(DType.F32).withThreads(1);
        float[] single;
        List<float[]> ws;
        // One model for both ranks: its calls are serialised (docs/concurrency.md), the ranks' objectives,
        // state caches and process groups are their own.
        try (ModelFolder folder = ModelFolder.open(demo.resolve("model"));
             Model model = Model.create(folder.config(), folder.weights(), null, f32)) {
            single = train(model, folder, pairs, s, null);
            ws = ranks(2, g -> train(model, folder, pairs, s, g));
        }
        assertArrayEquals(ws.get(0), ws.get(1), "both ranks end with the same vector");
        double maxDiff = 0;
        for (int i = 0; i < single.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(single[i] - ws.get(0)[i]));
        }
        assertTrue(maxDiff <= 1e-5, "max |w_2ranks - w_1process| = " + maxDiff);
        // and the run moved w at all, so equality is not that of two untrained vectors
        float[] initial = Directions.randomUnit(1, single.length, new Rng(3));
        double moved = 0;
        for (int i = 0; i < single.length; i++) {
            moved = Math.max(moved, Math.abs(single[i] - initial[i]));
        }
        assertTrue(moved > 1e-3, "training moved w by " + moved);
    }
}
