package dev.cdas.train;

import dev.cdas.io.StorageType;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Everything a run needs to continue as if it had never stopped: the directions, AdamW's moments
 * and step count, the optimiser step reached, the generator state from which the current epoch's
 * permutation is drawn, and the loss history. Stored as a safetensors file (written atomically
 * by {@link SafetensorsWriter}); the settings and a fingerprint of the data go into its metadata
 * so that resuming with other settings or data is refused rather than silently mixed.
 *
 * @param w             the directions, rank x d row-major
 * @param adamM         AdamW's first moment, same layout
 * @param adamV         AdamW's second moment, same layout
 * @param adamStep      AdamW's step count
 * @param step          the optimiser steps done
 * @param epochRngState the generator state the current epoch's permutation is drawn from
 * @param rank          the number of directions r
 * @param dimension     d
 * @param identity      the settings and the data fingerprint the run must match to resume
 * @param history       the loss log so far, one entry per step
 */
public record TrainingCheckpoint(
        float[] w,
        float[] adamM,
        float[] adamV,
        long adamStep,
        long step,
        long epochRngState,
        int rank,
        int dimension,
        Map<String, String> identity,
        List<LossLog.Entry> history) {

    static final String FORMAT = "cdas-train-checkpoint-1";
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /**
     * Writes the checkpoint atomically, creating its folder.
     *
     * @param file the checkpoint file
     * @throws IOException when it cannot be written (the message names it)
     */
    public void write(Path file) throws IOException {
        long[] shape = rank == 1 ? new long[] {dimension} : new long[] {rank, dimension};
        int n = history.size();
        SafetensorsWriter out = new SafetensorsWriter()
                .metadata(identity)
                .metadata("format", FORMAT)
                .metadata("step", Long.toString(step))
                .metadata("adam_step", Long.toString(adamStep))
                .metadata("epoch_rng_state", Long.toString(epochRngState))
                .add("w", shape, w)
                .add("adam_m", shape, adamM)
                .add("adam_v", shape, adamV);
        if (n > 0) {
            long[] ints = new long[n * 3];
            for (int i = 0; i < n; i++) {
                LossLog.Entry e = history.get(i);
                ints[3 * i] = e.step();
                ints[3 * i + 1] = e.epoch();
                ints[3 * i + 2] = e.tokens();
            }
            out.add("history_step_epoch_tokens", new long[] {n, 3}, ints);
            out.add("history_loss_gradnorm_lr", StorageType.F64, new long[] {n, 3}, dst -> {
                for (int i = 0; i < n; i++) {
                    LossLog.Entry e = history.get(i);
                    dst.setAtIndex(F64, 3L * i, e.loss());
                    dst.setAtIndex(F64, 3L * i + 1, e.gradNorm());
                    dst.setAtIndex(F64, 3L * i + 2, e.lr());
                }
            });
        }
        java.nio.file.Files.createDirectories(file.toAbsolutePath().getParent());
        out.write(file);
    }

    /**
     * Reads a checkpoint written by {@link #write}.
     *
     * @param file the checkpoint file
     * @return the checkpoint
     * @throws IOException when it cannot be read, is not a training checkpoint, or is malformed (the message names it)
     */
    public static TrainingCheckpoint read(Path file) throws IOException {
        try (Safetensors st = Safetensors.open(file)) {
            Map<String, String> meta = new HashMap<>(st.metadata());
            if (!FORMAT.equals(meta.get("format"))) {
                throw new IOException(file + ": not a training checkpoint (metadata format = " + meta.get("format") + ")");
            }
            Tensor w = st.tensor("w");
            int rank = w.rank() == 1 ? 1 : (int) w.dim(0);
            int dim = (int) w.dim(w.rank() - 1);
            long step = Long.parseLong(meta.remove("step"));
            long adamStep = Long.parseLong(meta.remove("adam_step"));
            long rngState = Long.parseLong(meta.remove("epoch_rng_state"));
            meta.remove("format");
            List<LossLog.Entry> history = new ArrayList<>();
            if (st.contains("history_step_epoch_tokens")) {
                Tensor ints = st.tensor("history_step_epoch_tokens");
                Tensor reals = st.tensor("history_loss_gradnorm_lr");
                for (int i = 0; i < ints.dim(0); i++) {
                    history.add(new LossLog.Entry(ints.data().getAtIndex(I64, 3L * i),
                            (int) ints.data().getAtIndex(I64, 3L * i + 1),
                            reals.data().getAtIndex(F64, 3L * i), reals.data().getAtIndex(F64, 3L * i + 1),
                            reals.data().getAtIndex(F64, 3L * i + 2), ints.data().getAtIndex(I64, 3L * i + 2)));
                }
            }
            return new TrainingCheckpoint(w.toFloatArray(), st.tensor("adam_m").toFloatArray(),
                    st.tensor("adam_v").toFloatArray(), adamStep, step, rngState, rank, dim, Map.copyOf(meta), history);
        } catch (RuntimeException e) {
            throw new IOException(file + ": unreadable training checkpoint: " + e.getMessage(), e);
        }
    }
}
