package dev.cdas.fanout;

import dev.cdas.InvalidArgumentException;
import dev.cdas.train.AtomicFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Joins the output folders of a run's shards into one: the manifests (an ok entry wins over a
 * failed one; among ok entries the first folder's), copies of the ok concepts' vectors and loss
 * curves, and a {@link RunRecord} whose selection is the union of the shards'. Folders of
 * different identities (data, model, method, layer, settings) are refused. Every file is written
 * atomically, so merging again (after rerunning a shard) replaces the result.
 */
public final class ShardMerge {

    /**
     * What the merged folder holds and lacks: the ok and failed entries, the selected concepts no
     * folder has an entry for (with the shard that should have trained each, where the folders agree on
     * the shard count), and the shards seen ({@code i/n} per folder).
     */
    public record Report(List<ManifestEntry> ok, List<ManifestEntry> failed, List<Missing> missing, List<String> shards) {
        public boolean complete() {
            return failed.isEmpty() && missing.isEmpty();
        }
    }

    /** @param shard {@code i/n} that was assigned the concept, or null when the folders disagree on n */
    public record Missing(long conceptId, String concept, String shard) {}

    private ShardMerge() {}

    public static Report merge(List<Path> shardDirs, Path outDir) throws IOException {
        if (shardDirs.isEmpty()) {
            throw new InvalidArgumentException("no shard folders to merge");
        }
        Map<String, String> identity = null;
        Path first = null;
        Map<Long, RunRecord.SelectedConcept> selected = new TreeMap<>();
        Map<Long, ManifestEntry> ok = new TreeMap<>();
        Map<Long, Path> okFrom = new TreeMap<>();
        Map<Long, ManifestEntry> failed = new TreeMap<>();
        List<String> shards = new ArrayList<>();
        Set<Integer> counts = new LinkedHashSet<>();
        Set<Path> seen = new LinkedHashSet<>();
        for (Path dir : shardDirs) {
            if (!Files.isDirectory(dir)) {
                throw new InvalidArgumentException(dir + " is not a folder");
            }
            if (!seen.add(dir.toRealPath())) {
                throw new InvalidArgumentException(dir + " is given twice");
            }
            if (Files.isDirectory(outDir) && Files.isSameFile(dir, outDir)) {
                throw new InvalidArgumentException("--out-dir " + outDir + " is also a shard folder; merge into a new folder");
            }
            RunRecord r = RunRecord.read(dir);
            if (r == null) {
                throw new InvalidArgumentException(dir + " has no " + RunRecord.FILE + ": not an output folder of train --concepts");
            }
            if (identity == null) {
                identity = r.identity();
                first = dir;
            } else if (!identity.equals(r.identity())) {
                throw new InvalidArgumentException(dir + " is of a different run than " + first + " ("
                        + RunRecord.difference(r.identity(), identity) + ")");
            }
            r.concepts().forEach(c -> selected.putIfAbsent(c.id(), c));
            shards.add(r.shard());
            counts.add(shardCount(r.shard()));
            for (ManifestEntry e : Manifest.read(dir.resolve(Manifest.FILE)).values()) {
                if (e.ok() && Files.isRegularFile(dir.resolve(e.file()))) {
                    if (!ok.containsKey(e.conceptId())) {
                        ok.put(e.conceptId(), e);
                        okFrom.put(e.conceptId(), dir);
                    }
                } else if (e.ok()) {
                    failed.putIfAbsent(e.conceptId(), new ManifestEntry(e.concept(), e.conceptId(), ManifestEntry.FAILED, null,
                            null, null, null, null, e.pairs(), 0, e.seconds(), e.shard(), dir.resolve(e.file()) + " is missing", null));
                } else {
                    failed.putIfAbsent(e.conceptId(), e);
                }
            }
        }
        ok.keySet().forEach(failed::remove);

        Files.createDirectories(outDir);
        for (Map.Entry<Long, ManifestEntry> e : ok.entrySet()) {
            Path from = okFrom.get(e.getKey());
            copy(from, outDir, e.getValue().file());
            String curve = e.getValue().lossCurve();
            if (curve != null) {
                copy(from, outDir, curve);
                String png = curve.replaceFirst("\\.csv$", ".png");
                if (Files.isRegularFile(from.resolve(png))) {
                    copy(from, outDir, png);
                }
            }
        }
        List<ManifestEntry> all = new ArrayList<>(ok.values());
        all.addAll(failed.values());
        Manifest.write(outDir.resolve(Manifest.FILE), all);
        new RunRecord(identity, new ArrayList<>(selected.values()), "merged").write(outDir);

        List<RunRecord.SelectedConcept> sel = new ArrayList<>(selected.values());
        int[] shardOf = counts.size() == 1 && counts.iterator().next() > 0
                ? ShardAssignment.assignSizes(sel.stream().mapToLong(RunRecord.SelectedConcept::id).toArray(),
                        sel.stream().mapToInt(RunRecord.SelectedConcept::pairs).toArray(), counts.iterator().next())
                : null;
        List<Missing> missing = new ArrayList<>();
        for (int i = 0; i < sel.size(); i++) {
            RunRecord.SelectedConcept c = sel.get(i);
            if (!ok.containsKey(c.id()) && !failed.containsKey(c.id())) {
                missing.add(new Missing(c.id(), c.name(), shardOf == null ? null : shardOf[i] + "/" + counts.iterator().next()));
            }
        }
        return new Report(List.copyOf(ok.values()), List.copyOf(failed.values()), missing, shards);
    }

    /** n of {@code i/n}; 0 for anything else ("merged"). */
    private static int shardCount(String shard) {
        int slash = shard.indexOf('/');
        try {
            return slash < 0 ? 0 : Integer.parseInt(shard.substring(slash + 1));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    private static void copy(Path fromDir, Path toDir, String relative) throws IOException {
        Path src = fromDir.resolve(relative).normalize();
        Path dst = toDir.resolve(relative).normalize();
        if (!src.startsWith(fromDir.normalize()) || !dst.startsWith(toDir.normalize())) {
            throw new InvalidArgumentException(fromDir.resolve(Manifest.FILE) + " names a file outside its folder: " + relative);
        }
        AtomicFiles.write(dst, Files.readAllBytes(src));
    }
}
