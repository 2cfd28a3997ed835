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
 *   <li>{@link #PROMPT}: no vector; an instruction naming the concept before the user's message
 *       ({@link PromptSteering}), the inject one for a positive value, the suppress one for a
 *       negative value, none at 0.</li>
 *   <li>{@link #REPS}, {@link #BIPO}: an additive vector trained on the steered model's response
 *       log-likelihoods ({@link LogProbObjective}); stored like DiffMean's, unit {@code w} and factors
 *       {@code ±‖v‖}, and applied the same way.</li>
 *   <li>{@link #LOREFT}: LoReFT's edit {@code h + Rᵀ(W h + b − R h)}, trained with the cross-entropy
 *       of the concept response ({@link LogProbObjective}, {@link LoreftParameters}).</li>
 * </ul>
 *
 * {@link #intervention} and {@link #message} are the one place that turns a vector file and its
 * values into what the model runs: the {@link Intervention} at the layer (none for prompt) and the
 * user's message as the model reads it (rewritten only by prompt); every command that applies a
 * vector file goes through them.
 */
public enum SteeringMethod {
    /** Concept-driven activation steering: the clamp, trained with the JSD objective. */
    CDAS("cdas", InterventionMode.CLAMP, ObjectiveLoss.JSD),
    /** Distributed alignment search: the clamp, trained with the cross-entropy of the base's own response. */
    DAS("das", InterventionMode.CLAMP, ObjectiveLoss.CROSS_ENTROPY),
    /** The difference of the class means: an additive vector from a closed form. */
    DIFFMEAN("diffmean", InterventionMode.ADD, null),
    /** Prompt steering: no vector, an instruction before the user's message. */
    PROMPT("prompt", null, null),
    /** RePS: an additive vector trained on response log-likelihoods; suppresses by null-out. */
    REPS("reps", InterventionMode.ADD, null, true),
    /** BiPO: an additive vector trained on response log-likelihoods (bidirectional preferences). */
    BIPO("bipo", InterventionMode.ADD, null, true),
    /** LoReFT: a low-rank representation edit, trained with the cross-entropy of the concept response. */
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

    /**
     * The name in files and on the command line: {@code cdas}, {@code das}, {@code diffmean},
     * {@code prompt}, {@code reps}, {@code bipo}, {@code loreft}.
     *
     * @return the id
     */
    public String id() {
        return id;
    }

    /**
     * How the vector acts on {@code h_L}: the clamp (CDAS, DAS), the addition (DiffMean, BiPO, and
     * RePS's injection; RePS suppresses by {@link InterventionMode#NULL_OUT}) or LoReFT's edit.
     *
     * @return the intervention mode
     * @throws IllegalStateException for prompt, which has no vector ({@link #steersByPrompt})
     */
    public InterventionMode mode() {
        if (mode == null) {
            throw new IllegalStateException(id + " has no vector and no intervention");
        }
        return mode;
    }

    /**
     * Whether this method steers by rewriting the prompt (prompt) instead of acting on {@code h_L}.
     *
     * @return true for prompt
     */
    public boolean steersByPrompt() {
        return mode == null;
    }

    /**
     * Whether {@code w} comes from the optimisation loop ({@link Trainer}) rather than a closed form.
     *
     * @return true for CDAS, DAS, RePS, BiPO and LoReFT
     */
    public boolean optimised() {
        return loss != null || logProb;
    }

    /**
     * Whether the method is trained on response log-likelihoods ({@link LogProbObjective}).
     *
     * @return true for RePS, BiPO and LoReFT
     */
    public boolean logProbTrained() {
        return logProb;
    }

    /**
     * The runtime objective's loss the trainer minimises (JSD for CDAS, cross-entropy for DAS).
     *
     * @throws IllegalStateException for the others (DiffMean, prompt, and RePS, BiPO, LoReFT, which are
     *         not trained by the runtime's CDAS objective)
     * @return the loss
     */
    public ObjectiveLoss objectiveLoss() {
        if (loss == null) {
            throw new IllegalStateException(id + " is not trained by the runtime's CDAS objective");
        }
        return loss;
    }

    /**
     * What the factors mean, for messages: "clamp value a", "added amount f", or the sign "s" that
     * chooses prompt's instruction or LoReFT's edit.
     *
     * @return "a", "f" or "s"
     */
    public String valueName() {
        return mode == null || mode == InterventionMode.LOREFT ? "s" : mode == InterventionMode.ADD ? "f" : "a";
    }

    /**
     * The method named {@code name} (case-insensitive).
     *
     * @throws InvalidArgumentException naming the known methods when there is none
     * @param name the method's id, surrounding spaces ignored
     * @return the method
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

    /**
     * The ids of all methods, comma-separated: "cdas, das, diffmean, prompt, reps, bipo, loreft".
     *
     * @return the list
     */
    public static String names() {
        return Arrays.stream(values()).map(SteeringMethod::id).collect(Collectors.joining(", "));
    }

    /**
     * The intervention that applies W [rank x d] at block {@code layer} with {@code values} (one
     * per row of W, the same for every sequence of the batch; usually {@code m · factor}) from
     * each sequence's {@code prefixLen} on: the clamp {@code a = values} for CDAS and DAS,
     * the addition {@code f = values} for DiffMean and BiPO, and for RePS the addition when the
     * values are {@code ≥ 0} and RePS's null-out {@code h − ReLU(w·h) w} (unit w; no amount) when
     * they are negative; null (no intervention) for prompt. LoReFT needs its edits:
     * {@link #intervention(int, int, float[], double[], int[], float[])}.
     *
     * @param prefixLen one entry per sequence of the batch the intervention will run on
     * @param layer  the block whose output is changed (0-based)
     * @param rank   the number of rows of W
     * @param w      W, rank x d row-major
     * @param values one value per row of W
     * @return the intervention
     * @throws InvalidArgumentException when {@code values} does not hold one value per row
     */
    public Intervention intervention(int layer, int rank, float[] w, double[] values, int[] prefixLen) {
        return intervention(layer, rank, w, values, prefixLen, null);
    }

    /**
     * As {@link #intervention(int, int, float[], double[], int[])}, with LoReFT's two edits
     * ({@link LoreftParameters}; null for the other methods): a positive value applies the injecting
     * edit, a negative one the suppressing edit, each as trained (LoReFT has no steering factor; the
     * value's size does not matter), and a zero value is refused.
     *
     * @param layer     the block whose output is changed (0-based)
     * @param rank      the number of rows of W
     * @param w         W, rank x d row-major
     * @param values    one value per row of W
     * @param prefixLen one entry per sequence of the batch the intervention will run on
     * @param loreft    LoReFT's two edits as stored in its file ({@link LoreftParameters}); null for the others
     * @return the intervention; null for prompt
     * @throws InvalidArgumentException when {@code values} does not hold one value per row, or for
     *         LoReFT when the edits are missing or the values have no common sign
     */
    public Intervention intervention(int layer, int rank, float[] w, double[] values, int[] prefixLen, float[] loreft) {
        if (mode == null) {
            return null;
        }
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

    /**
     * The user's message as the model reads it under steering with {@code values} (one per row;
     * usually {@code m · factor}): unchanged for the vector methods; for prompt, the instruction that
     * the sign of {@code values[0]} picks from {@code prompt} before it ({@link PromptSteering#apply}).
     *
     * @param userMessage the user's message
     * @param values      the steering values, one per row
     * @param prompt the templates of a prompt file (ignored, and may be null, for the other methods)
     * @return the message the model reads
     * @throws InvalidArgumentException for prompt without its templates or with other than one value
     */
    public String message(String userMessage, double[] values, PromptSteering prompt) {
        if (mode != null) {
            return userMessage;
        }
        if (prompt == null || values.length != 1) {
            throw new InvalidArgumentException("prompt steering needs its templates and one value");
        }
        return prompt.apply(userMessage, values[0]);
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
