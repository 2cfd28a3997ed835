package dev.cdas.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.DType;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.Trainer;
import dev.cdas.train.TrainingCheckpoint;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A training checkpoint records the device kind and dtype it was trained in; {@code train --resume}
 * without {@code --dtype} computes in the checkpoint's dtype (the default depends on the CPU, so
 * another machine or version would otherwise compute differently), and a {@code --dtype} that
 * differs is refused in one line instead of silently continuing another run.
 */
class ResumeComputeTest {
    @TempDir
    Path dir;

    private String[] train(Path data, Path out, String... extra) {
        List<String> args = new java.util.ArrayList<>(List.of("train", "--model",
                CliSupport.demoRoot().resolve(CliSupport.DEMO_MODEL).toString(), "--data", data.toString(), "--layer", "1",
                "--out", out.toString(), "--epochs", "2", "--batch", "3", "--max-response-tokens", "12", "--threads", "1",
                "--checkpoint-every", "1"));
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }

    @Test
    void resumeTakesTheCheckpointsDtypeAndRefusesAnother() throws IOException {
        Path data = dir.resolve("six.jsonl");
        Files.write(data, Files.readAllLines(CliSupport.demoRoot().resolve(CliSupport.DEMO_HELDOUT)).subList(0, 6));
        Path out = dir.resolve("v.safetensors");
        TrainSteerObjectiveCommandTest.Run first = TrainSteerObjectiveCommandTest.run(train(data, out, "--dtype", "bf16"));
        assertEquals(0, first.exit(), first.out() + first.err());
        Path ck = dir.resolve("v.checkpoint.safetensors");
        assertTrue(Files.isRegularFile(ck), "a checkpoint beside --out: " + first.out() + first.err());
        assertEquals("cpu bf16", TrainingCheckpoint.read(ck).identity().get(Trainer.COMPUTE));
        byte[] vector = Files.readAllBytes(out);
        Files.copy(out, dir.resolve("first.safetensors"));

        // another dtype: refused in one line, the vector and the checkpoint left as they were
        TrainSteerObjectiveCommandTest.Run other = TrainSteerObjectiveCommandTest.run(train(data, out, "--resume", "--dtype", "f32"));
        assertEquals(Main.INPUT_ERROR, other.exit(), other.out() + other.err());
        List<String> errors = other.err().lines().filter(l -> l.startsWith("error: ")).toList();
        assertEquals(List.of("error: " + ck + " was trained computing in cpu bf16 but this run computes in cpu f32, which would"
                + " not continue the same run: give the --device and --dtype it was trained with (train --resume without --dtype"
                + " takes the checkpoint's), or delete it to start afresh"), errors);
        assertArrayEquals(vector, Files.readAllBytes(out));
        assertEquals("cpu bf16", TrainingCheckpoint.read(ck).identity().get(Trainer.COMPUTE));

        // no --dtype: the checkpoint's, whatever this CPU's default is
        TrainSteerObjectiveCommandTest.Run resumed = TrainSteerObjectiveCommandTest.run(train(data, out, "--resume"));
        assertEquals(0, resumed.exit(), resumed.out() + resumed.err());
        assertTrue(resumed.err().contains("resuming in bf16, the dtype v.checkpoint.safetensors was trained in"), resumed.err());
        assertTrue(resumed.out().contains("(resumed from the checkpoint beside --out)"), resumed.out());
        SteeringVectorFile was = SteeringVectorFile.read(dir.resolve("first.safetensors"));
        SteeringVectorFile now = SteeringVectorFile.read(out);
        assertArrayEquals(was.w(), now.w(), "resuming the finished run gives the same direction");
        assertArrayEquals(was.factorPositive(), now.factorPositive(), "and the same factors (estimated in bf16 again)");
        assertArrayEquals(was.factorNegative(), now.factorNegative());
    }

    @Test
    void checkpointDtypeReadsWhatTheCheckpointRecords() throws IOException {
        assertNull(TrainCommand.checkpointDtype(dir.resolve("none.safetensors")));
        Path garbage = Files.writeString(dir.resolve("garbage.safetensors"), "not a checkpoint");
        assertNull(TrainCommand.checkpointDtype(garbage));
        for (Map.Entry<String, DType> c : Map.of("cpu f16", DType.F16, "cuda bf16", DType.BF16, "cpu f32", DType.F32).entrySet()) {
            assertEquals(c.getValue(), TrainCommand.checkpointDtype(checkpoint(c.getKey())), c.getKey());
        }
        assertNull(TrainCommand.checkpointDtype(checkpoint(null)), "a checkpoint from before the compute kind was recorded");
        assertNull(TrainCommand.checkpointDtype(checkpoint("cpu f8")), "an unknown dtype");
    }

    private Path checkpoint(String compute) throws IOException {
        Map<String, String> identity = new LinkedHashMap<>(Map.of("lr", "0.04"));
        if (compute != null) {
            identity.put(Trainer.COMPUTE, compute);
        }
        Path f = dir.resolve("ck-" + (compute == null ? "none" : compute.replace(' ', '-')) + ".safetensors");
        new TrainingCheckpoint(new float[] {1, 0}, new float[2], new float[2], 0, 0, 1, 1, 2, identity, List.of()).write(f);
        return f;
    }
}
