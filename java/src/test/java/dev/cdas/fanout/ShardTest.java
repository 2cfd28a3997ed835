package dev.cdas.fanout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.train.Rng;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where the shard comes from, how concepts are assigned to shards, and how concepts are selected. */
class ShardTest {
    @TempDir
    Path dir;

    private static Shard env(Map<String, String> env) {
        return Shard.resolve(null, null, env);
    }

    private static void refused(String expected, Runnable r) {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class, r::run);
        assertTrue(e.getMessage().contains(expected), "expected \"" + expected + "\" in: " + e.getMessage());
    }

    @Test
    void explicitShard() {
        assertEquals(new Shard(1, 4, "--shard 1/4"), Shard.resolve("1/4", null, Map.of("RANK", "3", "WORLD_SIZE", "8")));
        refused("shard index 3 is outside 0..1", () -> Shard.parse("3/2"));
        refused("shard index 2 is outside 0..1", () -> Shard.parse("2/2"));
        refused("shard count must be at least 1", () -> Shard.parse("0/0"));
        refused("is not i/n", () -> Shard.parse("1"));
        refused("count \"x\" is not an integer", () -> Shard.parse("1/x"));
        refused("with --shard i/n leave it out", () -> Shard.resolve("0/2", 2, Map.of()));
    }

    @Test
    void launcherEnvironmentsInOrder() {
        assertEquals(new Shard(0, 1, "no --shard and no launcher environment: one shard"), env(Map.of()));
        Shard torch = env(Map.of("RANK", "1", "WORLD_SIZE", "2", "SLURM_ARRAY_TASK_ID", "0", "SLURM_ARRAY_TASK_COUNT", "3",
                "JOB_COMPLETION_INDEX", "2", Shard.SHARDS_ENV, "5"));
        assertEquals("1/2", torch.toString());
        assertEquals("torchrun: RANK=1, WORLD_SIZE=2", torch.source());
        assertEquals("2/3", env(Map.of("SLURM_ARRAY_TASK_ID", "2", "SLURM_ARRAY_TASK_COUNT", "3", "JOB_COMPLETION_INDEX", "0",
                Shard.SHARDS_ENV, "5")).toString());
        // --array=1-4: ids 1..4 are shards 0..3
        assertEquals("3/4", env(Map.of("SLURM_ARRAY_TASK_ID", "4", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_MAX", "4")).toString());
        assertEquals("0/4", env(Map.of("SLURM_ARRAY_TASK_ID", "1", "SLURM_ARRAY_TASK_MIN", "1", "SLURM_ARRAY_TASK_COUNT", "4")).toString());
        // --array=0-6:2 has ids 0, 2, 4, 6 and count 4
        refused("is not a contiguous array", () -> env(Map.of("SLURM_ARRAY_TASK_ID", "6", "SLURM_ARRAY_TASK_MIN", "0",
                "SLURM_ARRAY_TASK_COUNT", "4")));
        refused("neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX", () -> env(Map.of("SLURM_ARRAY_TASK_ID", "1")));
        Shard k8s = env(Map.of("JOB_COMPLETION_INDEX", "3", Shard.SHARDS_ENV, "5"));
        assertEquals("3/5", k8s.toString());
        assertEquals("Kubernetes Indexed Job: JOB_COMPLETION_INDEX=3, CDAS_SHARDS=5", k8s.source());
        assertEquals("3/4", Shard.resolve(null, 4, Map.of("JOB_COMPLETION_INDEX", "3", Shard.SHARDS_ENV, "5")).toString());
        refused("give --shards N or set CDAS_SHARDS", () -> env(Map.of("JOB_COMPLETION_INDEX", "3")));
        refused("shard index 5 is outside 0..4", () -> env(Map.of("JOB_COMPLETION_INDEX", "5", Shard.SHARDS_ENV, "5")));
        refused("RANK is set but WORLD_SIZE is not", () -> env(Map.of("RANK", "0")));
        refused("WORLD_SIZE \"two\" is not an integer", () -> env(Map.of("RANK", "0", "WORLD_SIZE", "two")));
        refused("shard index 2 is outside 0..1 (torchrun: RANK=2, WORLD_SIZE=2)", () -> env(Map.of("RANK", "2", "WORLD_SIZE", "2")));
        refused("--shards 2 applies only with JOB_COMPLETION_INDEX", () -> Shard.resolve(null, 2, Map.of("RANK", "0", "WORLD_SIZE", "2")));
        refused("--shards 2 applies only with JOB_COMPLETION_INDEX", () -> Shard.resolve(null, 2, Map.of()));
    }

    private static List<Concept> concepts(long[] ids, int[] sizes) {
        List<Concept> out = new ArrayList<>();
        for (int c = 0; c < ids.length; c++) {
            List<ConceptPair> pairs = new ArrayList<>();
            for (int i = 0; i < sizes[c]; i++) {
                pairs.add(new ConceptPair("a", "b", "c", "d", "c" + ids[c], ids[c], "row"));
            }
            out.add(new Concept(ids[c], "c" + ids[c], pairs));
        }
        return out;
    }

    @Test
    void assignmentIsGreedyLongestFirstAndIndependentOfOrder() {
        // by size: 10 (id 4) -> 0; 7 (id 1) -> 1; 7 (id 9) -> 1? no: loads 10, 7 -> 1 (7 < 10) -> 14; 3 (id 2) -> 0 -> 13; 1 (id 3) -> 0 -> 14
        assertArrayEquals(new int[] {1, 0, 0, 0, 1}, ShardAssignment.assign(concepts(new long[] {1, 2, 3, 4, 9}, new int[] {7, 3, 1, 10, 7}), 2));
        // ties in size go by id, ties in load by shard index
        assertArrayEquals(new int[] {1, 0, 2}, ShardAssignment.assign(concepts(new long[] {5, 3, 8}, new int[] {2, 2, 2}), 3));

        Rng rng = new Rng(11);
        int n = 60;
        long[] ids = new long[n];
        int[] sizes = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = i * 3L + rng.nextInt(3);
            sizes[i] = 1 + rng.nextInt(50);
        }
        List<Concept> cs = concepts(ids, sizes);
        for (int shards : new int[] {1, 2, 3, 7}) {
            int[] a = ShardAssignment.assign(cs, shards);
            long[] load = new long[shards];
            for (int i = 0; i < n; i++) {
                load[a[i]] += sizes[i];
            }
            long max = java.util.Arrays.stream(load).max().orElseThrow();
            long min = java.util.Arrays.stream(load).min().orElseThrow();
            assertTrue(max - min <= 50, "greedy keeps loads within the largest concept: " + java.util.Arrays.toString(load));
            List<Concept> shuffled = new ArrayList<>(cs);
            Collections.shuffle(shuffled, new java.util.Random(shards));
            int[] b = ShardAssignment.assign(shuffled, shards);
            int total = 0;
            for (int s = 0; s < shards; s++) {
                List<Concept> mine = ShardAssignment.of(shuffled, new Shard(s, shards, "test"));
                total += mine.size();
                for (Concept c : mine) {
                    assertEquals(s, a[cs.indexOf(c)], "same shard whatever the input order");
                    assertEquals(s, b[shuffled.indexOf(c)]);
                }
            }
            assertEquals(n, total, "every concept in exactly one shard");
        }
    }

    @Test
    void selection() throws IOException {
        List<Concept> cs = concepts(new long[] {3, 7, 12}, new int[] {1, 1, 1});
        Path data = Path.of("pairs.jsonl");
        assertEquals(cs, ConceptSelection.parse("all").select(cs, data));
        assertEquals(List.of(cs.get(0), cs.get(2)), ConceptSelection.parse("12, 3").select(cs, data));
        Path list = dir.resolve("ids.txt");
        Files.writeString(list, "# the ones we want\n7\n12 # and this\n\n");
        assertEquals(List.of(cs.get(1), cs.get(2)), ConceptSelection.parse("@" + list).select(cs, data));
        refused("concept ids 4, 5 are not in pairs.jsonl (it has 3 concepts, ids 3, 7, 12)",
                () -> {
                    try {
                        ConceptSelection.parse("3,4,5").select(cs, data);
                    } catch (IOException e) {
                        throw new AssertionError(e);
                    }
                });
        refused("\"seven\" is not a concept id", () -> {
            try {
                ConceptSelection.parse("3,seven");
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        Files.writeString(list, "# nothing\n");
        refused("ids.txt lists no concept ids", () -> {
            try {
                ConceptSelection.parse("@" + list);
            } catch (IOException e) {
                throw new AssertionError(e);
            }
        });
        assertThrows(java.nio.file.NoSuchFileException.class, () -> ConceptSelection.parse("@" + dir.resolve("absent.txt")));
    }

    @Test
    void conceptsGroupByIdAndNameTheirFiles() throws IOException {
        List<ConceptPair> pairs = List.of(new ConceptPair("a", "b", "c", "d", "Star Trek!", 9, "line 1"),
                new ConceptPair("a", "b", "c", "d", "food", 2, "line 2"),
                new ConceptPair("a", "b", "c", "d", "Star Trek!", 9, "line 3"));
        List<Concept> cs = Concept.group(pairs, Path.of("p.jsonl"));
        assertEquals(List.of(2L, 9L), cs.stream().map(Concept::id).toList());
        assertEquals(2, cs.get(1).pairs().size());
        assertEquals("9-star-trek", cs.get(1).fileStem());
        assertEquals("4", new Concept(4, "???", List.of()).fileStem());
        IOException e = assertThrows(IOException.class, () -> Concept.group(List.of(pairs.get(0),
                new ConceptPair("a", "b", "c", "d", "Klingons", 9, "line 4")), Path.of("p.jsonl")));
        assertTrue(e.getMessage().contains("concept_id 9 names two concepts: \"Star Trek!\" (line 1) and \"Klingons\" (line 4)"),
                e.getMessage());
    }
}
