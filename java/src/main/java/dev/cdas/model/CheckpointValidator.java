package dev.cdas.model;

import dev.cdas.InvalidArgumentException;
import dev.cdas.io.Checkpoint;
import dev.cdas.io.StorageType;
import dev.cdas.io.ModelFormatException;
import dev.cdas.io.SafetensorsFormatException;
import dev.cdas.io.Tensor;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Checks a checkpoint against its config before anything is handed to the runtime: every tensor
 * the config implies is present, has the implied shape and a floating-point dtype. Problems are
 * all collected; the exception names the first one's file and tensor and lists the rest.
 */
public final class CheckpointValidator {
    private static final int MAX_LISTED = 12;

    private CheckpointValidator() {}

    /**
     * What a valid checkpoint resolves to; {@code source} (nullable) is the mapped checkpoint the
     * tensors are slices of, watched by {@link #checkUnchanged()}.
     *
     * @param byCanonicalName every weight found, by its transformers name
     * @param dtype           the storage type most of the weights have
     * @param unused          the checkpoint's tensors the config does not use (reported, not an error)
     * @param source          the mapped checkpoint the tensors are views of, or null
     */
    public record Weights(Map<String, Tensor> byCanonicalName, StorageType dtype, Set<String> unused, Checkpoint source) {
        /**
         * Weights with no mapped checkpoint behind them (built in memory).
         *
         * @param byCanonicalName every weight, by its transformers name
         * @param dtype           the storage type most of the weights have
         * @param unused          tensors the config does not use
         */
        public Weights(Map<String, Tensor> byCanonicalName, StorageType dtype, Set<String> unused) {
            this(byCanonicalName, dtype, unused, null);
        }

        /**
         * Fails, naming the file, when a mapped file was changed in place since it was opened ({@link Checkpoint#checkUnchanged()}).
         *
         * @throws SafetensorsFormatException when a file's size or modification time changed
         */
        public void checkUnchanged() throws SafetensorsFormatException {
            if (source != null) {
                source.checkUnchanged();
            }
        }

        /**
         * A weight by its transformers name (as {@link ModelConfig#expectedWeights()} spells it).
         *
         * @param canonicalName the weight's transformers name
         * @return the tensor
         * @throws InvalidArgumentException when there is no such weight
         */
        public Tensor get(String canonicalName) {
            Tensor t = byCanonicalName.get(canonicalName);
            if (t == null) {
                throw new InvalidArgumentException("no weight " + canonicalName + " (tied or not part of this family)");
            }
            return t;
        }

        /**
         * The output head: lm_head.weight, or the token embedding (every layout's first tensor) when the head is tied.
         *
         * @param config the model's configuration
         * @return the head, V x d
         * @throws InvalidArgumentException when neither tensor is there
         */
        public Tensor lmHead(ModelConfig config) {
            Tensor head = byCanonicalName.get("lm_head.weight");
            if (head != null) {
                return head;
            }
            return get(config.expectedWeights().getFirst().name());
        }
    }

    /**
     * Checks a checkpoint against what {@code config} implies: every required tensor present under its
     * name (or its alternative), with the implied shape and a floating-point type.
     *
     * @param config     the model's configuration
     * @param checkpoint the opened checkpoint
     * @return the weights by canonical name, their main storage type and the unused tensors
     * @throws ModelFormatException when a tensor is missing, misshapen or not floating point, or the
     *         checkpoint holds too few tensors for the config's blocks (the message lists the problems found)
     */
    public static Weights validate(ModelConfig config, Checkpoint checkpoint) throws ModelFormatException {
        List<ModelFormatException> problems = new ArrayList<>();
        Map<String, Tensor> found = new LinkedHashMap<>();
        Set<String> used = new LinkedHashSet<>();
        Map<StorageType, Integer> dtypes = new EnumMap<>(StorageType.class);
        String cfgName = config.source() == null ? ModelConfig.FILE_NAME : config.source().getFileName().toString();
        // Every block has weights: a config declaring more blocks than the checkpoint has tensors is
        // refused before the per-layer list of expected weights is built.
        if (config.numLayers() > checkpoint.names().size()) {
            throw new SafetensorsFormatException(checkpoint.location(), null, "holds " + checkpoint.names().size()
                    + " tensors, too few for the " + config.numLayers() + " blocks " + cfgName + " declares");
        }
        for (WeightSpec spec : config.expectedWeights()) {
            String actual = resolve(checkpoint, spec);
            if (actual == null) {
                if (!spec.optional()) {
                    problems.add(new SafetensorsFormatException(checkpoint.location(), "tensor " + spec.name(),
                            "tensor " + spec.name() + " is missing (" + cfgName + " implies " + spec.shapeString() + ")"));
                }
                continue;
            }
            Tensor t;
            try {
                t = checkpoint.tensor(actual);
            } catch (SafetensorsFormatException e) {
                problems.add(e);
                continue;
            }
            used.add(actual);
            Path file = checkpoint.fileOf(actual);
            if (!Arrays.equals(t.shape(), spec.shape())) {
                problems.add(new SafetensorsFormatException(file, "tensor " + actual,
                        "tensor " + actual + " has shape " + t.shapeString() + ", " + cfgName + " implies " + spec.shapeString()));
            } else if (!t.dtype().isFloatingPoint()) {
                problems.add(new SafetensorsFormatException(file, "tensor " + actual,
                        "tensor " + actual + " has dtype " + t.dtype() + ", a floating-point type is needed"));
            } else {
                found.put(spec.name(), t);
                dtypes.merge(t.dtype(), 1, Integer::sum);
            }
        }
        if (!problems.isEmpty()) {
            throw summarize(problems);
        }
        StorageType main = dtypes.entrySet().stream().max(Map.Entry.comparingByValue()).map(Map.Entry::getKey).orElse(StorageType.F32);
        Set<String> unused = new LinkedHashSet<>(checkpoint.names());
        unused.removeAll(used);
        return new Weights(Collections.unmodifiableMap(found), main, Collections.unmodifiableSet(unused), checkpoint);
    }

    /** The checkpoint's name for a canonical one, or its alternative (GPT-2 hub files omit the "transformer." prefix). */
    private static String resolve(Checkpoint checkpoint, WeightSpec spec) {
        if (checkpoint.contains(spec.name())) {
            return spec.name();
        }
        if (spec.alternativeName() != null && checkpoint.contains(spec.alternativeName())) {
            return spec.alternativeName();
        }
        return null;
    }

    private static ModelFormatException summarize(List<ModelFormatException> problems) {
        ModelFormatException first = problems.getFirst();
        if (problems.size() == 1) {
            return first;
        }
        List<String> more = new ArrayList<>();
        more.add("(" + (problems.size() - 1) + " more problem" + (problems.size() > 2 ? "s" : "") + ")");
        for (ModelFormatException p : problems.subList(1, Math.min(problems.size(), MAX_LISTED))) {
            more.add("  " + p.getMessage());
        }
        if (problems.size() > MAX_LISTED) {
            more.add("  ...");
        }
        ModelFormatException e = new SafetensorsFormatException(first.file(), first.field(),
                first.getMessage().substring(first.file().toString().length() + 2), more);
        problems.forEach(e::addSuppressed);
        return e;
    }
}
