package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import dev.cdas.model.Model;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The trained result: a safetensors file with one float32 tensor {@code w} ({@code [d]} for rank 1,
 * {@code [r, d]} otherwise) and string metadata {@code layer}, {@code factor_positive},
 * {@code factor_negative}, {@code model}, {@code concept}, {@code method} and the training
 * settings. Factors are numbers for rank 1 and comma-separated lists (one per row) for rank r.
 * Written atomically (temporary file + rename), so a failed run leaves no partial file.
 *
 * <p>{@code method} is one of {@link SteeringMethod}'s ids and decides how the vector is applied
 * ({@link #intervention}): for {@code cdas} and {@code das} the factors are clamp values
 * ({@code a⁺}, {@code a⁻}), for {@code diffmean} amounts added along {@code w}
 * ({@code ±‖μ⁺ − μ⁻‖}, {@link DiffMean}).
 */
public record SteeringVectorFile(float[] w, int rank, int dimension, int layer, double[] factorPositive,
        double[] factorNegative, String model, String concept, String method, Map<String, String> settings) {

    public SteeringVectorFile {
        if (rank < 1 || dimension < 1 || w.length != rank * dimension) {
            throw new InvalidArgumentException("w has " + w.length + " values, not rank " + rank + " x " + dimension);
        }
        if (factorPositive.length != rank || factorNegative.length != rank) {
            throw new InvalidArgumentException("need one positive and one negative factor per row (" + rank + ")");
        }
        if (layer < 0) {
            throw new InvalidArgumentException("layer must be >= 0, got " + layer);
        }
        try {
            SteeringMethod.parse(method);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException("metadata \"method\": " + e.getMessage(), e);
        }
        w = w.clone();
        factorPositive = factorPositive.clone();
        factorNegative = factorNegative.clone();
        settings = Map.copyOf(settings);
    }

    /** How this vector is applied (its {@code method}). */
    public SteeringMethod steeringMethod() {
        return SteeringMethod.parse(method);
    }

    /** {@code m · factor_positive} (inject) or {@code m · factor_negative} (suppress), one per row. */
    public double[] values(boolean inject, double multiplier) {
        double[] v = inject ? factorPositive.clone() : factorNegative.clone();
        for (int r = 0; r < v.length; r++) {
            v[r] *= multiplier;
        }
        return v;
    }

    /**
     * This vector at its layer with {@code values} (one per row, usually {@link #values}) from each
     * sequence's {@code prefixLen} on, as its method applies it: the clamp for cdas and das, the
     * addition {@code h + Wᵀ f} for diffmean ({@link SteeringMethod#intervention}).
     *
     * @param prefixLen one entry per sequence of the batch
     */
    public Model.Intervention intervention(double[] values, int... prefixLen) {
        return steeringMethod().intervention(layer, rank, w, values, prefixLen);
    }

    public Map<String, String> metadata() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("layer", Integer.toString(layer));
        m.put("factor_positive", join(factorPositive));
        m.put("factor_negative", join(factorNegative));
        m.put("model", model);
        m.put("concept", concept);
        m.put("method", method);
        m.put("dimension", Integer.toString(dimension));
        settings.forEach(m::putIfAbsent);
        return m;
    }

    public void write(Path file) throws IOException {
        long[] shape = rank == 1 ? new long[] {dimension} : new long[] {rank, dimension};
        java.nio.file.Files.createDirectories(file.toAbsolutePath().getParent());
        new SafetensorsWriter().metadata(metadata()).add("w", shape, w).write(file);
    }

    public static SteeringVectorFile read(Path file) throws IOException {
        try (Safetensors st = Safetensors.open(file)) {
            if (!st.contains("w")) {
                throw new IOException(file + ": no tensor \"w\" (tensors: " + st.names() + ")");
            }
            Tensor w = st.tensor("w");
            if (w.rank() < 1 || w.rank() > 2) {
                throw new IOException(file + ": tensor \"w\" must be [d] or [r, d], is " + w.shapeString());
            }
            Map<String, String> meta = new LinkedHashMap<>(st.metadata());
            int rank = w.rank() == 1 ? 1 : (int) w.dim(0);
            try {
                SteeringVectorFile v = new SteeringVectorFile(w.toFloatArray(), rank, (int) w.dim(w.rank() - 1),
                        Integer.parseInt(require(file, meta, "layer")), parse(require(file, meta, "factor_positive")),
                        parse(require(file, meta, "factor_negative")), require(file, meta, "model"),
                        require(file, meta, "concept"), require(file, meta, "method"), Map.of());
                for (String k : v.metadata().keySet()) {
                    meta.remove(k);
                }
                return new SteeringVectorFile(v.w, v.rank, v.dimension, v.layer, v.factorPositive, v.factorNegative,
                        v.model, v.concept, v.method, meta);
            } catch (InvalidArgumentException e) {
                throw new IOException(file + ": " + e.getMessage(), e);
            }
        }
    }

    private static String require(Path file, Map<String, String> meta, String key) throws IOException {
        String v = meta.get(key);
        if (v == null) {
            throw new IOException(file + ": metadata \"" + key + "\" is missing");
        }
        return v;
    }

    private static String join(double[] v) {
        return Arrays.stream(v).mapToObj(Double::toString).collect(Collectors.joining(","));
    }

    private static double[] parse(String s) {
        return Arrays.stream(s.split(",")).map(String::trim).mapToDouble(Double::parseDouble).toArray();
    }
}
