package dev.cdas.model;

import dev.cdas.DType;
import dev.cdas.InvalidArgumentException;
import dev.cdas.Native;
import dev.cdas.UnsupportedFeatureException;
import dev.cdas.bindings.cdas_generation_options;
import dev.cdas.bindings.cdas_h;
import dev.cdas.bindings.cdas_intervention;
import dev.cdas.bindings.cdas_logprob_batch;
import dev.cdas.bindings.cdas_objective_batch;
import dev.cdas.bindings.cdas_tensor_view;
import dev.cdas.bindings.cdas_token_batch;
import dev.cdas.io.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Map;

/**
 * Fills the cdas.h structs of the model calls ({@code cdas_tensor_view}, {@code cdas_token_batch},
 * {@code cdas_intervention}, {@code cdas_generation_options}, {@code cdas_objective_batch},
 * {@code cdas_logprob_batch}) from the
 * Java value types, in the caller's arena, after checking what only Java knows: that each array
 * holds as many entries as the struct will say it does. Everything else is checked by libcdas.
 * (The config struct is {@link NativeModelConfig}'s.)
 */
final class NativeModelCalls {
    private NativeModelCalls() {
    }

    /**
     * One tensor view per weight, by canonical name; F64 weights are converted to fp32 in {@code arena},
     * and with {@code copy} every weight is copied there (else the views point into the mapped checkpoint).
     */
    static MemorySegment tensorViews(List<Map.Entry<String, Tensor>> entries, boolean copy, Arena arena) {
        MemorySegment views = cdas_tensor_view.allocateArray(entries.size(), arena);
        for (int i = 0; i < entries.size(); i++) {
            MemorySegment view = cdas_tensor_view.asSlice(views, i);
            Tensor t = entries.get(i).getValue();
            cdas_tensor_view.name(view, arena.allocateFrom(entries.get(i).getKey()));
            MemorySegment data = t.data();
            DType direct = DType.of(t.dtype()).orElse(null);
            if (direct == null) {
                data = toFloat32(t, arena);
            } else if (copy) {  // copy-on-load (Model.COPY_ON_LOAD_PROPERTY): the model's own memory, not the mapping
                data = arena.allocate(data.byteSize(), 64).copyFrom(data);
            }
            cdas_tensor_view.dtype(view, (direct == null ? DType.F32 : direct).code());
            cdas_tensor_view.ndim(view, t.rank());
            MemorySegment shape = cdas_tensor_view.shape(view);
            for (int k = 0; k < t.rank(); k++) {
                shape.setAtIndex(ValueLayout.JAVA_LONG, k, t.dim(k));
            }
            cdas_tensor_view.data(view, data);
        }
        return views;
    }

    private static MemorySegment toFloat32(Tensor t, Arena arena) {
        if (t.dtype() != dev.cdas.io.StorageType.F64) {
            throw new UnsupportedFeatureException("tensor " + t.name() + " has dtype " + t.dtype()
                    + "; the runtime reads F32, BF16, F16 (and converts F64)");
        }
        long n = t.elementCount();
        MemorySegment f = arena.allocate(ValueLayout.JAVA_FLOAT, n);
        for (long i = 0; i < n; i++) {
            f.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) t.data().getAtIndex(ValueLayout.JAVA_DOUBLE_UNALIGNED, i));
        }
        return f;
    }

    static MemorySegment tokenBatch(TokenBatch b, Arena arena) {
        MemorySegment s = cdas_token_batch.allocate(arena);
        cdas_token_batch.batch(s, b.batch());
        cdas_token_batch.seq_len(s, b.seqLen());
        cdas_token_batch.tokens(s, arena.allocateFrom(ValueLayout.JAVA_INT, b.tokens()));
        cdas_token_batch.attention_mask(s, b.mask() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_BYTE, b.mask()));
        return s;
    }

    /** An intervention for a batch of {@code batch} rows of a model with hidden size {@code d}. */
    static MemorySegment intervention(Intervention iv, long d, int batch, Arena arena) {
        if (iv.directions().length != iv.rank() * d) {
            throw new InvalidArgumentException("intervention directions must hold rank x d = " + iv.rank() * d
                    + " floats, got " + iv.directions().length);
        }
        if (iv.values() != null && iv.values().length != (long) batch * iv.rank()) {
            throw new InvalidArgumentException("intervention values must hold batch x rank = " + (long) batch * iv.rank()
                    + " floats, got " + iv.values().length);
        }
        if (iv.sourcePositions() != null && iv.sourcePositions().length != batch) {
            throw new InvalidArgumentException("intervention sourcePositions must hold one entry per row (" + batch
                    + "), got " + iv.sourcePositions().length);
        }
        if (iv.prefixLen() != null && iv.prefixLen().length != batch) {
            throw new InvalidArgumentException("intervention prefixLen must hold one entry per row (" + batch + "), got "
                    + iv.prefixLen().length);
        }
        MemorySegment s = cdas_intervention.allocate(arena);
        cdas_intervention.layer(s, iv.layer());
        cdas_intervention.rank(s, iv.rank());
        cdas_intervention.directions(s, arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.directions()));
        cdas_intervention.values(s, iv.values() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.values()));
        cdas_intervention.source_positions(s, iv.sourcePositions() == null ? MemorySegment.NULL
                : arena.allocateFrom(ValueLayout.JAVA_INT, iv.sourcePositions()));
        cdas_intervention.prefix_len(s, iv.prefixLen() == null ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_INT, iv.prefixLen()));
        cdas_intervention.mode(s, switch (iv.mode()) {
            case CLAMP -> cdas_h.CDAS_INTERVENTION_CLAMP();
            case ADD -> cdas_h.CDAS_INTERVENTION_ADD();
            case LOREFT -> cdas_h.CDAS_INTERVENTION_LOREFT();
            case NULL_OUT -> cdas_h.CDAS_INTERVENTION_NULL_OUT();
        });
        cdas_intervention.loreft_weight(s, iv.loreftWeight() == null ? MemorySegment.NULL
                : arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.loreftWeight()));
        cdas_intervention.loreft_bias(s, iv.loreftBias() == null ? MemorySegment.NULL
                : arena.allocateFrom(ValueLayout.JAVA_FLOAT, iv.loreftBias()));
        return s;
    }

    /** The scored sequences of {@code cdas_model_sequence_logprobs} (array lengths checked by {@link LogProbBatch}). */
    static MemorySegment logProbBatch(LogProbBatch batch, Arena arena) {
        MemorySegment s = cdas_logprob_batch.allocate(arena);
        cdas_logprob_batch.tokens(s, tokenBatch(batch.tokens(), arena));
        cdas_logprob_batch.prefix_len(s, batch.prefixLen() == null ? MemorySegment.NULL
                : arena.allocateFrom(ValueLayout.JAVA_INT, batch.prefixLen()));
        cdas_logprob_batch.score_start(s, arena.allocateFrom(ValueLayout.JAVA_INT, batch.scoreStart()));
        cdas_logprob_batch.score_count(s, arena.allocateFrom(ValueLayout.JAVA_INT, batch.scoreCount()));
        return s;
    }

    static MemorySegment generationOptions(GenerationOptions o, Arena arena) {
        MemorySegment opts = cdas_generation_options.allocate(arena);
        Native.check(cdas_h.cdas_generation_options_default(opts));
        cdas_generation_options.max_new_tokens(opts, o.maxNewTokens());
        cdas_generation_options.temperature(opts, o.temperature());
        cdas_generation_options.top_p(opts, o.topP());
        cdas_generation_options.top_k(opts, o.topK());
        cdas_generation_options.seed(opts, o.seed());
        int[] eos = o.eosIds() == null ? new int[0] : o.eosIds();
        cdas_generation_options.eos_ids(opts, eos.length == 0 ? MemorySegment.NULL : arena.allocateFrom(ValueLayout.JAVA_INT, eos));
        cdas_generation_options.eos_count(opts, eos.length);
        return opts;
    }

    /** A minibatch of the objective of a model with hidden size {@code d}. */
    static MemorySegment objectiveBatch(ObjectiveBatch batch, ObjectiveLoss lossKind, long d, Arena arena) {
        return objectiveBatch(batch, lossKind, d, null, 0, 0, arena);
    }

    /** The same, packed: example b uses direction set {@code directionIndex[b]} of {@code sets} (null: not packed). */
    static MemorySegment objectiveBatch(ObjectiveBatch batch, ObjectiveLoss lossKind, long d, int[] directionIndex, int sets,
                                        int packPadding,
            Arena arena) {
        int b = batch.base().batch();
        if (directionIndex != null && directionIndex.length != b) {
            throw new InvalidArgumentException("directionIndex must hold one entry per example (" + b + "), got "
                    + directionIndex.length);
        }
        for (var e : List.of(Map.entry("prefixLen", nonNull(batch.prefixLen(), "prefixLen")),
                Map.entry("sourcePositions", nonNull(batch.sourcePositions(), "sourcePositions")),
                Map.entry("baseStart", nonNull(batch.baseStart(), "baseStart")),
                Map.entry("targetStart", nonNull(batch.targetStart(), "targetStart")),
                Map.entry("compareCount", nonNull(batch.compareCount(), "compareCount")))) {
            if (e.getValue().length != b) {
                throw new InvalidArgumentException(e.getKey() + " must hold one entry per example (" + b + "), got "
                        + e.getValue().length);
            }
        }
        MemorySegment ob = cdas_objective_batch.allocate(arena);
        cdas_objective_batch.base(ob, tokenBatch(batch.base(), arena));
        cdas_objective_batch.source(ob, tokenBatch(batch.source(), arena));
        cdas_objective_batch.target(ob, tokenBatch(batch.target(), arena));
        cdas_objective_batch.prefix_len(ob, arena.allocateFrom(ValueLayout.JAVA_INT, batch.prefixLen()));
        cdas_objective_batch.source_positions(ob, arena.allocateFrom(ValueLayout.JAVA_INT, batch.sourcePositions()));
        cdas_objective_batch.base_start(ob, arena.allocateFrom(ValueLayout.JAVA_INT, batch.baseStart()));
        cdas_objective_batch.target_start(ob, arena.allocateFrom(ValueLayout.JAVA_INT, batch.targetStart()));
        cdas_objective_batch.compare_count(ob, arena.allocateFrom(ValueLayout.JAVA_INT, batch.compareCount()));
        cdas_objective_batch.base_hidden(ob, state(arena, batch.baseHidden(), (long) b * batch.base().seqLen() * d, "baseHidden"));
        cdas_objective_batch.source_hidden(ob, state(arena, batch.sourceHidden(), (long) b * d, "sourceHidden"));
        cdas_objective_batch.teacher_hidden(ob, state(arena, batch.teacherHidden(), batch.comparedRows() * d, "teacherHidden"));
        cdas_objective_batch.loss(ob, switch (lossKind) {
            case JSD -> cdas_h.CDAS_LOSS_JSD();
            case JSD_COMPOSED -> cdas_h.CDAS_LOSS_JSD_COMPOSED();
            case CROSS_ENTROPY -> cdas_h.CDAS_LOSS_CROSS_ENTROPY();
        });
        if (directionIndex != null) {
            cdas_objective_batch.direction_index(ob, arena.allocateFrom(ValueLayout.JAVA_INT, directionIndex));
            cdas_objective_batch.direction_count(ob, sets);
            cdas_objective_batch.pack_padding(ob, packPadding);
        }
        return ob;
    }

    private static int[] nonNull(int[] a, String name) {
        if (a == null) {
            throw new InvalidArgumentException(name + " must not be null");
        }
        return a;
    }

    private static MemorySegment state(Arena arena, float[] data, long expected, String name) {
        if (data == null) {
            return MemorySegment.NULL;
        }
        if (data.length != expected) {
            throw new InvalidArgumentException(name + " must hold " + expected + " floats, got " + data.length);
        }
        return arena.allocateFrom(ValueLayout.JAVA_FLOAT, data);
    }

    /** An fp32 output buffer of n floats. */
    static MemorySegment floats(Arena arena, long n) {
        return arena.allocate(ValueLayout.JAVA_FLOAT, n);
    }

    /** The floats of an output buffer, or null for an output not asked ({@link MemorySegment#NULL}). */
    static float[] toArray(MemorySegment s) {
        return s.equals(MemorySegment.NULL) ? null : s.toArray(ValueLayout.JAVA_FLOAT);
    }
}
