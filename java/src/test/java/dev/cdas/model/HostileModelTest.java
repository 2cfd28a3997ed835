package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.InvalidArgumentException;
import dev.cdas.NativeIOException;
import dev.cdas.io.Checkpoint;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Issue 16 at the model level: a tied config with its own lm_head.weight (item 10), sequences past a
 * rotary model's context (item 7), and a memory-mapped checkpoint changed under a running model
 * (item 6).
 */
class HostileModelTest {
    private static final RuntimeOptions CPU = RuntimeOptions.defaults().withThreads(1);

    /** A copy of a fixture's config.json and weights (one model.safetensors), plus {@code extra} tensors. */
    private static Path copyFixture(String family, Path dir, Tensor... extra) throws Exception {
        Path src = Fixtures.dir(family);
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        SafetensorsWriter w = new SafetensorsWriter();
        try (Checkpoint ckpt = Checkpoint.open(src)) {
            for (String name : ckpt.names()) {
                w.add(ckpt.tensor(name));
            }
            for (Tensor t : extra) {
                w.add(t);
            }
            w.write(dir.resolve("model.safetensors"));
        }
        return dir;
    }

    /**
     * Item 10. transformers (v5, PreTrainedModel.tie_weights while loading) does not tie a head the
     * checkpoint holds when it differs from the embeddings, so the logits are the final hidden
     * states transformers computed (reference.safetensors, after the final norm) times that head.
     */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "gemma2"})
    void tiedConfigWithADifferentSavedHeadUsesThatHead(String family, @TempDir Path tmp) throws Exception {
        ModelTest.Reference ref = ModelTest.Reference.load(family);
        ModelConfig config = ModelConfig.load(Fixtures.dir(family));
        assertTrue(config.tieWordEmbeddings(), family + " fixture is tied");
        int v = config.vocabSize();
        int d = config.hiddenSize();
        int t = ref.ids().length;
        float[] head = new float[v * d];
        Random rng = new Random(16);
        for (int i = 0; i < head.length; i++) {
            head[i] = (float) (rng.nextGaussian() / Math.sqrt(d));
        }
        float[] last = ref.hidden().get(config.numLayers());
        float[] expected = new float[t * v];
        for (int r = 0; r < t; r++) {
            for (int j = 0; j < v; j++) {
                double z = 0;
                for (int k = 0; k < d; k++) {
                    z += (double) last[r * d + k] * head[j * d + k];
                }
                if (config.finalLogitSoftcap().isPresent()) {
                    double cap = config.finalLogitSoftcap().getAsDouble();
                    z = cap * Math.tanh(z / cap);
                }
                expected[r * v + j] = (float) z;
            }
        }
        assertTrue(ModelTest.maxAbsDiff(expected, ref.logits()) > 0.1, "the separate head must change the logits");
        java.lang.foreign.MemorySegment data = java.lang.foreign.MemorySegment.ofArray(head);
        Path dir = copyFixture(family, Files.createDirectories(tmp.resolve("separate")),
                new Tensor("lm_head.weight", dev.cdas.io.StorageType.F32, new long[] {v, d}, data));
        try (Model model = Model.load(dir, CPU)) {
            float[] got = model.logits(TokenBatch.single(ref.ids()));
            double diff = ModelTest.maxAbsDiff(got, expected);
            assertTrue(diff <= 1e-4, family + ": logits with the saved head differ from h_L x lm_head^T by " + diff);
        }
        // A saved head equal to the embeddings is tied, as transformers does: the fixture's logits.
        try (Checkpoint ckpt = Checkpoint.open(Fixtures.dir(family))) {
            Tensor embed = CheckpointValidator.validate(config, ckpt).get(config.expectedWeights().getFirst().name());
            assertArrayEquals(new long[] {v, d}, embed.shape());
            Path same = copyFixture(family, Files.createDirectories(tmp.resolve("same")),
                    new Tensor("lm_head.weight", embed.dtype(), embed.shape(), embed.data()));
            try (Model model = Model.load(same, CPU)) {
                double diff = ModelTest.maxAbsDiff(model.logits(TokenBatch.single(ref.ids())), ref.logits());
                assertTrue(diff <= 1e-4, family + ": an equal saved head changes the logits by " + diff);
            }
        }
    }

    /** Item 7: a rotary model refuses a sequence past max_position_embeddings (64 in the fixture), naming config.json. */
    @ParameterizedTest
    @ValueSource(strings = {"qwen2", "llama", "phi3", "gemma2"})
    void rotaryModelsRefuseSequencesLongerThanTheContext(String family) throws Exception {
        try (Model model = Model.load(Fixtures.dir(family), CPU)) {
            int context = model.config().maxPositions();
            assertEquals(64, context);
            int[] fits = new int[context];
            int[] over = new int[context + 1];
            for (int i = 0; i < over.length; i++) {
                over[i] = (i * 7 + 3) % model.config().vocabSize();
                if (i < fits.length) {
                    fits[i] = over[i];
                }
            }
            assertEquals(context * model.config().vocabSize(), model.logits(TokenBatch.single(fits)).length);
            InvalidArgumentException e = assertThrows(InvalidArgumentException.class, () -> model.logits(TokenBatch.single(over)));
            assertTrue(e.getMessage().contains("65 tokens long, more than the model's context of 64 positions (max_position_embeddings in ")
                    && e.getMessage().contains("config.json"), e.getMessage());
            GenerationOptions o = GenerationOptions.greedy(2);
            InvalidArgumentException g = assertThrows(InvalidArgumentException.class, () -> model.generate(TokenBatch.single(over), null, o));
            assertTrue(g.getMessage().startsWith("the prompt is 65 tokens long"), g.getMessage());
        }
    }

    private static int[] someTokens(Model model) {
        return new int[] {1, 5, 9, 2, 7};
    }

    /** Item 6: the file grows between open and first use: the model is not created, and the message names the file. */
    @Test
    void checkpointChangedBetweenOpenAndFirstUseIsRefused(@TempDir Path tmp) throws Exception {
        Path dir = copyFixture("gpt2", tmp, new Tensor[0]);
        Path file = dir.resolve("model.safetensors");
        ModelConfig config = ModelConfig.load(dir);
        try (Checkpoint ckpt = Checkpoint.open(dir)) {
            CheckpointValidator.Weights weights = CheckpointValidator.validate(config, ckpt);
            Files.write(file, new byte[16], StandardOpenOption.APPEND);
            NativeIOException e = assertThrows(NativeIOException.class, () -> Model.create(config, weights, null, CPU));
            assertTrue(e.getMessage().startsWith(file + ": was changed while mapped"), e.getMessage());
            assertEquals(1, e.getMessage().lines().count());
        }
    }

    /** Item 6: truncated under a running model: the next call fails naming the file instead of SIGBUS in native code. */
    @Test
    void truncatedWhileInUseIsRefusedBeforeNativeCodeReadsIt(@TempDir Path tmp) throws Exception {
        Path dir = copyFixture("gpt2", tmp, new Tensor[0]);
        Path file = dir.resolve("model.safetensors");
        try (Model model = Model.load(dir, CPU)) {
            assertTrue(model.borrowsWeights());
            model.logits(TokenBatch.single(someTokens(model)));
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.truncate(100);
            }
            NativeIOException e = assertThrows(NativeIOException.class, () -> model.logits(TokenBatch.single(someTokens(model))));
            assertTrue(e.getMessage().startsWith(file + ": was changed while mapped"), e.getMessage());
            assertThrows(NativeIOException.class, () -> model.generate(TokenBatch.single(someTokens(model)), null,
                    GenerationOptions.greedy(2)));
        }
    }

    /** Item 6: the same size rewritten in place is caught by its modification time. */
    @Test
    void rewrittenInPlaceIsCaughtByItsModificationTime(@TempDir Path tmp) throws Exception {
        Path dir = copyFixture("gpt2", tmp, new Tensor[0]);
        Path file = dir.resolve("model.safetensors");
        try (Model model = Model.load(dir, CPU)) {
            model.logits(TokenBatch.single(someTokens(model)));
            FileTime was = Files.getLastModifiedTime(file);
            Files.setLastModifiedTime(file, FileTime.fromMillis(was.toMillis() + 5000));
            NativeIOException e = assertThrows(NativeIOException.class, () -> model.logits(TokenBatch.single(someTokens(model))));
            assertTrue(e.getMessage().contains(file.toString()) && e.getMessage().contains("rename it over"), e.getMessage());
        }
    }

    /** Item 6: replacing the file the documented way (a new file renamed over it) leaves the running model working. */
    @Test
    void replacingByRenameKeepsTheRunningModel(@TempDir Path tmp) throws Exception {
        Path dir = copyFixture("gpt2", tmp, new Tensor[0]);
        Path file = dir.resolve("model.safetensors");
        try (Model model = Model.load(dir, CPU)) {
            float[] before = model.logits(TokenBatch.single(someTokens(model)));
            Path fresh = dir.resolve("new.safetensors");
            Files.write(fresh, new byte[] {1, 2, 3});
            Files.move(fresh, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            assertArrayEquals(before, model.logits(TokenBatch.single(someTokens(model))));
        }
    }

    /** Item 6: with copy-on-load the model owns its weights, and a truncated checkpoint changes nothing. */
    @Test
    void copyOnLoadSurvivesTruncation(@TempDir Path tmp) throws Exception {
        Path dir = copyFixture("gpt2", tmp, new Tensor[0]);
        Path file = dir.resolve("model.safetensors");
        float[] reference;
        try (Model model = Model.load(dir, CPU)) {
            reference = model.logits(TokenBatch.single(someTokens(model)));
        }
        System.setProperty(Model.COPY_ON_LOAD_PROPERTY, "true");
        try (Model model = Model.load(dir, CPU)) {
            assertFalse(model.borrowsWeights(), "copied weights are the model's own");
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.truncate(100);
            }
            assertArrayEquals(reference, model.logits(TokenBatch.single(someTokens(model))));
        } finally {
            System.clearProperty(Model.COPY_ON_LOAD_PROPERTY);
        }
    }
}
