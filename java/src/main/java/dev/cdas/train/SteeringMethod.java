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
    DIFFMEAN("diffmean", InterventionMode.ADD, null),
    PROMPT("prompt", null, null);

    private final String id;
    private final InterventionMode mode;
    private final ObjectiveLoss loss;

    SteeringMethod(String id, InterventionMode mode, ObjectiveLoss loss) {
        this.id = id;
        this.mode = mode;
        this.loss = loss;
    }

    /**
     * The name in files and on the command line: {@code cdas}, {@code das}, {@code diffmean}.
     *
     * @return the id
     */
    public String id() {
        return id;
    }

    /**
     * How the vector acts on {@code h_L}: the clamp (CDAS, DAS) or the addition (DiffMean).
     *
     * @throws IllegalStateException for prompt, which has no vector ({@link #steersByPrompt})
     */
    public InterventionMode mode() {
        if (mode == null) {
            throw new IllegalStateException(id + " has no vector and no intervention");
        }
        return mode;
    }

    /** Whether this method steers by rewriting the prompt (prompt) instead of acting on {@code h_L}. */
    public boolean steersByPrompt() {
        return mode == null;
    }

    /** Whether {@code w} comes from the optimisation loop ({@link Trainer}) rather than a closed form. */
    public boolean optimised() {
        return loss != null;
    }

    /**
     * The loss the trainer minimises (JSD for CDAS, cross-entropy for DAS).
     *
     * @throws IllegalStateException for DiffMean, which has none
     * @return the loss
     */
    public ObjectiveLoss objectiveLoss() {
        if (loss == null) {
            throw new IllegalStateException(id + " is not trained by an objective");
        }
        return loss;
    }

    /** What the factors mean, for messages: "clamp value a", "added amount f", or the sign s choosing prompt's instruction. */
    public String valueName() {
        return mode == null ? "s" : mode == InterventionMode.ADD ? "f" : "a";
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

    /** "cdas, das, diffmean, prompt". */
    public static String names() {
        return Arrays.stream(values()).map(SteeringMethod::id).collect(Collectors.joining(", "));
    }

    /**
     * The intervention that applies W [rank x d] at block {@code layer} with {@code values} (one
     * per row of W, the same for every sequence of the batch; usually {@code m · factor}) from
     * each sequence's {@code prefixLen} on: the clamp {@code a = values} for CDAS and DAS,
     * the addition {@code f = values} for DiffMean; null (no intervention) for prompt.
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
        if (mode == null) {
            return null;
        }
        if (values.length != rank) {
            throw new InvalidArgumentException("need one value per row of w (" + rank + "), got " + values.length);
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
     * @param prompt the templates of a prompt file (ignored, and may be null, for the other methods)
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

    @Override
    public String toString() {
        return id;
    }
}
