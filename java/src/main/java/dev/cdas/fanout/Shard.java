package dev.cdas.fanout;

import dev.cdas.InvalidArgumentException;
import java.util.Map;

/**
 * Which of {@code count} processes this one is ({@code index} 0-based), and where that came from.
 * Taken from an explicit {@code i/n}, or from the environment of the launcher that started the
 * process, in this order:
 * <ol>
 *   <li>torchrun / torch.distributed: {@code RANK} of {@code WORLD_SIZE};</li>
 *   <li>Slurm job arrays: {@code SLURM_ARRAY_TASK_ID} minus {@code SLURM_ARRAY_TASK_MIN} (0 when
 *       unset) of {@code SLURM_ARRAY_TASK_COUNT} (or {@code MAX - MIN + 1}); arrays with a step or
 *       a list of ids are not contiguous and are refused;</li>
 *   <li>Kubernetes Indexed Jobs: {@code JOB_COMPLETION_INDEX} of a count given explicitly or by
 *       {@link #SHARDS_ENV} (Kubernetes does not pass the Job's {@code completions} to its pods).</li>
 * </ol>
 * With none of them there is one shard.
 */
public record Shard(int index, int count, String source) {
    /** The shard count for a Kubernetes Indexed Job when not given explicitly (set it to the Job's {@code completions}). */
    public static final String SHARDS_ENV = "CDAS_SHARDS";

    public Shard {
        if (count < 1) {
            throw new InvalidArgumentException("shard count must be at least 1, got " + count + " (" + source + ")");
        }
        if (index < 0 || index >= count) {
            throw new InvalidArgumentException("shard index " + index + " is outside 0.." + (count - 1) + " (" + source + ")");
        }
    }

    /** Parses {@code i/n}, 0 <= i < n. */
    public static Shard parse(String spec) {
        String[] parts = spec.strip().split("/", -1);
        if (parts.length != 2) {
            throw new InvalidArgumentException("shard \"" + spec + "\" is not i/n (e.g. 0/4: the first of four)");
        }
        int i = integer(parts[0], "shard \"" + spec + "\": index");
        int n = integer(parts[1], "shard \"" + spec + "\": count");
        return new Shard(i, n, "--shard " + spec.strip());
    }

    /**
     * The shard from {@code spec} ({@code i/n}, may be null) or else from {@code env};
     * {@code shards} (may be null) is the count for {@code JOB_COMPLETION_INDEX} and applies only there.
     */
    public static Shard resolve(String spec, Integer shards, Map<String, String> env) {
        if (spec != null) {
            if (shards != null) {
                throw new InvalidArgumentException("--shards is the count for JOB_COMPLETION_INDEX; with --shard i/n leave it out");
            }
            return parse(spec);
        }
        String rank = env.get("RANK");
        String world = env.get("WORLD_SIZE");
        Shard found = null;
        if (rank != null || world != null) {
            if (rank == null || world == null) {
                throw new InvalidArgumentException((rank == null ? "WORLD_SIZE" : "RANK") + " is set but "
                        + (rank == null ? "RANK" : "WORLD_SIZE") + " is not (torchrun sets both); set both or give --shard i/n");
            }
            found = new Shard(integer(rank, "RANK"), integer(world, "WORLD_SIZE"),
                    "torchrun: RANK=" + rank + ", WORLD_SIZE=" + world);
        } else if (env.get("SLURM_ARRAY_TASK_ID") != null) {
            found = slurm(env);
        } else if (env.get("JOB_COMPLETION_INDEX") != null) {
            String idx = env.get("JOB_COMPLETION_INDEX");
            String count = shards != null ? shards.toString() : env.get(SHARDS_ENV);
            if (count == null) {
                throw new InvalidArgumentException("JOB_COMPLETION_INDEX=" + idx + " is set but not the shard count: give --shards N or set "
                        + SHARDS_ENV + " to the Job's completions");
            }
            return new Shard(integer(idx, "JOB_COMPLETION_INDEX"), integer(count, shards != null ? "--shards" : SHARDS_ENV),
                    "Kubernetes Indexed Job: JOB_COMPLETION_INDEX=" + idx + ", " + (shards != null ? "--shards " : SHARDS_ENV + "=") + count);
        }
        if (shards != null) {
            throw new InvalidArgumentException("--shards " + shards + " applies only with JOB_COMPLETION_INDEX (a Kubernetes Indexed Job)"
                    + (found != null ? "; this process has " + found.source() : ", which is not set; use --shard i/n"));
        }
        return found != null ? found : new Shard(0, 1, "no --shard and no launcher environment: one shard");
    }

    private static Shard slurm(Map<String, String> env) {
        String id = env.get("SLURM_ARRAY_TASK_ID");
        String min = env.get("SLURM_ARRAY_TASK_MIN");
        String max = env.get("SLURM_ARRAY_TASK_MAX");
        String cnt = env.get("SLURM_ARRAY_TASK_COUNT");
        int task = integer(id, "SLURM_ARRAY_TASK_ID");
        int lo = min != null ? integer(min, "SLURM_ARRAY_TASK_MIN") : 0;
        int count;
        String source = "Slurm array: SLURM_ARRAY_TASK_ID=" + id + (min != null ? ", SLURM_ARRAY_TASK_MIN=" + min : "");
        if (cnt != null) {
            count = integer(cnt, "SLURM_ARRAY_TASK_COUNT");
            source += ", SLURM_ARRAY_TASK_COUNT=" + cnt;
        } else if (max != null) {
            count = integer(max, "SLURM_ARRAY_TASK_MAX") - lo + 1;
            source += ", SLURM_ARRAY_TASK_MAX=" + max;
        } else {
            throw new InvalidArgumentException("SLURM_ARRAY_TASK_ID=" + id
                    + " is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX is; give --shard i/n");
        }
        if (task - lo < 0 || task - lo >= count) {
            throw new InvalidArgumentException(source + " is not a contiguous array (--array=A-B without a step or list); give --shard i/n");
        }
        return new Shard(task - lo, count, source);
    }

    private static int integer(String text, String what) {
        try {
            return Integer.parseInt(text.strip());
        } catch (NumberFormatException e) {
            throw new InvalidArgumentException(what + " \"" + text + "\" is not an integer");
        }
    }

    @Override
    public String toString() {
        return index + "/" + count;
    }
}
