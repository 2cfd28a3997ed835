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
 * ({@code ±‖μ⁺ − μ⁻‖}, {@link DiffMean}), and so for {@code reps} and {@code bipo} ({@code ±‖v‖}
 * of their trained v, w = v/‖v‖). A {@code prompt} file ({@link #prompt}) has no tensor
 * and no layer ({@code w} empty, dimension 0, layer {@link #NO_LAYER}): its metadata holds the
 * templates of {@link PromptSteering}, its factors are +1 and −1, and it is applied by
 * {@link #message} instead of {@link #intervention}.
 *
 * <p>A {@code loreft} file holds LoReFT's two edits ({@link LoreftParameters}, {@link #loreft}): w is
 * the injecting edit's R, and the tensors {@code loreft_weight} [r, d] and {@code loreft_bias} [r]
 * its W and b; {@code loreft_suppress_r}, {@code loreft_suppress_weight} and
 * {@code loreft_suppress_bias} the suppressing edit's. Its factors are +1 and −1: the sign of a
 * value picks the edit, which is applied as trained (LoReFT has no steering factor).
 *
 * @param loreft LoReFT's parameters (both edits), null for the other methods
 * @param w the directions, rank x d row-major (empty for prompt)
 * @param rank the number of rows of w
 * @param dimension d (0 for prompt)
 * @param layer the block the vector acts on ({@link #NO_LAYER} for prompt)
 * @param factorPositive the factors that inject, one per row
 * @param factorNegative the factors that suppress, one per row
 * @param model the model it was made for
 * @param concept the concept
 * @param method one of {@link SteeringMethod}'s ids
 * @param settings further metadata
 */
public record SteeringVectorFile(float[] w, int rank, int dimension, int layer, double[] factorPositive,
        double[] factorNegative, String model, String concept, String method, Map<String, String> settings,
        float[] loreft) {

    /** Tensors of a loreft file besides w, in the order of {@link LoreftParameters}' layout after R⁺. */
    public static final List<String> LOREFT_TENSORS = List.of("loreft_weight", "loreft_bias", "loreft_suppress_r",
            "loreft_suppress_weight", "loreft_suppress_bias");

    /**
     * A vector of any method but loreft (no LoReFT parameters).
     *
     * @param w              the directions, rank x d row-major (empty for prompt)
     * @param rank           the number of rows of w
     * @param dimension      d (0 for prompt)
     * @param layer          the block the vector acts on ({@link #NO_LAYER} for prompt)
     * @param factorPositive the factors that inject, one per row
     * @param factorNegative the factors that suppress, one per row
     * @param model          the model it was made for
     * @param concept        the concept
     * @param method         one of {@link SteeringMethod}'s ids
     * @param settings       further metadata
     * @throws InvalidArgumentException as the canonical constructor
     */
    public SteeringVectorFile(float[] w, int rank, int dimension, int layer, double[] factorPositive,
            double[] factorNegative, String model, String concept, String method, Map<String, String> settings) {
        this(w, rank, dimension, layer, factorPositive, factorNegative, model, concept, method, settings, null);
    }

    /**
     * Checks the sizes and the method and copies the arrays and settings.
     *
     * @throws InvalidArgumentException when w is not rank x d, the factors are not one per row, the
     *         layer is negative or the method is unknown
     * @throws NullPointerException     when a settings key or value is null
     */
    public SteeringVectorFile {
        SteeringMethod parsed;
        try {
            parsed = SteeringMethod.parse(method);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException("metadata \"method\": " + e.getMessage(), e);
        }
        if (parsed.steersByPrompt()) {
            if (w.length != 0 || rank != 1 || dimension != 0 || layer != NO_LAYER) {
                throw new InvalidArgumentException("method prompt has no vector and no layer (w empty, rank 1, dimension 0, layer "
                        + NO_LAYER + "), got " + w.length + " values, rank " + rank + ", dimension " + dimension + ", layer " + layer);
            }
            PromptSteering.fromMetadata("metadata", settings, concept);
        } else {
            if (rank < 1 || dimension < 1 || w.length != rank * dimension) {
                throw new InvalidArgumentException("w has " + w.length + " values, not rank " + rank + " x " + dimension);
            }
            if (layer < 0) {
                throw new InvalidArgumentException("layer must be >= 0, got " + layer);
            }
        }
        if (factorPositive.length != rank || factorNegative.length != rank) {
            throw new InvalidArgumentException("need one positive and one negative factor per row (" + rank + ")");
        }
        boolean isLoreft = parsed == SteeringMethod.LOREFT;
        if (isLoreft != (loreft != null)) {
            throw new InvalidArgumentException(isLoreft ? "a loreft vector needs its W and b (the loreft_* tensors)"
                    : "only a loreft vector has LoReFT parameters");
        }
        if (loreft != null) {
            if (loreft.length != LoreftParameters.count(rank, dimension)) {
                throw new InvalidArgumentException("LoReFT parameters hold " + loreft.length + " values, not the "
                        + LoreftParameters.count(rank, dimension) + " of two edits of rank " + rank + " x " + dimension);
            }
            if (!java.util.Arrays.equals(w, LoreftParameters.r(loreft, rank, dimension))) {
                throw new InvalidArgumentException("w must be the injecting LoReFT edit's R");
            }
            loreft = loreft.clone();
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

    /** The {@code layer} of a prompt file, which has none. */
    public static final int NO_LAYER = -1;

    /**
     * A prompt-steering file ({@link SteeringMethod#PROMPT}): no tensor, the templates in its
     * metadata, factors +1 (inject) and −1 (suppress).
     *
     * @param prompt the templates
     * @param model the model it was made for
     * @param settings further metadata
     * @return the prompt file
     */
    public static SteeringVectorFile prompt(PromptSteering prompt, String model, Map<String, String> settings) {
        Map<String, String> meta = new LinkedHashMap<>(prompt.toMetadata());
        settings.forEach(meta::putIfAbsent);
        return new SteeringVectorFile(new float[0], 1, 0, NO_LAYER, new double[] {1}, new double[] {-1}, model,
                prompt.concept(), SteeringMethod.PROMPT.id(), meta);
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
     * Whether this file steers by rewriting the prompt (method prompt): no vector, no layer.
     *
     * @return true for a prompt file
     */
    public boolean steersByPrompt() {
        return steeringMethod().steersByPrompt();
    }

    /**
     * The templates of a prompt file; null for the vector methods.
     *
     * @return the templates, or null
     */
    public PromptSteering promptSteering() {
        return steersByPrompt() ? PromptSteering.fromMetadata("metadata", settings, concept) : null;
    }

    /**
     * The user's message as the model reads it when steered with {@code values}
     * ({@link SteeringMethod#message}): rewritten by a prompt file, unchanged by the others.
     *
     * @param userMessage the user's message
     * @param values the steering values, one per row
     * @return the message the model reads
     */
    public String message(String userMessage, double[] values) {
        return steeringMethod().message(userMessage, values, promptSteering());
    }

    /**
     * {@code m · factor_positive} (inject) or {@code m · factor_negative} (suppress), one per row.
     *
     * @param inject true for the positive factors
     * @param multiplier m
     * @return the values
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
     * addition {@code h + Wᵀ f} for diffmean ({@link SteeringMethod#intervention}); null for a
     * prompt file, which changes the prompt instead ({@link #message}).
     *
     * @param prefixLen one entry per sequence of the batch
     * @param values one value per row of w
     * @return the intervention
     * @throws InvalidArgumentException when {@code values} does not hold one value per row
     */
    public Intervention intervention(double[] values, int... prefixLen) {
        return steeringMethod().intervention(layer, rank, w, values, prefixLen, loreft);
    }

    /**
     * This vector with a tuned multiplier folded into one of its factors: {@code factor_positive}
     * (inject) or {@code factor_negative} (suppress) times {@code multiplier}, so that steering at
     * m = 1 steers at the tuned factor. The metadata records it: {@code tuned_multiplier_positive}
     * (or {@code _negative}) = the multiplier, {@code untuned_factor_positive} (or {@code _negative})
     * = the factor before the first tuning, and {@code provenance}'s entries (how it was tuned).
     *
     * @param inject true to tune the positive factor, false the negative one
     * @param multiplier the tuned multiplier
     * @param provenance how it was tuned, added to the metadata
     * @return the tuned vector
     */
    public SteeringVectorFile withTunedFactor(boolean inject, double multiplier, Map<String, String> provenance) {
        if (!Double.isFinite(multiplier)) {
            throw new InvalidArgumentException("the tuned multiplier must be finite, got " + multiplier);
        }
        if (steersByPrompt()) {
            throw new InvalidArgumentException("method prompt has no factor to tune (only the sign of the value matters)");
        }
        String side = inject ? "positive" : "negative";
        double[] fp = factorPositive.clone();
        double[] fn = factorNegative.clone();
        double[] f = inject ? fp : fn;
        Map<String, String> meta = new LinkedHashMap<>(settings);
        meta.putIfAbsent("untuned_factor_" + side, join(f));
        for (int r = 0; r < f.length; r++) {
            f[r] *= multiplier;
        }
        meta.put("tuned_multiplier_" + side, Double.toString(multiplier));
        meta.putAll(provenance);
        return new SteeringVectorFile(w, rank, dimension, layer, fp, fn, model, concept, method, meta, loreft);
    }

    /** {@return the metadata written to the file} */
    public Map<String, String> metadata() {
        boolean prompt = steersByPrompt();
        Map<String, String> m = new LinkedHashMap<>();
        if (!prompt) {
            m.put("layer", Integer.toString(layer));
        }
        m.put("factor_positive", join(factorPositive));
        m.put("factor_negative", join(factorNegative));
        m.put("model", model);
        m.put("concept", concept);
        m.put("method", method);
        if (!prompt) {
            m.put("dimension", Integer.toString(dimension));
        }
        settings.forEach(m::putIfAbsent);
        return m;
    }

    /**
     * LoReFT's two edits ({@link LoreftParameters}), a copy; null for the other methods.
     *
     * @return the parameters, or null
     */
    @Override
    public float[] loreft() {
        return loreft == null ? null : loreft.clone();
    }

    /**
     * Writes the file atomically; a prompt file has no tensor, only its header's metadata; a loreft
     * file has its {@link #LOREFT_TENSORS} besides w.
     *
     * @param file where to write; its folder is created
     * @throws IOException when the file cannot be written
     */
    public void write(Path file) throws IOException {
        java.nio.file.Files.createDirectories(file.toAbsolutePath().getParent());
        SafetensorsWriter out = new SafetensorsWriter().metadata(metadata());
        if (!steersByPrompt()) {
            out.add("w", rank == 1 ? new long[] {dimension} : new long[] {rank, dimension}, w);
        }
        if (loreft != null) {
            float[][] parts = loreftParts();
            long[] matrix = {rank, dimension};
            long[] vector = {rank};
            for (int i = 0; i < LOREFT_TENSORS.size(); i++) {
                out.add(LOREFT_TENSORS.get(i), parts[i].length == rank ? vector : matrix, parts[i]);
            }
        }
        out.write(file);
    }

    /** W⁺, b⁺, R⁻, W⁻, b⁻ ({@link #LOREFT_TENSORS}). */
    private float[][] loreftParts() {
        float[] plus = LoreftParameters.block(loreft, 0, rank, dimension);
        float[] minus = LoreftParameters.block(loreft, 1, rank, dimension);
        return new float[][] {LoreftParameters.w(plus, rank, dimension), LoreftParameters.b(plus, rank, dimension),
            LoreftParameters.r(minus, rank, dimension), LoreftParameters.w(minus, rank, dimension),
            LoreftParameters.b(minus, rank, dimension)};
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
            if (name == null && st.names().isEmpty()
                    && SteeringMethod.PROMPT.id().equals(st.metadata().get("method"))) {
                throw new InvalidArgumentException(file + ": method prompt has no directions (it steers by rewriting the prompt)");
            }
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
        Map<String, String> header;
        boolean tensors;
        try (Safetensors st = Safetensors.open(file)) {
            header = new LinkedHashMap<>(st.metadata());
            tensors = !st.names().isEmpty();
        }
        if (SteeringMethod.PROMPT.id().equals(header.get("method"))) {
            return readPrompt(file, header, tensors);
        }
        Directions dirs = readDirections(file);
        {
            Map<String, String> meta = new LinkedHashMap<>(dirs.metadata());
            int rank = dirs.rank();
            try {
                SteeringVectorFile v = new SteeringVectorFile(dirs.w(), rank, dirs.dimension(),
                        parseLayer(file, require(file, meta, "layer")), parse(file, "factor_positive", require(file, meta, "factor_positive")),
                        parse(file, "factor_negative", require(file, meta, "factor_negative")), require(file, meta, "model"),
                        require(file, meta, "concept"), require(file, meta, "method"), Map.of(),
                        // the loreft tensors are read below; a placeholder of the right shape until then
                        "loreft".equals(meta.get("method")) ? LoreftParameters.join(dirs.w(), dirs.w(), new float[dirs.rank()],
                                dirs.w(), dirs.w(), new float[dirs.rank()]) : null);
                for (String k : v.metadata().keySet()) {
                    meta.remove(k);
                }
                float[] loreft = v.steeringMethod() == SteeringMethod.LOREFT ? readLoreft(file, v.w, v.rank, v.dimension) : null;
                return new SteeringVectorFile(v.w, v.rank, v.dimension, v.layer, v.factorPositive, v.factorNegative,
                        v.model, v.concept, v.method, meta, loreft);
            } catch (InvalidArgumentException e) {
                throw e.getMessage().startsWith(file.toString()) ? e : new InvalidArgumentException(file + ": " + e.getMessage(), e);
            }
        }
    }

    private static SteeringVectorFile readPrompt(Path file, Map<String, String> meta, boolean tensors) {
        if (tensors) {
            throw new InvalidArgumentException(file + ": method prompt steers by rewriting the prompt; its file holds no tensor");
        }
        double[] fp = parse(file, "factor_positive", require(file, meta, "factor_positive"));
        double[] fn = parse(file, "factor_negative", require(file, meta, "factor_negative"));
        if (fp.length != 1 || fn.length != 1) {
            throw new InvalidArgumentException(file + ": method prompt has one factor per direction of steering, not a list");
        }
        String model = require(file, meta, "model");
        String concept = require(file, meta, "concept");
        PromptSteering.fromMetadata(file.toString(), meta, concept);
        for (String k : List.of("factor_positive", "factor_negative", "model", "concept", "method")) {
            meta.remove(k);
        }
        try {
            return new SteeringVectorFile(new float[0], 1, 0, NO_LAYER, fp, fn, model, concept, SteeringMethod.PROMPT.id(), meta);
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException(file + ": " + e.getMessage(), e);
        }
    }

    /** The two LoReFT edits of a loreft file: R⁺ = w, then the {@link #LOREFT_TENSORS}, each finite and of its shape. */
    private static float[] readLoreft(Path file, float[] w, int rank, int dim) throws IOException {
        float[][] parts = new float[LOREFT_TENSORS.size()][];
        try (Safetensors st = Safetensors.open(file)) {
            for (int i = 0; i < parts.length; i++) {
                String name = LOREFT_TENSORS.get(i);
                boolean bias = name.endsWith("_bias");
                if (!st.contains(name)) {
                    throw new InvalidArgumentException(file + ": a loreft vector needs the tensor " + name);
                }
                Tensor t = st.tensor(name);
                long expected = bias ? rank : (long) rank * dim;
                if (t.elementCount() != expected || t.rank() > 2) {
                    throw new InvalidArgumentException(file + ": tensor " + name + " has shape " + t.shapeString()
                            + ", expected " + (bias ? "[" + rank + "]" : "[" + rank + ", " + dim + "]"));
                }
                switch (t.dtype()) {
                    case F32, F64, F16, BF16 -> { }
                    default -> throw new InvalidArgumentException(file + ": tensor " + name + " has dtype " + t.dtype()
                            + "; it must be F32, F64, F16 or BF16");
                }
                parts[i] = t.toFloatArray();
                for (float x : parts[i]) {
                    if (!Float.isFinite(x)) {
                        throw new InvalidArgumentException(file + ": tensor " + name + " holds " + x + "; it must be finite");
                    }
                }
            }
        }
        checkDirections(file + " (loreft_suppress_r)", parts[2], rank, dim);
        return LoreftParameters.join(w, parts[0], parts[1], parts[2], parts[3], parts[4]);
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
