package dev.cdas.cli;

import dev.cdas.fanout.Manifest;
import dev.cdas.fanout.ManifestEntry;
import dev.cdas.fanout.ShardMerge;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** Joins the output folders of the shards of a {@code train --concepts} run. */
@Command(name = "merge", mixinStandardHelpOptions = true,
        header = "Joins the output folders of train --concepts shards into one.",
        description = {"Reads fanout.json and manifest.jsonl of each SHARD_DIR (all of one run: the same data,",
            "model, method, layer and settings), copies the finished concepts' vectors and loss curves",
            "into --out-dir and writes its manifest.jsonl (an ok entry wins over a failed one) and",
            "fanout.json. Lists the failed concepts and those of the run's selection that no folder has.",
            "Exit code 0 when every selected concept is ok, 1 when some failed or are missing (they are",
            "named on stderr), 2 on bad input. Merging again after rerunning a shard replaces the result."})
final class MergeCommand implements Callable<Integer> {
    @Option(names = "--out-dir", paramLabel = "DIR", required = true, description = "The merged folder (not one of the shard folders).")
    Path outDir;

    @Parameters(paramLabel = "SHARD_DIR", arity = "1..*", description = "Output folders of train --concepts, one per shard.")
    List<Path> shardDirs;

    @Override
    public Integer call() throws IOException {
        ShardMerge.Report r = ShardMerge.merge(shardDirs, outDir);
        int total = r.ok().size() + r.failed().size() + r.missing().size();
        System.out.println("merged " + shardDirs.size() + " folder" + (shardDirs.size() == 1 ? "" : "s") + " (shards "
                + String.join(", ", r.shards()) + "): " + r.ok().size() + " of " + total + " concepts ok");
        for (ManifestEntry e : r.failed()) {
            System.out.println("failed  " + e.conceptId() + " " + e.concept() + ": " + e.error());
        }
        for (ShardMerge.Missing m : r.missing()) {
            System.out.println("missing " + m.conceptId() + " " + m.concept() + (m.shard() != null ? " (shard " + m.shard() + ")" : ""));
        }
        System.out.println("wrote " + outDir.resolve(Manifest.FILE));
        if (r.complete()) {
            return 0;
        }
        List<String> parts = new ArrayList<>();
        if (!r.failed().isEmpty()) {
            parts.add(r.failed().size() + " failed (" + String.join(", ", r.failed().stream()
                    .map(e -> e.conceptId() + " " + e.concept()).toList()) + ")");
        }
        if (!r.missing().isEmpty()) {
            parts.add(r.missing().size() + " missing (" + String.join(", ", r.missing().stream()
                    .map(m -> m.conceptId() + " " + m.concept() + (m.shard() != null ? " of shard " + m.shard() : "")).toList()) + ")");
        }
        System.err.println("error: incomplete: " + String.join(", ", parts) + " of " + total + " concepts");
        return CliSupport.INCOMPLETE;
    }
}
