package dev.cdas.fanout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.train.Batch;
import dev.cdas.train.Objective;
import dev.cdas.train.Rng;
import dev.cdas.train.SteeringFactorEstimator;
import dev.cdas.train.TrainJob;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The fan-out on a synthetic objective (no model): results independent of shard and company,
 * atomic per-concept outputs, skipping and retrying on a rerun, failures isolated, merging.
 */
class ConceptFanOutTest {
    static final int DIM = 16;

    @TempDir
    Path dir;

    /** Concepts 2, 5, 9, 14 with 6, 3, 4, 2 pairs (ids not contiguous, sizes not sorted). */
    static List<Concept> concepts() {
        long[] ids = {2, 5, 9, 14};
        int[] sizes = {6, 3, 4, 2};
        List<ConceptPair> pairs = new ArrayList<>();
        for (int c = 0; c < ids.length; c++) {
            for (int i = 0; i < sizes[c]; i++) {
                pairs.add(new ConceptPair("x" + c + i, "y" + c + i, "xc" + c + i, "yc" + c + i, "concept " + ids[c], ids[c],
                        "row " + pairs.size()));
            }
        }
        try {
            return Concept.group(pairs, Path.of("synthetic.jsonl"));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    /** Loss -mean(w . x_p) over the batch, x_p a fixed random vector per pair text: deterministic, seed-sensitive through w0 and the order. */
    static Objective objective() {
        return new Objective() {
            @Override
            public int dimension() {
                return DIM;
            }

            @Override
            public Result lossAndGradient(float[] w, Batch batch) {
                float[] g = new float[DIM];
                double loss = 0;
                for (ConceptPair p : batch.pairs()) {
                    Rng r = new Rng(p.positiveOutput().hashCode());
                    for (int i = 0; i < DIM; i++) {
                        double x = r.nextGaussian();
                        loss -= w[i] * x / batch.size();
                        g[i] -= (float) (x / batch.size());
                    }
                }
                return new Result(loss, g, batch.size());
            }
        };
    }

    static final SteeringFactorEstimator FACTORS = (w, rank, pairs) -> new SteeringFactorEstimator.Factors(
            new double[] {pairs.size()}, new double[] {-1});

    /** Counts calls per concept; throws for the concept ids in {@code failing} (until removed). */
    static final class CountingFitter implements ConceptFanOut.Fitter {
        final Map<Long, Integer> calls = new HashMap<>();
        final java.util.Set<Long> failing = new java.util.HashSet<>();

        @Override
        public TrainJob.Result fit(TrainJob.Spec spec, Concept c, dev.cdas.train.ProgressListener progress) throws IOException {
            calls.merge(c.id(), 1, Integer::sum);
            if (failing.contains(c.id())) {
                throw new InvalidArgumentException("simulated failure of concept " + c.id());
            }
            return TrainJob.run(spec, c.pairs(), c.name(), objective(), FACTORS, progress);
        }
    }

    ConceptFanOut.Plan plan(List<Concept> selected, Shard shard, Path out) {
        TrainingSettings s = TrainingSettings.defaults().withEpochs(2).withBatchSize(2).withLr(0.05).withSeed(7);
        return new ConceptFanOut.Plan(Path.of("synthetic.jsonl"), "abc", selected, shard, s, 1, "model", "cdas", "cpu f32", out);
    }

    static byte[] bytes(Path p) throws IOException {
        return Files.readAllBytes(p);
    }

    @Test
    void eachTrainedConceptIsHandedOnOnceItsManifestLineIsWrittenAndSkippedOnesAreNot() throws IOException {
        List<Concept> all = concepts();
        Path out = dir.resolve("recorded");
        CountingFitter fitter = new CountingFitter();
        fitter.failing.add(all.get(1).id());
        List<Long> handed = new ArrayList<>();
        ConceptFanOut.Outcome first = ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), out), fitter, null, e -> {
            try {
                // on disk already when handed on: a log line never names a concept the manifest lacks
                assertEquals(e.status(), Manifest.read(out.resolve(Manifest.FILE)).get(e.conceptId()).status());
            } catch (IOException ex) {
                throw new java.io.UncheckedIOException(ex);
            }
            handed.add(e.conceptId());
        });
        assertEquals(all.stream().map(Concept::id).toList(), handed, "every concept once, in shard order, failed ones too");
        assertEquals(1, first.failed());

        handed.clear();
        fitter.failing.clear();
        ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), out), fitter, null, e -> handed.add(e.conceptId()));
        assertEquals(List.of(all.get(1).id()), handed, "a rerun hands on only the concept it trained (the failed one)");
    }

    @Test
    void aConceptsVectorDoesNotDependOnItsCompanyOrShard() throws IOException {
        List<Concept> all = concepts();
        Path together = dir.resolve("all");
        ConceptFanOut.Outcome o = ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), together), new CountingFitter(), null);
        assertEquals(4, o.entries().size());
        assertEquals(0, o.failed(), o.entries().toString());

        Concept nine = all.get(2);
        Path alone = dir.resolve("alone");
        ConceptFanOut.run(plan(List.of(nine), new Shard(0, 1, "test"), alone), new CountingFitter(), null);
        assertArrayEquals(bytes(together.resolve(ConceptFanOut.vectorFile(nine))), bytes(alone.resolve(ConceptFanOut.vectorFile(nine))));

        List<Path> shardDirs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            shardDirs.add(dir.resolve("shard" + i));
            ConceptFanOut.run(plan(all, new Shard(i, 2, "test"), shardDirs.get(i)), new CountingFitter(), null);
        }
        Path merged = dir.resolve("merged");
        ShardMerge.Report r = ShardMerge.merge(shardDirs, merged);
        assertTrue(r.complete(), r.toString());
        assertEquals(List.of("0/2", "1/2"), r.shards());
        for (Concept c : all) {
            assertArrayEquals(bytes(together.resolve(ConceptFanOut.vectorFile(c))), bytes(merged.resolve(ConceptFanOut.vectorFile(c))),
                    "concept " + c);
            assertTrue(Files.isRegularFile(merged.resolve("vectors/" + c.fileStem() + ".loss.csv")));
            assertTrue(Files.isRegularFile(merged.resolve("vectors/" + c.fileStem() + ".loss.png")));
        }
        // Different concepts get different seeds, so different vectors even on equal data.
        assertNotEquals(ConceptFanOut.conceptSeed(7, 2), ConceptFanOut.conceptSeed(7, 5));
        assertNotEquals(ConceptFanOut.conceptSeed(7, 2), ConceptFanOut.conceptSeed(8, 2));
        assertTrue(ConceptFanOut.conceptSeed(-1, Long.MIN_VALUE) >= 0);
        Map<Long, ManifestEntry> m = Manifest.read(merged.resolve(Manifest.FILE));
        assertEquals(List.of(2L, 5L, 9L, 14L), List.copyOf(m.keySet()));
        assertEquals("0/2", m.get(2L).shard(), "the biggest concept goes to shard 0");
    }

    @Test
    void aFailingConceptIsRecordedAndTheOthersRunThenARerunRetriesOnlyIt() throws IOException {
        List<Concept> all = concepts();
        Path out = dir.resolve("out");
        CountingFitter fitter = new CountingFitter();
        fitter.failing.add(5L);
        List<String> progress = new ArrayList<>();
        ConceptFanOut.Outcome first = ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), out), fitter,
                (task, done, total, detail) -> {
                    if (task.equals("concepts")) {
                        progress.add(done + "/" + total + " " + detail);
                    }
                });
        assertEquals(1, first.failed());
        assertEquals(List.of("1/4 concept 2: ok", "2/4 concept 5: failed", "3/4 concept 9: ok", "4/4 concept 14: ok"), progress);
        Map<Long, ManifestEntry> m = Manifest.read(out.resolve(Manifest.FILE));
        assertEquals(4, m.size());
        ManifestEntry failed = m.get(5L);
        assertEquals("failed", failed.status());
        assertEquals("simulated failure of concept 5", failed.error());
        assertNull(failed.file());
        assertNull(failed.finalLoss());
        assertFalse(Files.exists(out.resolve(ConceptFanOut.vectorFile(all.get(1)))));
        ManifestEntry ok = m.get(9L);
        assertEquals("ok", ok.status());
        assertEquals("vectors/9-concept-9.safetensors", ok.file());
        assertEquals("vectors/9-concept-9.loss.csv", ok.lossCurve());
        assertArrayEquals(new double[] {4}, ok.factorPositive());
        assertEquals(4, ok.steps()); // 2 epochs of 2 batches
        assertNull(ok.error());
        assertTrue(Double.isFinite(ok.finalLoss()));
        byte[] okBytes = bytes(out.resolve(ok.file()));

        fitter.failing.clear();
        ConceptFanOut.Outcome second = ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), out), fitter, null);
        assertEquals(0, second.failed());
        assertEquals(List.of(2L, 9L, 14L), second.skipped());
        assertEquals(Map.of(2L, 1, 5L, 2, 9L, 1, 14L, 1), fitter.calls, "only the failed concept ran again");
        assertEquals("ok", Manifest.read(out.resolve(Manifest.FILE)).get(5L).status());
        assertArrayEquals(okBytes, bytes(out.resolve(ok.file())));

        // A finished concept whose vector is gone is trained again.
        Files.delete(out.resolve(ok.file()));
        ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), out), fitter, null);
        assertEquals(2, fitter.calls.get(9L));
        assertArrayEquals(okBytes, bytes(out.resolve(ok.file())));
        try (var files = Files.list(out.resolve("vectors"))) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temporary files left");
        }
    }

    @Test
    void aFolderOfAnotherRunOrInUseIsRefused() throws IOException {
        List<Concept> all = concepts();
        Path out = dir.resolve("out");
        ConceptFanOut.run(plan(List.of(all.get(3)), new Shard(0, 1, "test"), out), new CountingFitter(), null);
        ConceptFanOut.Plan other = new ConceptFanOut.Plan(Path.of("synthetic.jsonl"), "abc", all, new Shard(0, 1, "test"),
                TrainingSettings.defaults().withEpochs(2).withBatchSize(2).withLr(0.05).withSeed(8), 1, "model", "cdas", "cpu f32", out);
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> ConceptFanOut.run(other, new CountingFitter(), null));
        assertTrue(e.getMessage().contains("fanout.json is of a different run (seed 8 vs 7)"), e.getMessage());

        Path busy = dir.resolve("busy");
        ConceptFanOut.Outcome o = ConceptFanOut.run(plan(List.of(all.get(3)), new Shard(0, 1, "test"), busy), (spec, c, p) -> {
            ConceptFanOut.run(plan(all, new Shard(0, 1, "test"), busy), new CountingFitter(), null);
            throw new AssertionError("the second run in the same folder should have been refused");
        }, null);
        assertTrue(o.entries().getFirst().error().contains("is in use by another train process"), o.entries().getFirst().error());
    }

    @Test
    void mergeReportsFailedAndMissingConceptsWithTheirShard() throws IOException {
        List<Concept> all = concepts();
        Path s0 = dir.resolve("s0");
        CountingFitter fitter = new CountingFitter();
        fitter.failing.add(14L);
        ConceptFanOut.run(plan(all, new Shard(0, 2, "test"), s0), fitter, null);
        // shard 0 of 2 has 2 (6 pairs) and 14 (2 pairs); shard 1 has 9 and 5 and did not run
        ShardMerge.Report r = ShardMerge.merge(List.of(s0), dir.resolve("m"));
        assertFalse(r.complete());
        assertEquals(List.of(2L), r.ok().stream().map(ManifestEntry::conceptId).toList());
        assertEquals(List.of(14L), r.failed().stream().map(ManifestEntry::conceptId).toList());
        assertEquals(List.of(new ShardMerge.Missing(5, "concept 5", "1/2"), new ShardMerge.Missing(9, "concept 9", "1/2")), r.missing());

        InvalidArgumentException same = assertThrows(InvalidArgumentException.class, () -> ShardMerge.merge(List.of(s0), s0));
        assertTrue(same.getMessage().contains("is also a shard folder"), same.getMessage());
        Files.createDirectories(dir.resolve("empty"));
        InvalidArgumentException notShard = assertThrows(InvalidArgumentException.class,
                () -> ShardMerge.merge(List.of(s0, dir.resolve("empty")), dir.resolve("m2")));
        assertTrue(notShard.getMessage().contains("has no fanout.json"), notShard.getMessage());
    }

    /**
     * The vector file's metadata is written in the order it was given (Map.copyOf's order, which
     * changes from one JVM to the next, made the same vector differ in bytes between processes).
     */
    @Test
    void vectorFileMetadataKeepsItsOrder() throws IOException {
        Map<String, String> settings = new java.util.LinkedHashMap<>();
        for (String k : "zeta alpha mu beta omega gamma nu delta xi epsilon pi eta rho theta sigma iota tau kappa".split(" ")) {
            settings.put(k, k.toUpperCase(java.util.Locale.ROOT));
        }
        Path f = dir.resolve("v.safetensors");
        new dev.cdas.train.SteeringVectorFile(new float[] {1, 0}, 1, 2, 0, new double[] {1}, new double[] {-1}, "m", "c", "cdas",
                settings).write(f);
        byte[] b = bytes(f);
        long n = java.nio.ByteBuffer.wrap(b, 0, 8).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(b, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
        int last = -1;
        for (String k : settings.keySet()) {
            int at = header.indexOf("\"" + k + "\"");
            assertTrue(at > last, k + " out of order in " + header);
            last = at;
        }
    }
}
