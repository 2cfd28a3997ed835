package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.io.Safetensors;
import dev.cdas.io.SafetensorsWriter;
import dev.cdas.io.Tensor;
import dev.cdas.model.Intervention;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
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
 * @param w              the directions, rank x d row-major, rows of unit norm
 * @param rank           the number of directions r
 * @param dimension      d, the model's hidden size
 * @param layer          the block whose output is steered (0-based)
 * @param factorPositive the value that injects the concept, one per row (a+ or +distance)
 * @param factorNegative the value that suppresses it, one per row (a- or -distance)
 * @param model          the model's name
 * @param concept        the concept's name
 * @param method         the method's id: cdas, das or diffmean
 * @param settings       further metadata (training settings, counts), in the order written
 */
public record SteeringVectorFile(float[] w, int rank, int dimension, int layer, double[] factorPositive,
        double[] factorNegative, String model, String concept, String method, Map<String, String> settings) {

    /**
     * Checks the sizes and the method and copies the arrays and settings.
     *
     * @throws InvalidArgumentException when w is not rank x d, the factors are not one per row, the
     *         layer is negative or the method is unknown
     * @throws NullPointerException     when a settings key or value is null
     */
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
        // In the caller's order, not Map.copyOf's: its iteration order changes from one JVM to the next,
        // and the file's metadata is written in this order, so the same vector would differ in bytes.
        settings.forEach((k, v) -> {
            java.util.Objects.requireNonNull(k, "settings key");
            java.util.Objects.requireNonNull(v, "settings value");
        });
        settings = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(settings));
    }

    /**
     * How this vector is applied (its {@code method}).
     *
     * @return the method
     */
    public SteeringMethod steeringMethod() {
        return SteeringMethod.parse(method);
    }

    /**
     * {@code m · factor_positive} (inject) or {@code m · factor_negative} (suppress), one per row.
     *
     * @param inject     true for the positive factors, false for the negative ones
     * @param multiplier m
     * @return one value per row
     */
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
     * @param values one value per row of w
     * @return the intervention
     * @throws InvalidArgumentException when {@code values} does not hold one value per row
     */
    public Intervention intervention(double[] values, int... prefixLen) {
        return steeringMethod().intervention(layer, rank, w, values, prefixLen);
    }

    /**
     * The file's metadata: layer, factors (comma-separated for rank r), model, concept, method,
     * dimension, then the settings (which cannot override those).
     *
     * @return the metadata, in the order written
     */
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

    /**
     * Writes the vector file atomically, creating its folder.
     *
     * @param file the file to write
     * @throws IOException when it cannot be written (the message names it)
     */
    public void write(Path file) throws IOException {
        long[] shape = rank == 1 ? new long[] {dimension} : new long[] {rank, dimension};
        java.nio.file.Files.createDirectories(file.toAbsolutePath().getParent());
        new SafetensorsWriter().metadata(metadata()).add("w", shape, w).write(file);
    }

    /** Names a vector file's tensor may have, in order of preference; a file with one tensor may name it anything. */
    public static final List<String> TENSOR_NAMES = List.of("w", "direction", "directions");

    /** Largest relative deviation of a direction's norm from 1 that a vector file may have (bf16 rounding and more). */
    public static final double NORM_TOLERANCE = 1e-2;

    /**
     * The directions of a vector file and its metadata, as every command reads them: the tensor
     * {@code w} ({@code direction} and {@code directions} are accepted too, and so is a file's only
     * tensor), of shape {@code [d]} or {@code [r, d]}, floating point, every row finite and of unit
     * norm ({@link #NORM_TOLERANCE}); the clamp and the addition are only meaningful for unit directions.
     *
     * @param w          the directions, rank x d row-major
     * @param rank       the number of directions
     * @param dimension  d
     * @param tensorName the tensor they were read from
     * @param metadata   the file's metadata, unmodifiable
     */
    public record Directions(float[] w, int rank, int dimension, String tensorName, Map<String, String> metadata) {}

    /**
     * Reads and checks a vector file's directions ({@link Directions}); errors are one line naming the file.
     *
     * @param file the vector file
     * @return the directions and the metadata
     * @throws InvalidArgumentException when the file has no usable tensor, or a direction is not finite
     *         or not of unit norm
     * @throws IOException              when the file cannot be read or is not a safetensors file
     */
    public static Directions readDirections(Path file) throws IOException {
        try (Safetensors st = Safetensors.open(file)) {
            String name = TENSOR_NAMES.stream().filter(st::contains).findFirst()
                    .orElse(st.names().size() == 1 ? st.names().iterator().next() : null);
            if (name == null) {
                throw new InvalidArgumentException(file + ": no tensor named " + String.join(", ", TENSOR_NAMES)
                        + " (tensors: " + st.names().stream().sorted().collect(Collectors.joining(", ")) + ")");
            }
            Tensor t = st.tensor(name);
            if (t.rank() < 1 || t.rank() > 2 || t.elementCount() == 0) {
                throw new InvalidArgumentException(file + ": tensor " + name + " has shape " + t.shapeString()
                        + "; directions are [d] or [r, d]");
            }
            switch (t.dtype()) {
                case F32, F64, F16, BF16 -> { }
                default -> throw new InvalidArgumentException(file + ": tensor " + name + " has dtype " + t.dtype()
                        + "; directions must be F32, F64, F16 or BF16");
            }
            int rank = t.rank() == 1 ? 1 : (int) t.dim(0);
            int d = (int) t.dim(t.rank() - 1);
            float[] w = t.toFloatArray();
            checkDirections(file.toString(), w, rank, d);
            return new Directions(w, rank, d, name, Map.copyOf(st.metadata()));
        }
    }

    /**
     * Refuses directions steering cannot use: a non-finite value, a zero row, a row whose norm is not 1
     * (within {@link #NORM_TOLERANCE}). {@code where} starts the message (the file).
     *
     * @param where the start of the message (the file)
     * @param w     the directions, rank x d row-major
     * @param rank  the number of directions
     * @param d     the width of each
     * @throws InvalidArgumentException when a direction cannot be used
     */
    public static void checkDirections(String where, float[] w, int rank, int d) {
        for (int r = 0; r < rank; r++) {
            double sq = 0;
            for (int i = 0; i < d; i++) {
                float x = w[r * d + i];
                if (!Float.isFinite(x)) {
                    throw new InvalidArgumentException(where + ": direction " + r + " holds " + x + " at index " + i
                            + "; directions must be finite");
                }
                sq += (double) x * x;
            }
            double norm = Math.sqrt(sq);
            if (norm == 0) {
                throw new InvalidArgumentException(where + ": direction " + r + " is zero; steering needs a unit vector");
            }
            if (!(Math.abs(norm - 1) <= NORM_TOLERANCE)) {
                throw new InvalidArgumentException(where + ": direction " + r + " has norm "
                        + String.format(java.util.Locale.ROOT, "%.4g", norm)
                        + "; steering needs unit vectors (divide it by its norm)");
            }
        }
    }

    /**
     * Reads a vector file with its metadata, as {@link #write} writes it.
     *
     * @param file the vector file
     * @return the vector
     * @throws InvalidArgumentException when the directions cannot be used or a required metadata entry
     *         (layer, factors, model, concept, method) is missing or malformed
     * @throws IOException              when the file cannot be read or is not a safetensors file
     */
    public static SteeringVectorFile read(Path file) throws IOException {
        Directions dirs = readDirections(file);
        {
            Map<String, String> meta = new LinkedHashMap<>(dirs.metadata());
            int rank = dirs.rank();
            try {
                SteeringVectorFile v = new SteeringVectorFile(dirs.w(), rank, dirs.dimension(),
                        parseLayer(file, require(file, meta, "layer")), parse(file, "factor_positive", require(file, meta, "factor_positive")),
                        parse(file, "factor_negative", require(file, meta, "factor_negative")), require(file, meta, "model"),
                        require(file, meta, "concept"), require(file, meta, "method"), Map.of());
                for (String k : v.metadata().keySet()) {
                    meta.remove(k);
                }
                return new SteeringVectorFile(v.w, v.rank, v.dimension, v.layer, v.factorPositive, v.factorNegative,
                        v.model, v.concept, v.method, meta);
            } catch (InvalidArgumentException e) {
                throw e.getMessage().startsWith(file.toString()) ? e : new InvalidArgumentException(file + ": " + e.getMessage(), e);
            }
        }
    }

    private static String require(Path file, Map<String, String> meta, String key) {
        String v = meta.get(key);
        if (v == null) {
            throw new InvalidArgumentException(file + ": metadata \"" + key + "\" is missing");
        }
        return v;
    }

    private static int parseLayer(Path file, String s) {
        try {
            return Integer.parseInt(s.trim());
        } catch (NumberFormatException e) {
            throw new InvalidArgumentException(file + ": metadata \"layer\" = \"" + s + "\" is not an integer");
        }
    }

    private static double[] parse(Path file, String key, String s) {
        double[] v;
        try {
            v = parse(s);
        } catch (NumberFormatException e) {
            throw new InvalidArgumentException(file + ": metadata \"" + key + "\" = \"" + s + "\" is not a list of numbers");
        }
        for (double x : v) {
            if (!Double.isFinite(x)) {
                throw new InvalidArgumentException(file + ": metadata \"" + key + "\" = \"" + s + "\" is not finite");
            }
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
