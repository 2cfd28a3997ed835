package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cdas.train.SteeringVectorFile;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * train --concepts --pack K on the demo model in fp32 and the five-concept test file of
 * {@link FanOutCommandTest} (concepts 3, 7, 11, 20 with 5, 4, 3, 2 pairs; concept 5 fails), with
 * minibatches of 2 pairs for 1 epoch, so the concepts take 3, 2, 2 and 1 steps: runs leave the pack
 * at different steps and the next concept joins. With the default --pack-padding 0 every concept's
 * vector, loss curve and factors are bit for bit those of training it one by one; with a padding
 * that puts the whole pack through one pass, within 1e-5; the failing concept fails as it does
 * alone and does not stop its pack mates; a rerun of a packed run continues it.
 */
class PackCommandTest {
    @TempDir
    static Path shared;
    static Path data;
    static Path alone;
    static Path pack2;

    static TrainSteerObjectiveCommandTest.Run train(Path outDir, String... more) {
        return train("all", outDir, more);
    }

    static TrainSteerObjectiveCommandTest.Run train(String concepts, Path outDir, String... more) {
        List<String> args = new java.util.ArrayList<>(List.of("train", "--model", FanOutCommandTest.model.toString(), "--data",
                data.toString(), "--layer", "1", "--concepts", concepts, "--out-dir", outDir.toString(), "--epochs", "1", "--batch",
                "2", "--max-response-tokens", "8", "--dtype", "f32"));
        args.addAll(List.of(more));
        return FanOutCommandTest.run(Map.of(), args.toArray(String[]::new));
    }

    @BeforeAll
    static void setUp() throws URISyntaxException {
        FanOutCommandTest.model = CliSupport.demoRoot().resolve(CliSupport.DEMO_MODEL);
        data = Path.of(PackCommandTest.class.getResource("/data/fanout.jsonl").toURI());
        alone = shared.resolve("alone");
        TrainSteerObjectiveCommandTest.Run r = train(alone);
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        pack2 = shared.resolve("pack2");
        r = train(pack2, "--pack", "2");
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        assertTrue(r.out().contains("; 2 concepts packed per step"), r.out());
        assertTrue(r.err().contains("error: 1 of 5 concepts of shard 0/1 failed: 5 (empty responses)"), r.err());
    }

    /** Every ok concept of {@code dir} matches {@code reference} bit for bit: vector, steps, loss curve, factors. */
    static void assertSameAsAlone(Path reference, Path dir, int ok) throws IOException {
        assertSameAsAlone(reference, dir, ok, 0);
    }

    /**
     * Every ok concept of {@code dir} matches {@code reference}: the same steps; vector and final loss
     * within {@code tolerance}, factors within 1e-4 relative (tolerance 0: all bit for bit, loss curves included).
     */
    static void assertSameAsAlone(Path reference, Path dir, int ok, double tolerance) throws IOException {
        List<JsonNode> want = FanOutCommandTest.manifest(reference);
        List<JsonNode> got = FanOutCommandTest.manifest(dir);
        assertEquals(want.size(), got.size());
        int compared = 0;
        for (int i = 0; i < want.size(); i++) {
            JsonNode a = want.get(i), b = got.get(i);
            assertEquals(a.get("concept_id").asLong(), b.get("concept_id").asLong());
            assertEquals(a.get("status").asText(), b.get("status").asText(), b.toString());
            if (!a.get("status").asText().equals("ok")) {
                assertEquals(a.get("error").asText(), b.get("error").asText());
                continue;
            }
            assertEquals(a.get("steps").asInt(), b.get("steps").asInt());
            assertEquals(a.get("final_loss").asDouble(), b.get("final_loss").asDouble(), tolerance == 0 ? 0 : 1e-5, b.toString());
            SteeringVectorFile va = SteeringVectorFile.read(reference.resolve(a.get("file").asText()));
            SteeringVectorFile vb = SteeringVectorFile.read(dir.resolve(b.get("file").asText()));
            assertEquals(va.w().length, vb.w().length);
            double worst = 0;
            for (int j = 0; j < va.w().length; j++) {
                worst = Math.max(worst, Math.abs(va.w()[j] - vb.w()[j]));
            }
            assertTrue(worst <= tolerance && (tolerance > 0 || java.util.Arrays.equals(va.w(), vb.w())),
                    b.get("concept").asText() + ": packed vector differs from alone by " + worst);
            double factorTolerance = tolerance == 0 ? 0 : 1e-4;
            assertEquals(va.factorPositive()[0], vb.factorPositive()[0], factorTolerance * Math.abs(va.factorPositive()[0]));
            assertEquals(va.factorNegative()[0], vb.factorNegative()[0], factorTolerance * Math.abs(va.factorNegative()[0]));
            List<String> curveA = Files.readAllLines(reference.resolve(a.get("loss_curve").asText()));
            List<String> curveB = Files.readAllLines(dir.resolve(b.get("loss_curve").asText()));
            assertEquals(curveA.size(), curveB.size(), "one loss-curve row per step");
            if (tolerance == 0) {
                assertEquals(curveA, curveB, b.get("concept").asText() + ": loss curve (step, epoch, loss, grad norm, lr, tokens)");
            }
            compared++;
        }
        assertEquals(ok, compared);
    }

    @Test
    void packsOfTwoAndThreeEqualOneByOneAndTheFailingConceptLeavesAlone() throws IOException {
        assertSameAsAlone(alone, pack2, 4);
        Path pack3 = shared.resolve("pack3");
        TrainSteerObjectiveCommandTest.Run r = train(pack3, "--pack", "3");
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        assertSameAsAlone(alone, pack3, 4);
        for (Path dir : List.of(pack2, pack3)) {
            try (var files = Files.list(dir.resolve("vectors"))) {
                assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith("5-")), "the failed concept leaves no files");
            }
        }
    }

    /** A padding that lets the whole pack share one pass (examples padded to the longest): within 1e-5 over these short runs. */
    @Test
    void onePassForThePackIsWithinRounding() throws IOException {
        Path dir = shared.resolve("pack3-one-pass");
        TrainSteerObjectiveCommandTest.Run r = train(dir, "--pack", "3", "--pack-padding", "1000");
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        assertSameAsAlone(alone, dir, 4, 1e-5);
    }

    @Test
    void dasPacksToo() throws IOException {
        Path one = shared.resolve("das-alone");
        Path packed = shared.resolve("das-pack2");
        assertEquals(0, train("3,11", one, "--method", "das").exit());
        TrainSteerObjectiveCommandTest.Run r = train("3,11", packed, "--method", "das", "--pack", "2");
        assertEquals(0, r.exit(), r.out() + r.err());
        assertSameAsAlone(one, packed, 2);
    }

    /** A packed run cut short (here: two vectors lost, the failed concept pending) continues on rerun. */
    @Test
    void aRerunOfAPackedRunSkipsTheFinishedAndTrainsTheRest() throws IOException {
        Path dir = shared.resolve("resume");
        Files.createDirectories(dir.resolve("vectors"));
        try (var files = Files.walk(pack2)) {
            for (Path p : files.filter(Files::isRegularFile).filter(p -> !p.getFileName().toString().equals(".lock")).toList()) {
                Files.copy(p, dir.resolve(pack2.relativize(p).toString()));
            }
        }
        Files.delete(dir.resolve(FanOutCommandTest.OK_FILES.get(0)));
        Files.delete(dir.resolve(FanOutCommandTest.OK_FILES.get(2)));
        byte[] kept = Files.readAllBytes(dir.resolve(FanOutCommandTest.OK_FILES.get(1)));
        TrainSteerObjectiveCommandTest.Run again = train(dir, "--pack", "2");
        assertEquals(CliSupport.INCOMPLETE, again.exit(), again.out() + again.err());
        assertTrue(again.out().contains("3 to train, 2 finished before"), again.out());
        assertTrue(again.out().contains("skipped 7 Star Trek, second lines"), again.out());
        assertTrue(java.util.Arrays.equals(kept, Files.readAllBytes(dir.resolve(FanOutCommandTest.OK_FILES.get(1)))),
                "a finished concept is not trained again");
        assertSameAsAlone(alone, dir, 4);
    }

    @Test
    void packIsForOptimisedMethodsAndAtLeastOne() {
        Path dir = shared.resolve("bad");
        for (String[] c : new String[][] {
            {"--pack", "0", "--pack must be >= 1, got 0"},
            {"--pack", "2", "--pack-padding", "-1", "--pack-padding must be >= 0, got -1"},
            {"--pack-padding", "3", "--pack-padding needs --pack 2 or more"},
            {"--method", "diffmean", "--pack", "2", "--pack 2 do not apply to --method diffmean"},
            {"--method", "reps", "--pack", "2", "--pack 2 applies to --method cdas and das only, not reps"},
        }) {
            String[] more = java.util.Arrays.copyOf(c, c.length - 1);
            TrainSteerObjectiveCommandTest.Run r = train(dir, more);
            assertEquals(Main.INPUT_ERROR, r.exit(), r.out() + r.err());
            assertTrue(r.err().contains(c[c.length - 1]), r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
        }
        TrainSteerObjectiveCommandTest.Run r = FanOutCommandTest.run(Map.of(), "train", "--model", FanOutCommandTest.model.toString(),
                "--data", data.toString(), "--layer", "1", "--out", dir.resolve("x.safetensors").toString(), "--pack", "2");
        assertEquals(Main.INPUT_ERROR, r.exit(), r.out() + r.err());
        assertTrue(r.err().contains("--pack needs --concepts"), r.err());
        assertFalse(Files.exists(dir));
    }
}
