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
 * train --concepts --pack K on the demo model and the five-concept test file of
 * {@link FanOutCommandTest} (concepts 3, 7, 11, 20 with 5, 4, 3, 2 pairs; concept 5 fails), with
 * minibatches of 2 pairs over 2 epochs, so the concepts take 6, 4, 4 and 2 steps: runs leave the
 * pack at different steps and the next concept joins. Every concept's vector, loss curve and
 * factors equal those of training it one by one within 1e-5; the failing concept fails as it does
 * alone and does not stop its pack mates; a rerun of a packed run continues it.
 */
class PackCommandTest {
    @TempDir
    static Path shared;
    static Path data;
    static Path alone;
    static Path aloneDas;

    static TrainSteerObjectiveCommandTest.Run train(Path outDir, String... more) {
        String[] base = {"--epochs", "2", "--batch", "2"};
        String[] args = new String[base.length + more.length];
        System.arraycopy(base, 0, args, 0, base.length);
        System.arraycopy(more, 0, args, base.length, more.length);
        return FanOutCommandTest.train(Map.of(), "all", outDir, args);
    }

    @BeforeAll
    static void setUp() throws URISyntaxException {
        FanOutCommandTest.model = CliSupport.demoRoot().resolve(CliSupport.DEMO_MODEL);
        data = Path.of(PackCommandTest.class.getResource("/data/fanout.jsonl").toURI());
        FanOutCommandTest.data = data;
        alone = shared.resolve("alone");
        TrainSteerObjectiveCommandTest.Run r = train(alone);
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        aloneDas = shared.resolve("alone-das");
        r = train(aloneDas, "--method", "das");
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
    }

    /** Every ok concept of {@code dir} matches {@code reference}: vector within 1e-5, same steps, losses within 1e-5. */
    static void assertSameAsAlone(Path reference, Path dir) throws IOException {
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
            assertEquals(a.get("final_loss").asDouble(), b.get("final_loss").asDouble(), 1e-5, b.toString());
            SteeringVectorFile va = SteeringVectorFile.read(reference.resolve(a.get("file").asText()));
            SteeringVectorFile vb = SteeringVectorFile.read(dir.resolve(b.get("file").asText()));
            assertEquals(va.w().length, vb.w().length);
            double worst = 0;
            for (int j = 0; j < va.w().length; j++) {
                worst = Math.max(worst, Math.abs(va.w()[j] - vb.w()[j]));
            }
            assertTrue(worst <= 1e-5, b.get("concept").asText() + ": packed vector differs from alone by " + worst);
            assertEquals(va.factorPositive()[0], vb.factorPositive()[0], 1e-4 * Math.abs(va.factorPositive()[0]));
            assertEquals(va.factorNegative()[0], vb.factorNegative()[0], 1e-4 * Math.abs(va.factorNegative()[0]));
            List<String> curveA = Files.readAllLines(reference.resolve(a.get("loss_curve").asText()));
            List<String> curveB = Files.readAllLines(dir.resolve(b.get("loss_curve").asText()));
            assertEquals(curveA.size(), curveB.size(), "one loss-curve row per step");
            compared++;
        }
        assertEquals(4, compared);
    }

    @Test
    void packsOfTwoAndThreeEqualOneByOneAndTheFailingConceptLeavesAlone() throws IOException {
        for (int k : new int[] {2, 3}) {
            Path dir = shared.resolve("pack" + k);
            TrainSteerObjectiveCommandTest.Run r = train(dir, "--pack", Integer.toString(k));
            assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
            assertTrue(r.out().contains("; " + k + " concepts packed per step"), r.out());
            assertTrue(r.err().contains("error: 1 of 5 concepts of shard 0/1 failed: 5 (empty responses)"), r.err());
            assertSameAsAlone(alone, dir);
            try (var files = Files.list(dir.resolve("vectors"))) {
                assertFalse(files.anyMatch(p -> p.getFileName().toString().startsWith("5-")), "the failed concept leaves no files");
            }
        }
    }

    @Test
    void dasPacksToo() throws IOException {
        Path dir = shared.resolve("das-pack3");
        TrainSteerObjectiveCommandTest.Run r = train(dir, "--method", "das", "--pack", "3");
        assertEquals(CliSupport.INCOMPLETE, r.exit(), r.out() + r.err());
        assertSameAsAlone(aloneDas, dir);
    }

    /** A packed run cut short (here: two vectors lost, the failed concept pending) continues on rerun. */
    @Test
    void aRerunOfAPackedRunSkipsTheFinishedAndTrainsTheRest() throws IOException {
        Path dir = shared.resolve("resume");
        TrainSteerObjectiveCommandTest.Run first = train(dir, "--pack", "2");
        assertEquals(CliSupport.INCOMPLETE, first.exit(), first.out() + first.err());
        Files.delete(dir.resolve(FanOutCommandTest.OK_FILES.get(0)));
        Files.delete(dir.resolve(FanOutCommandTest.OK_FILES.get(2)));
        byte[] kept = Files.readAllBytes(dir.resolve(FanOutCommandTest.OK_FILES.get(1)));
        TrainSteerObjectiveCommandTest.Run again = train(dir, "--pack", "2");
        assertEquals(CliSupport.INCOMPLETE, again.exit(), again.out() + again.err());
        assertTrue(again.out().contains("3 to train, 2 finished before"), again.out());
        assertTrue(again.out().contains("skipped 7 Star Trek, second lines"), again.out());
        assertTrue(java.util.Arrays.equals(kept, Files.readAllBytes(dir.resolve(FanOutCommandTest.OK_FILES.get(1)))),
                "a finished concept is not trained again");
        assertSameAsAlone(alone, dir);
    }

    @Test
    void packIsForOptimisedMethodsAndAtLeastOne() {
        Path dir = shared.resolve("bad");
        for (String[] c : new String[][] {
            {"--pack", "0", "--pack must be >= 1, got 0"},
            {"--method", "diffmean", "--pack", "2", "--pack 2 do not apply to --method diffmean"},
        }) {
            String[] more = java.util.Arrays.copyOf(c, c.length - 1);
            TrainSteerObjectiveCommandTest.Run r = FanOutCommandTest.train(Map.of(), "all", dir, more);
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
