package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.Intervention;
import dev.cdas.model.InterventionMode;
import dev.cdas.model.ObjectiveLoss;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * How a steering vector was made, and therefore how it is applied (docs/method.md section 1 and its
 * "Baselines" paragraph). The {@code method} metadata of a {@link SteeringVectorFile} names one.
 *
 * <ul>
 *   <li>{@link #CDAS}: trained with the JSD objective; applied as the clamp
 *       {@code h + Wᵀ(a − W h)} with {@code a = m · factor}.</li>
 *   <li>{@link #DAS}: the same intervention and training loop, cross-entropy of the base's own
 *       response tokens instead of the JSD; applied like CDAS.</li>
 *   <li>{@link #DIFFMEAN}: no optimisation, {@code v = (μ⁺ − μ⁻)/‖μ⁺ − μ⁻‖} ({@link DiffMean});
 *       applied additively, {@code h + f · v} with {@code f = m · factor}.</li>
 *   <li>{@link #REPS}, {@link #BIPO}: an additive vector trained on the steered model's response
 *       log-likelihoods ({@link LogProbObjective}); stored like DiffMean's, unit {@code w} and factors
 *       {@code ±‖v‖}, and applied the same way.</li>
 *   <li>{@link #LOREFT}: LoReFT's edit {@code h + Rᵀ(W h + b − R h)}, trained with the cross-entropy
 *       of the concept response ({@link LogProbObjective}, {@link LoreftParameters}).</li>
 * </ul>
 *
 * {@link #intervention} is the one place that turns a vector and its values into the
 * {@link Intervention} the model runs; every command that applies a vector file goes through it.
 */
public enum SteeringMethod {
    CDAS("cdas", InterventionMode.CLAMP, ObjectiveLoss.JSD),
    DAS("das", InterventionMode.CLAMP, ObjectiveLoss.CROSS_ENTROPY),
    DIFFMEAN("diffmean", InterventionMode.ADD, null),
    REPS("reps", InterventionMode.ADD, null, true),
    BIPO("bipo", InterventionMode.ADD, null, true),
    LOREFT("loreft", InterventionMode.LOREFT, null, true);

    private final String id;
    private final InterventionMode mode;
    private final ObjectiveLoss loss;
    private final boolean logProb;

    SteeringMethod(String id, InterventionMode mode, ObjectiveLoss loss) {
        this(id, mode, loss, false);
    }

    SteeringMethod(String id, InterventionMode mode, ObjectiveLoss loss, boolean logProb) {
        this.id = id;
        this.mode = mode;
        this.loss = loss;
        this.logProb = logProb;
    }

    /** The name in files and on the command line: {@code cdas}, {@code das}, {@code diffmean}. */
    public String id() {
        return id;
    }

    /**
     * How the vector acts on {@code h_L}: the clamp (CDAS, DAS), the addition (DiffMean, BiPO, and
     * RePS's injection; RePS suppresses by {@link InterventionMode#NULL_OUT}) or LoReFT's edit.
     */
    public InterventionMode mode() {
        return mode;
    }

    /** Whether {@code w} comes from the optimisation loop ({@link Trainer}) rather than a closed form. */
    public boolean optimised() {
        return loss != null || logProb;
    }

    /** Whether the method is trained on response log-likelihoods ({@link LogProbObjective}): RePS, BiPO, LoReFT. */
    public boolean logProbTrained() {
        return logProb;
    }

    /**
     * The runtime objective's loss the trainer minimises (JSD for CDAS, cross-entropy for DAS).
     *
     * @throws IllegalStateException for the others, which are not trained by the runtime's CDAS objective
     */
    public ObjectiveLoss objectiveLoss() {
        if (loss == null) {
            throw new IllegalStateException(id + " is not trained by the runtime's CDAS objective");
        }
        return loss;
    }

    /** What the factors mean, for messages: "clamp value a", "added amount f" or LoReFT's edit sign "s". */
    public String valueName() {
        return mode == InterventionMode.ADD ? "f" : mode == InterventionMode.LOREFT ? "s" : "a";
    }

    /**
     * The method named {@code name} (case-insensitive).
     *
     * @throws InvalidArgumentException naming the known methods when there is none
     */
    public static SteeringMethod parse(String name) {
        String n = name == null ? "" : name.trim().toLowerCase(Locale.ROOT);
        for (SteeringMethod m : values()) {
            if (m.id.equals(n)) {
                return m;
            }
        }
        throw new InvalidArgumentException("unknown method \"" + name + "\"; expected one of " + names());
    }

    /** "cdas, das, diffmean, reps, bipo, loreft". */
    public static String names() {
        return Arrays.stream(values()).map(SteeringMethod::id).collect(Collectors.joining(", "));
    }

    /**
     * The intervention that applies W [rank x d] at block {@code layer} with {@code values} (one
     * per row of W, the same for every sequence of the batch; usually {@code m · factor}) from
     * each sequence's {@code prefixLen} on: the clamp {@code a = values} for CDAS and DAS,
     * the addition {@code f = values} for DiffMean and BiPO, and for RePS the addition when the
     * values are {@code ≥ 0} and RePS's null-out {@code h − ReLU(w·h) w} (unit w; no amount) when
     * they are negative. LoReFT needs its edits: {@link #intervention(int, int, float[], double[], int[], float[])}.
     *
     * @param prefixLen one entry per sequence of the batch the intervention will run on
     */
    public Intervention intervention(int layer, int rank, float[] w, double[] values, int[] prefixLen) {
        return intervention(layer, rank, w, values, prefixLen, null);
    }

    /**
     * As {@link #intervention(int, int, float[], double[], int[])}, with LoReFT's two edits
     * ({@link LoreftParameters}; null for the other methods): a positive value applies the injecting
     * edit, a negative one the suppressing edit, each as trained (LoReFT has no steering factor; the
     * value's size does not matter), and a zero value is refused.
     */
    public Intervention intervention(int layer, int rank, float[] w, double[] values, int[] prefixLen, float[] loreft) {
        if (values.length != rank) {
            throw new InvalidArgumentException("need one value per row of w (" + rank + "), got " + values.length);
        }
        if (this == LOREFT) {
            if (loreft == null) {
                throw new InvalidArgumentException("a loreft vector is applied with its W and b (the loreft_* tensors of its file)");
            }
            int sign = sign(values);
            if (sign == 0) {
                throw new InvalidArgumentException("a loreft vector applies its injecting edit for a positive value and its "
                        + "suppressing edit for a negative one; got " + Arrays.toString(values));
            }
            int d = w.length / rank;
            float[] edit = LoreftParameters.block(loreft, sign > 0 ? 0 : 1, rank, d);
            return Intervention.loreft(layer, LoreftParameters.r(edit, rank, d), LoreftParameters.w(edit, rank, d),
                    LoreftParameters.b(edit, rank, d), rank, prefixLen.clone());
        }
        if (this == REPS && sign(values) < 0) {
            return Intervention.nullOut(layer, rank, w, prefixLen.clone());
        }
        int batch = prefixLen.length;
        float[] perRow = new float[batch * rank];
        for (int b = 0; b < batch; b++) {
            for (int r = 0; r < rank; r++) {
                perRow[b * rank + r] = (float) values[r];
            }
        }
        return switch (mode) {
            case CLAMP -> Intervention.clamp(layer, rank, w, perRow, prefixLen.clone());
            case ADD -> Intervention.add(layer, rank, w, perRow, prefixLen.clone());
            case LOREFT, NULL_OUT -> throw new dev.cdas.InternalException(mode + " is not built from directions and values");
        };
    }

    /** +1 if every value is positive, −1 if every value is negative, 0 otherwise. */
    private static int sign(double[] values) {
        boolean pos = true;
        boolean neg = true;
        for (double v : values) {
            pos &= v > 0;
            neg &= v < 0;
        }
        return pos ? 1 : neg ? -1 : 0;
    }

    @Override
    public String toString() {
        return id;
    }
}
