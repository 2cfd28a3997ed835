package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cdas.train.SteeringVectorFile;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --concepts on the demo model and a five-concept file made from demo pairs
 * (test resource data/fanout.jsonl: concepts 3, 7, 11, 20 with 5, 4, 3, 2 relabelled Star Trek
 * pairs, and concept 5 whose positive responses are empty, so it fails): the manifest, a failed
 * concept beside finished ones, rerun, two torchrun-style shards plus merge equal to one process
 * byte for byte, and bad input.
 */
class FanOutCommandTest {
    static final List<String> OK_FILES = List.of("vectors/3-star-trek-first-lines.safetensors",
            "vectors/7-star-trek-second-lines.safetensors", "vectors/11-star-trek-third-lines.safetensors",
            "vectors/20-star-trek-fourth-lines.safetensors");

    @TempDir
    static Path shared;
    static Path model;
    static Path data;
    static Path all;
    static TrainSteerObjectiveCommandTest.Run allRun;

    static TrainSteerObjectiveCommandTest.Run run(Map<String, String> env, String... args) {
        PrintStream out = System.out;
        PrintStream err = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        ByteArrayOutputStream e = new ByteArrayOutputStream();
        try (PrintStream po = new PrintStream(o, true, StandardCharsets.UTF_8);
             PrintStream pe = new PrintStream(e, true, StandardCharsets.UTF_8)) {
            System.setOut(po);
            System.setErr(pe);
            int exit = Main.run(env, args);
            return new TrainSteerObjectiveCommandTest.Run(exit, o.toString(StandardCharsets.UTF_8), e.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(out);
            System.setErr(err);
        }
    }

    /** train --concepts SEL --out-dir DIR with the small settings of these tests. */
    static TrainSteerObjectiveCommandTest.Run train(Map<String, String> env, String concepts, Path outDir, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data.toString(), "--layer", "1",
                "--concepts", concepts, "--out-dir", outDir.toString(), "--epochs", "1", "--batch", "8", "--max-response-tokens", "8"));
        args.addAll(List.of(more));
        return run(env, args.toArray(String[]::new));
    }

    @BeforeAll
    static void setUp() throws URISyntaxException {
        model = CliSupport.demoRoot().resolve(CliSupport.DEMO_MODEL);
        data = Path.of(FanOutCommandTest.class.getResource("/data/fanout.jsonl").toURI());
        all = shared.resolve("all");
        allRun = train(Map.of(), "all", all);
    }

    static List<JsonNode> manifest(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve("manifest.jsonl"))) {
            out.add(json.readTree(line));
        }
        return out;
    }

    @Test
    void allConceptsWriteVectorsLossCurvesAndAManifestAndTheFailedOneDoesNotStopTheOthers() throws IOException {
        assertEquals(CliSupport.INCOMPLETE, allRun.exit(), allRun.out() + allRun.err());
        assertTrue(allRun.out().contains("shard 0/1 (no --shard and no launcher environment: one shard): 5 of 5 concepts, "
                + "16 of 16 pairs; 5 to train, 0 finished before"), allRun.out());
        assertTrue(allRun.err().contains("error: 1 of 5 concepts of shard 0/1 failed: 5 (empty responses)"), allRun.err());
        // not a terminal here: progress as lines (ConsoleProgress), the last one when the concepts end
        assertTrue(java.util.regex.Pattern.compile("(?m)^concepts 5/5 \\(100%\\) .*, \\d:\\d\\d:\\d\\d elapsed$")
                .matcher(allRun.err()).find(), "the progress over concepts: " + allRun.err());
        List<JsonNode> m = manifest(all);
        assertEquals(List.of(3L, 5L, 7L, 11L, 20L), m.stream().map(n -> n.get("concept_id").asLong()).toList());
        JsonNode failed = m.get(1);
        assertEquals("failed", failed.get("status").asText());
        assertEquals("empty responses", failed.get("concept").asText());
        assertTrue(failed.get("error").asText().contains("the response encodes to no tokens"), failed.toString());
        assertTrue(failed.get("file").isNull() && failed.get("final_loss").isNull());
        int[] pairs = {5, 4, 3, 2};
        int[] steps = {1, 1, 1, 1};
        List<JsonNode> ok = List.of(m.get(0), m.get(2), m.get(3), m.get(4));
        for (int i = 0; i < ok.size(); i++) {
            JsonNode e = ok.get(i);
            assertEquals("ok", e.get("status").asText(), e.toString());
            assertEquals(OK_FILES.get(i), e.get("file").asText());
            assertEquals(pairs[i], e.get("pairs").asInt());
            assertEquals(steps[i], e.get("steps").asInt(), e.toString());
            assertTrue(e.get("error").isNull());
            assertTrue(e.get("seconds").asDouble() > 0);
            SteeringVectorFile v = SteeringVectorFile.read(all.resolve(e.get("file").asText()));
            assertEquals(e.get("concept").asText(), v.concept());
            assertEquals(1, v.layer());
            assertEquals(e.get("final_loss").asDouble(), Double.parseDouble(v.settings().get("final_loss")), 0);
            assertEquals(e.get("factors").get("positive").get(0).asDouble(), v.factorPositive()[0], 0);
            assertEquals(e.get("factors").get("negative").get(0).asDouble(), v.factorNegative()[0], 0);
            assertEquals(Long.toString(dev.cdas.fanout.ConceptFanOut.conceptSeed(42, e.get("concept_id").asLong())),
                    v.settings().get("seed"), "the concept's seed mixes the run seed (default 42) and its id");
            String stem = OK_FILES.get(i).replace(".safetensors", "");
            assertEquals(stem + ".loss.csv", e.get("loss_curve").asText());
            assertTrue(Files.isRegularFile(all.resolve(stem + ".loss.csv")) && Files.isRegularFile(all.resolve(stem + ".loss.png")));
        }
        try (var files = Files.list(all.resolve("vectors"))) {
            assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith("5-")), "the failed concept leaves no files");
        }
        // The identity names the type the model computed in: the demo's checkpoint is F16, which a CPU
        // without vector kernels for it computes in F32 when no --dtype is given (Model.defaultDtype).
        String computed = dev.cdas.model.Model.cpuFastMatmul(dev.cdas.DType.F16) ? "f16" : "f32";
        JsonNode identity = new ObjectMapper().readTree(all.resolve("fanout.json").toFile()).get("identity");
        assertEquals("cpu " + computed, identity.get("runtime").asText(), identity.toString());
    }

    @Test
    void aRerunSkipsFinishedConceptsAndRetriesTheFailedOne() throws IOException {
        Path dir = shared.resolve("rerun");
        Files.createDirectories(dir.resolve("vectors"));
        try (var files = Files.walk(all)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                Files.copy(p, dir.resolve(all.relativize(p).toString()));
            }
        }
        List<String> before = Files.readAllLines(dir.resolve("manifest.jsonl"));
        TrainSteerObjectiveCommandTest.Run again = train(Map.of(), "all", dir);
        assertEquals(CliSupport.INCOMPLETE, again.exit(), again.out() + again.err());
        assertTrue(again.out().contains("5 of 5 concepts, 16 of 16 pairs; 1 to train, 4 finished before"), again.out());
        assertTrue(again.out().contains("skipped 20 Star Trek, fourth lines: " + OK_FILES.get(3)), again.out());
        assertTrue(again.out().contains("failed  5 empty responses: "), again.out());
        List<String> after = Files.readAllLines(dir.resolve("manifest.jsonl"));
        for (int i : new int[] {0, 2, 3, 4}) {
            assertEquals(before.get(i), after.get(i), "a finished concept's entry is kept as it was");
        }
        // tried again: the run counts it as "1 to train" and reports it failed again (above); its
        // entry may equal the first run's to the millisecond, so the entries are not compared
        assertTrue(after.get(1).contains("\"status\":\"failed\"") && after.get(1).contains("\"concept_id\":5"),
                "the failed concept's entry after the retry: " + after.get(1));
        for (String f : OK_FILES) {
            assertArrayEquals(Files.readAllBytes(all.resolve(f)), Files.readAllBytes(dir.resolve(f)));
        }
        // Other settings in the same folder are refused.
        TrainSteerObjectiveCommandTest.Run other = train(Map.of(), "20", dir, "--seed", "7");
        assertEquals(Main.INPUT_ERROR, other.exit());
        assertTrue(other.err().contains("fanout.json is of a different run (seed 7 vs 42); use another --out-dir"), other.err());
    }

    /**
     * Concepts 7, 11, 20 (4, 3, 2 pairs) on two shards: 7 on shard 0 (so trained alone in its
     * process), 11 and 20 on shard 1; merged, the vectors equal those of the one process that
     * trained all five concepts, byte for byte.
     */
    @Test
    void twoTorchrunShardsPlusMergeEqualOneProcessAndAConceptAloneEqualsItInCompany() throws IOException {
        List<Path> shardDirs = new ArrayList<>();
        for (int rank = 0; rank < 2; rank++) {
            Path dir = shared.resolve("shard" + rank);
            TrainSteerObjectiveCommandTest.Run r = train(Map.of("RANK", "" + rank, "WORLD_SIZE", "2"), "7,11,20", dir);
            assertEquals(0, r.exit(), r.out() + r.err());
            assertTrue(r.out().contains("shard " + rank + "/2 (torchrun: RANK=" + rank + ", WORLD_SIZE=2): " + (rank == 0 ? "1" : "2")
                    + " of 3 concepts"), r.out());
            shardDirs.add(dir);
        }
        assertEquals(List.of(7L), manifest(shardDirs.get(0)).stream().map(n -> n.get("concept_id").asLong()).toList());
        Path merged = shared.resolve("merged");
        TrainSteerObjectiveCommandTest.Run m = run(Map.of(), "merge", "--out-dir", merged.toString(), shardDirs.get(0).toString(),
                shardDirs.get(1).toString());
        assertEquals(0, m.exit(), m.out() + m.err());
        assertTrue(m.out().contains("(shards 0/2, 1/2): 3 of 3 concepts ok"), m.out());
        for (String f : OK_FILES.subList(1, 4)) {
            assertArrayEquals(Files.readAllBytes(all.resolve(f)), Files.readAllBytes(merged.resolve(f)), f);
            String curve = f.replace(".safetensors", ".loss.csv");
            assertArrayEquals(Files.readAllBytes(all.resolve(curve)), Files.readAllBytes(merged.resolve(curve)), curve);
        }
        assertEquals(3, manifest(merged).size());

        // Merging only one shard names the missing concepts and their shard.
        TrainSteerObjectiveCommandTest.Run part = run(Map.of(), "merge", "--out-dir", shared.resolve("part").toString(),
                shardDirs.get(0).toString());
        assertEquals(CliSupport.INCOMPLETE, part.exit(), part.out() + part.err());
        assertTrue(part.err().contains("error: incomplete: 2 missing (11 Star Trek, third lines of shard 1/2, 20 Star Trek, "
                + "fourth lines of shard 1/2) of 3 concepts"), part.err());
    }

    @Test
    void badInputIsOneLineAndExitTwo() {
        Path dir = shared.resolve("bad");
        String[][] cases = {
            {"99", "--concepts: concept id 99 is not in " + data},
            {"3,x", "--concepts: \"x\" is not a concept id"},
        };
        for (String[] c : cases) {
            expectInputError(train(Map.of(), c[0], dir), c[1]);
        }
        expectInputError(train(Map.of(), "all", dir, "--shard", "3/2"), "shard index 3 is outside 0..1 (--shard 3/2)");
        expectInputError(train(Map.of("RANK", "0"), "all", dir), "RANK is set but WORLD_SIZE is not");
        expectInputError(train(Map.of("JOB_COMPLETION_INDEX", "1"), "all", dir), "give --shards N or set CDAS_SHARDS");
        expectInputError(train(Map.of(), "all", dir, "--out", dir.resolve("x.safetensors").toString()),
                "--out cannot be used with --concepts");
        expectInputError(run(Map.of(), "train", "--model", model.toString(), "--data", data.toString(), "--layer", "1",
                "--concepts", "all"), "--concepts needs --out-dir");
        expectInputError(run(Map.of(), "train", "--model", model.toString(), "--data", data.toString(), "--layer", "9",
                "--concepts", "all", "--out-dir", dir.toString()), "--layer 9 is out of range");
        expectInputError(run(Map.of(), "merge", "--out-dir", shared.resolve("m").toString(), dir.toString()), "is not a folder");
        assertFalse(Files.exists(dir), "bad input leaves no output folder");
    }

    private static void expectInputError(TrainSteerObjectiveCommandTest.Run r, String expected) {
        assertEquals(Main.INPUT_ERROR, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("error: " + expected) || r.err().contains(expected), "expected \"" + expected + "\" in: " + r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
    }
}
