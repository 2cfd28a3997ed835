package dev.cdas.fanout;

import dev.cdas.CdasException;
import dev.cdas.InvalidArgumentException;
import dev.cdas.train.ProgressListener;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.TrainJob;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Trains the concepts of one shard into an output folder:
 * <pre>
 *   DIR/fanout.json                          the run's identity, selection and shard ({@link RunRecord})
 *   DIR/manifest.jsonl                       one {@link ManifestEntry} per concept tried
 *   DIR/vectors/ID-NAME.safetensors          the vector ({@link dev.cdas.train.SteeringVectorFile})
 *   DIR/vectors/ID-NAME.loss.csv, .loss.png  its loss curve (cdas, das)
 * </pre>
 * Every file is replaced atomically (temporary file, rename), the manifest after each concept. A
 * concept whose manifest entry is ok and whose vector exists is skipped; a failed one is tried
 * again. A concept that throws is recorded as failed (its files removed) and the next one runs.
 * One process per folder: a lock ({@code DIR/.lock}) refuses a second.
 */
public final class ConceptFanOut {
    public static final String VECTORS = "vectors";
    private static final String LOCK = ".lock";

    /** Fits one concept: writes {@code spec.out()} (and the loss curve where the spec names one). */
    @FunctionalInterface
    public interface Fitter {
        TrainJob.Result fit(TrainJob.Spec spec, Concept concept, ProgressListener progress) throws IOException;
    }

    /** One concept to fit: its spec (outputs, seed) as {@link #run(Plan, Fitter, ProgressListener)} would give it. */
    public record Job(TrainJob.Spec spec, Concept concept) {}

    /**
     * Told as each job of a {@link PackFitter} ends: its result, or the error that stopped it, and the
     * seconds from its start to its end (in a pack, shared with its pack mates).
     */
    @FunctionalInterface
    public interface Done {
        void accept(Job job, TrainJob.Result result, Exception error, double seconds) throws IOException;
    }

    /** Fits several concepts at once (concept packing, {@link dev.cdas.train.ConceptPack}), reporting each as it ends. */
    @FunctionalInterface
    public interface PackFitter {
        void fitAll(List<Job> jobs, Done done, ProgressListener progress) throws IOException;
    }

    /**
     * One shard's run.
     *
     * @param dataSha256 of the data file's bytes ({@link #sha256}); part of the run's identity
     * @param selected   all shards' concepts (this shard's are {@link ShardAssignment#of})
     * @param settings   with the run's seed; each concept trains with {@link #conceptSeed}
     * @param runtime    what the vectors are computed on, as far as it changes them ("cpu f32"; not the device index)
     */
    public record Plan(Path data, String dataSha256, List<Concept> selected, Shard shard, TrainingSettings settings,
            int layer, String model, String method, String runtime, Path outDir) {

        public Plan {
            selected = List.copyOf(selected);
            if (settings.checkpointEvery() != 0) {
                throw new InvalidArgumentException("concept fan-out does not checkpoint within a concept (checkpoint interval "
                        + settings.checkpointEvery() + "); a rerun skips the finished concepts");
            }
            SteeringMethod.parse(method);
        }

        /** This shard's concepts, by ascending id. */
        public List<Concept> mine() {
            return ShardAssignment.of(selected, shard);
        }

        public Map<String, String> identity() {
            Map<String, String> id = new LinkedHashMap<>();
            id.put("data", data.getFileName().toString());
            id.put("data_sha256", dataSha256);
            id.put("model", model);
            id.put("method", method);
            id.put("layer", Integer.toString(layer));
            id.put("runtime", runtime);
            id.putAll(settings.toMetadata());
            return id;
        }
    }

    /** What a shard's run did: its concepts' entries (by id) and which of them were skipped as finished before. */
    public record Outcome(List<ManifestEntry> entries, List<Long> skipped) {
        public long failed() {
            return entries.stream().filter(e -> !e.ok()).count();
        }
    }

    private ConceptFanOut() {}

    /**
     * The seed of a concept's random stream (initial direction, shuffling): a SplitMix64 mix of the
     * run's seed and the concept id, non-negative so that {@code train --seed} can repeat it.
     */
    public static long conceptSeed(long runSeed, long conceptId) {
        return mix(mix(runSeed) ^ (conceptId * 0x9E3779B97F4A7C15L + 0x632BE59BD9B4E019L)) >>> 1;
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Hex SHA-256 of a file's bytes. */
    public static String sha256(Path file) throws IOException {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
        try (InputStream in = Files.newInputStream(file)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) {
                md.update(buf, 0, n);
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** The vector file of a concept, relative to the output folder. */
    public static String vectorFile(Concept c) {
        return VECTORS + "/" + c.fileStem() + ".safetensors";
    }

    /**
     * The concepts of this shard that a run would train now (not finished in {@code plan.outDir()});
     * refuses a folder written with another identity.
     */
    public static List<Concept> pending(Plan plan) throws IOException {
        checkIdentity(plan);
        Map<Long, ManifestEntry> manifest = Manifest.read(plan.outDir().resolve(Manifest.FILE));
        return plan.mine().stream().filter(c -> !finished(plan.outDir(), manifest.get(c.id()))).toList();
    }

    /** Trains this shard's unfinished concepts; reports progress as task "concepts" (and the fitter's own tasks). */
    public static Outcome run(Plan plan, Fitter fitter, ProgressListener progress) throws IOException {
        return run(plan, fitter, progress, null);
    }

    /**
     * As {@link #run(Plan, Fitter, ProgressListener)}, handing {@code recorded} each trained
     * concept's manifest line once it is written (not the ones skipped as finished before).
     */
    public static Outcome run(Plan plan, Fitter fitter, ProgressListener progress, Consumer<ManifestEntry> recorded)
            throws IOException {
        Path dir = plan.outDir();
        Files.createDirectories(dir);
        try (FileChannel lockChannel = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = tryLock(lockChannel, dir)) {
            checkIdentity(plan);
            new RunRecord(plan.identity(), RunRecord.of(plan.selected()), plan.shard().toString()).write(dir);
            Map<Long, ManifestEntry> manifest = Manifest.read(dir.resolve(Manifest.FILE));
            List<Concept> mine = plan.mine();
            List<ManifestEntry> entries = new ArrayList<>();
            List<Long> skipped = new ArrayList<>();
            long done = 0;
            try {
                for (Concept c : mine) {
                    ManifestEntry e = manifest.get(c.id());
                    if (finished(dir, e)) {
                        skipped.add(c.id());
                        dropCheckpoint(plan, c);
                    } else {
                        e = fitOne(plan, c, fitter, progress);
                        manifest.put(c.id(), e);
                        Manifest.write(dir.resolve(Manifest.FILE), manifest.values());
                        dropCheckpoint(plan, c);
                        if (recorded != null) {
                            recorded.accept(e);
                        }
                    }
                    entries.add(e);
                    done++;
                    if (progress != null) {
                        progress.progress("concepts", done, mine.size(), c.name() + ": " + e.status());
                    }
                }
            } finally {
                if (progress != null) {
                    progress.finished("concepts");
                }
            }
            return new Outcome(entries, skipped);
        }
    }

    /**
     * As {@link #run(Plan, Fitter, ProgressListener)}, the unfinished concepts fitted together by
     * {@code fitter} (in shard order as they are handed out; each is recorded when it ends, so the
     * manifest and the files hold what finished when a run stops).
     */
    public static Outcome runPacked(Plan plan, PackFitter fitter, ProgressListener progress) throws IOException {
        return runPacked(plan, fitter, progress, null);
    }

    /** As {@link #runPacked(Plan, PackFitter, ProgressListener)}, handing {@code recorded} each trained concept's line. */
    public static Outcome runPacked(Plan plan, PackFitter fitter, ProgressListener progress, Consumer<ManifestEntry> recorded)
            throws IOException {
        Path dir = plan.outDir();
        Files.createDirectories(dir);
        try (FileChannel lockChannel = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
             FileLock lock = tryLock(lockChannel, dir)) {
            checkIdentity(plan);
            new RunRecord(plan.identity(), RunRecord.of(plan.selected()), plan.shard().toString()).write(dir);
            Map<Long, ManifestEntry> manifest = Manifest.read(dir.resolve(Manifest.FILE));
            List<Concept> mine = plan.mine();
            List<Long> skipped = new ArrayList<>();
            List<Job> jobs = new ArrayList<>();
            Map<Long, ManifestEntry> entries = new LinkedHashMap<>();
            for (Concept c : mine) {
                ManifestEntry e = manifest.get(c.id());
                if (finished(dir, e)) {
                    skipped.add(c.id());
                    entries.put(c.id(), e);
                    dropCheckpoint(plan, c);
                } else {
                    jobs.add(new Job(spec(plan, c), c));
                }
            }
            long[] done = {skipped.size()};
            try {
                if (progress != null && !skipped.isEmpty()) {
                    progress.progress("concepts", done[0], mine.size(), "skipped " + skipped.size() + " finished before");
                }
                fitter.fitAll(jobs, (job, result, error, secs) -> {
                    Concept c = job.concept();
                    ManifestEntry e = error == null ? okEntry(plan, c, result, secs) : failedEntry(plan, c, secs, error);
                    entries.put(c.id(), e);
                    manifest.put(c.id(), e);
                    Manifest.write(dir.resolve(Manifest.FILE), manifest.values());
                    dropCheckpoint(plan, c);
                    if (recorded != null) {
                        recorded.accept(e);
                    }
                    done[0]++;
                    if (progress != null) {
                        progress.progress("concepts", done[0], mine.size(), c.name() + ": " + e.status());
                    }
                }, progress);
            } finally {
                if (progress != null) {
                    progress.finished("concepts");
                }
            }
            List<ManifestEntry> ordered = new ArrayList<>();
            for (Concept c : mine) {
                ManifestEntry e = entries.get(c.id());
                if (e == null) {
                    throw new IllegalStateException("the pack ended without a result for concept " + c.id());
                }
                ordered.add(e);
            }
            return new Outcome(ordered, skipped);
        }
    }

    private static FileLock tryLock(FileChannel ch, Path dir) throws IOException {
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        }
        if (lock == null) {
            throw new InvalidArgumentException(dir + " is in use by another train process (" + dir.resolve(LOCK)
                    + " is locked); give each shard its own --out-dir");
        }
        return lock;
    }

    private static void checkIdentity(Plan plan) throws IOException {
        RunRecord before = RunRecord.read(plan.outDir());
        if (before != null && !before.identity().equals(plan.identity())) {
            throw new InvalidArgumentException(plan.outDir().resolve(RunRecord.FILE) + " is of a different run ("
                    + RunRecord.difference(plan.identity(), before.identity()) + "); use another --out-dir");
        }
    }

    private static boolean finished(Path dir, ManifestEntry e) {
        return e != null && e.ok() && e.file() != null && Files.isRegularFile(dir.resolve(e.file()));
    }

    /**
     * The spec of concept {@code c}: its files in the folder, its seed, and its checkpoint: written
     * when the run is stopped (SIGTERM, Ctrl-C) while the concept trains, resumed from by the next
     * run (bit for bit, as {@code train --resume}), removed once the concept is recorded.
     */
    private static TrainJob.Spec spec(Plan plan, Concept c) {
        Path dir = plan.outDir();
        String stem = VECTORS + "/" + c.fileStem();
        TrainingSettings settings = plan.settings().withSeed(conceptSeed(plan.settings().seed(), c.id()));
        return new TrainJob.Spec(plan.data(), c.name(), settings, plan.layer(), plan.model(), plan.method(),
                dir.resolve(vectorFile(c)), checkpointFile(plan, c), true, dir.resolve(stem + ".loss.csv"),
                dir.resolve(stem + ".loss.png"));
    }

    /** The name ending of a concept's checkpoint in {@link #VECTORS}, beside its vector. */
    public static final String CHECKPOINT = ".checkpoint.safetensors";

    /** Concept {@code c}'s checkpoint, beside its vector. */
    private static Path checkpointFile(Plan plan, Concept c) {
        return plan.outDir().resolve(VECTORS + "/" + c.fileStem() + CHECKPOINT);
    }

    /** Removes concept {@code c}'s checkpoint: it is recorded (or was before), so nothing resumes from it. */
    private static void dropCheckpoint(Plan plan, Concept c) throws IOException {
        Files.deleteIfExists(checkpointFile(plan, c));
    }

    private static ManifestEntry fitOne(Plan plan, Concept c, Fitter fitter, ProgressListener progress) throws IOException {
        TrainJob.Spec spec = spec(plan, c);
        long t0 = System.nanoTime();
        try {
            TrainJob.Result r = fitter.fit(spec, c, withoutInterrupted(progress));
            return okEntry(plan, c, r, (System.nanoTime() - t0) / 1e9);
        } catch (Exception e) {
            return failedEntry(plan, c, (System.nanoTime() - t0) / 1e9, e);
        }
    }

    private static ManifestEntry okEntry(Plan plan, Concept c, TrainJob.Result r, double secs) {
        boolean trained = r.run() != null;
        return new ManifestEntry(c.name(), c.id(), ManifestEntry.OK, vectorFile(c),
                trained ? VECTORS + "/" + c.fileStem() + ".loss.csv" : null,
                trained ? r.run().log().entries().getLast().loss() : null, r.vector().factorPositive(),
                r.vector().factorNegative(), c.pairs().size(), trained ? r.run().steps() : 0, secs,
                plan.shard().toString(), null, trained && r.run().resumed() ? r.run().firstStep() : null);
    }

    /** A failed concept's entry; its files are removed. */
    private static ManifestEntry failedEntry(Plan plan, Concept c, double secs, Exception e) throws IOException {
        TrainJob.Spec spec = spec(plan, c);
        for (Path p : new Path[] {spec.out(), spec.lossCsv(), spec.lossPng()}) {
            Files.deleteIfExists(p);
        }
        return ManifestEntry.failed(c, secs, plan.shard().toString(), describe(e));
    }

    /**
     * {@code progress} without its {@link ProgressListener#interrupted} calls: a concept's training
     * reports its exit checkpoint there in {@code train --resume}'s words, while a fan-out's own line
     * says what the next run does.
     */
    private static ProgressListener withoutInterrupted(ProgressListener progress) {
        if (progress == null) {
            return null;
        }
        return new ProgressListener() {
            @Override
            public void progress(String task, long done, long total, String detail) {
                progress.progress(task, done, total, detail);
            }

            @Override
            public void finished(String task) {
                progress.finished(task);
            }
        };
    }

    /** The message of an input error as it is; the class for anything else (a bug or a runtime failure). */
    static String describe(Exception e) {
        String m = e.getMessage() == null ? "" : e.getMessage();
        return e instanceof CdasException || e instanceof IOException ? m : e.getClass().getSimpleName() + (m.isEmpty() ? "" : ": " + m);
    }
}
