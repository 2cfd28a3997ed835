package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.PromptEncoder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The objectives of the log-likelihood baselines RePS, BiPO and LoReFT (docs/method.md,
 * "Baselines: RePS, BiPO, LoReFT"): per minibatch, the sequence log-probabilities of the responses
 * under the steered model (and, for RePS and BiPO, under the unsteered one), a loss of them
 * ({@link LogProbLosses}) and its gradient, pulled back to the parameters by the model's backward
 * pass ({@link Scorer}: the runtime's {@code sequenceLogProbs}).
 *
 * <p>Sequences: {@code x ⊕ yᶜ}, {@code x ⊕ y}, {@code xᶜ ⊕ y}, {@code xᶜ ⊕ yᶜ} of each pair (x, y the
 * non-concept prompt and response, xᶜ, yᶜ the concept ones), rendered with the chat template and
 * responses truncated as for the other methods ({@link ExampleEncoder}); the steering acts from
 * each sequence's {@code prefixLen} on, the score is the sum of {@code log p} of the response tokens.
 *
 * <ul>
 *   <li>RePS: rank 1, additive; per example a factor α drawn from {@code factors}; {@code +α·v}
 *       on x for Δ⁺, {@code −α·v} on xᶜ for Δ⁻.</li>
 *   <li>BiPO: rank 1, additive; per example a sign d = ±1; d = +1: {@code +v} on x, yᶜ preferred
 *       over y; d = −1: {@code −v} on xᶜ, y preferred over yᶜ.</li>
 *   <li>LoReFT: rank r, parameters (R, W, b); cross-entropy of yᶜ after x under the edit.</li>
 * </ul>
 * The per-example draws come from a hash of the seed, the step and the pair's index, not from the
 * run's generator, so a resumed run draws exactly what the uninterrupted one did.
 *
 * <p>Reference log-probabilities (the unsteered model) do not depend on the parameters; they are
 * computed once per sequence and kept for the run.
 */
public final class LogProbObjective implements Objective {

    /** A sequence to score: rendered prompt ⊕ truncated response. */
    public record Scored(int[] ids, int prefixLen, int promptLength) {
        public int responseLength() {
            return ids.length - promptLength;
        }
    }

    /**
     * The steering of one scorer call: the parameters and, per sequence, its amounts (additive
     * methods: {@code rank} amounts f per sequence, the intervention is {@code h + vᵀ f}; LoReFT: one
     * scale per sequence on the edit).
     */
    public record Steering(SteeringMethod method, int rank, float[] parameters, float[] amounts) {}

    /**
     * @param logProbs per sequence, the sum of the response tokens' log p
     * @param gradient {@code ∂(Σ upstream_i · logProbs_i)/∂parameters}; null without upstream
     */
    public record Scores(double[] logProbs, float[] gradient) {}

    /** Renders and tokenises {@code input ⊕ response} ({@link ExampleEncoder#encodeSequence} for a model). */
    public interface SequenceEncoder {
        Scored encode(String input, String response, String origin) throws ChatTemplateException;
    }

    /** The model as these objectives use it. */
    public interface Scorer {
        int dimension();

        /**
         * @param steering null: the unsteered model
         * @param upstream null: no backward pass
         */
        Scores score(Steering steering, List<Scored> sequences, double[] upstream);
    }

    /** RePS's default training factors α (one drawn per example and step). */
    public static final double[] DEFAULT_REPS_FACTORS = {0.5, 1.0, 1.5, 2.0};
    /** BiPO's default β, that of its paper. */
    public static final double DEFAULT_BIPO_BETA = 0.1;

    private final SteeringMethod method;
    private final Scorer scorer;
    private final SequenceEncoder encoder;
    private final long seed;
    private final double[] factors;
    private final double beta;
    private final Map<String, Scored> encoded = new ConcurrentHashMap<>();
    // keyed by the cached Scored instances (one per prompt and response)
    private final Map<Scored, Double> references = new ConcurrentHashMap<>();

    /**
     * @param factors RePS's training factors (ignored by the others)
     * @param beta    BiPO's β (ignored by the others)
     */
    public LogProbObjective(SteeringMethod method, Scorer scorer, PromptEncoder prompts, int maxResponseTokens, long seed,
            double[] factors, double beta) {
        this(method, scorer, encoderOf(new ExampleEncoder(prompts, maxResponseTokens)), seed, factors, beta);
    }

    private static SequenceEncoder encoderOf(ExampleEncoder encoder) {
        return (input, response, origin) -> {
            ExampleEncoder.EncodedSequence e = encoder.encodeSequence(input, response, origin);
            return new Scored(e.ids(), e.prefixLen(), e.promptLength());
        };
    }

    /** With any sequence encoder (tests: a toy tokenizer). */
    public LogProbObjective(SteeringMethod method, Scorer scorer, SequenceEncoder encoder, long seed, double[] factors,
            double beta) {
        if (!method.logProbTrained()) {
            throw new InvalidArgumentException("method " + method + " is not trained on log-probabilities");
        }
        if (factors.length == 0) {
            throw new InvalidArgumentException("RePS needs at least one training factor");
        }
        for (double f : factors) {
            if (!(f > 0) || !Double.isFinite(f)) {
                throw new InvalidArgumentException("RePS training factors must be positive numbers, got " + f);
            }
        }
        if (!(beta > 0) || !Double.isFinite(beta)) {
            throw new InvalidArgumentException("BiPO's beta must be a positive number, got " + beta);
        }
        this.method = method;
        this.scorer = scorer;
        this.encoder = encoder;
        this.seed = seed;
        this.factors = factors.clone();
        this.beta = beta;
    }

    public SteeringMethod method() {
        return method;
    }

    @Override
    public int dimension() {
        return scorer.dimension();
    }

    @Override
    public int parameterCount(int rank) {
        return method == SteeringMethod.LOREFT ? LoreftParameters.count(rank, dimension()) : rank * dimension();
    }

    /** RePS and BiPO start from v = 0 (the unsteered model); LoReFT from random orthonormal R, W = R, b = 0. */
    @Override
    public float[] initialParameters(int rank, Rng rng) {
        checkRank(rank);
        return method == SteeringMethod.LOREFT ? LoreftParameters.initial(rank, dimension(), rng) : new float[rank * dimension()];
    }

    /** LoReFT: R's rows re-orthonormalised (Gram–Schmidt); RePS, BiPO: unconstrained. */
    @Override
    public void afterStep(float[] parameters, int rank) {
        if (method == SteeringMethod.LOREFT) {
            LoreftParameters.orthonormalizeR(parameters, rank, dimension());
        }
    }

    @Override
    public Map<String, String> identity() {
        Map<String, String> id = new LinkedHashMap<>();
        id.put("method", method.id());
        if (method == SteeringMethod.REPS) {
            id.put("factors", factorsText());
        } else if (method == SteeringMethod.BIPO) {
            id.put("beta", Double.toString(beta));
        }
        return id;
    }

    /** The training constants for the vector file's metadata. */
    public Map<String, String> metadata() {
        Map<String, String> m = new LinkedHashMap<>();
        if (method == SteeringMethod.REPS) {
            m.put("reps_factors", factorsText());
        } else if (method == SteeringMethod.BIPO) {
            m.put("bipo_beta", Double.toString(beta));
        }
        return m;
    }

    private String factorsText() {
        StringBuilder sb = new StringBuilder();
        for (double f : factors) {
            sb.append(sb.isEmpty() ? "" : ",").append(f);
        }
        return sb.toString();
    }

    private void checkRank(int rank) {
        if (method != SteeringMethod.LOREFT && rank != 1) {
            throw new InvalidArgumentException(method + " trains one vector (rank 1), not rank " + rank);
        }
    }

    @Override
    public Result lossAndGradient(float[] parameters, Batch batch) {
        return evaluate(parameters, batch, true);
    }

    /** Loss only; the result's gradient is null. */
    public Result loss(float[] parameters, Batch batch) {
        return evaluate(parameters, batch, false);
    }

    private int rankOf(float[] parameters) {
        int d = dimension();
        if (method == SteeringMethod.LOREFT) {
            int rank = LoreftParameters.rankOf(parameters.length, d);
            if (rank < 1) {
                throw new InvalidArgumentException(parameters.length + " parameters are not LoReFT's R, W [r x " + d + "] and b [r]");
            }
            return rank;
        }
        if (parameters.length != d) {
            throw new InvalidArgumentException(method + " has one vector of " + d + " values, got " + parameters.length);
        }
        return 1;
    }

    private Result evaluate(float[] parameters, Batch batch, boolean withGradient) {
        int rank = rankOf(parameters);
        List<ConceptPair> pairs = batch.pairs();
        int[] indices = batch.pairIndices();
        int b = pairs.size();
        List<Scored> sequences = new ArrayList<>();
        List<Float> amounts = new ArrayList<>();
        switch (method) {
            case REPS -> {
                for (int i = 0; i < b; i++) {
                    ConceptPair p = pairs.get(i);
                    float alpha = (float) factors[(int) Long.remainderUnsigned(draw(batch.step(), indices[i]), factors.length)];
                    sequences.add(encode(p.negativeInput(), p.positiveOutput(), p.origin()));
                    sequences.add(encode(p.negativeInput(), p.negativeOutput(), p.origin()));
                    sequences.add(encode(p.positiveInput(), p.negativeOutput(), p.origin()));
                    sequences.add(encode(p.positiveInput(), p.positiveOutput(), p.origin()));
                    amounts.addAll(List.of(alpha, alpha, -alpha, -alpha));
                }
            }
            case BIPO -> {
                for (int i = 0; i < b; i++) {
                    ConceptPair p = pairs.get(i);
                    if (sign(batch.step(), indices[i]) > 0) {
                        sequences.add(encode(p.negativeInput(), p.positiveOutput(), p.origin()));
                        sequences.add(encode(p.negativeInput(), p.negativeOutput(), p.origin()));
                        amounts.addAll(List.of(1f, 1f));
                    } else {
                        sequences.add(encode(p.positiveInput(), p.negativeOutput(), p.origin()));
                        sequences.add(encode(p.positiveInput(), p.positiveOutput(), p.origin()));
                        amounts.addAll(List.of(-1f, -1f));
                    }
                }
            }
            case LOREFT -> {
                for (ConceptPair p : pairs) {
                    sequences.add(encode(p.negativeInput(), p.positiveOutput(), p.origin()));
                    amounts.add(1f);
                }
            }
            default -> throw new IllegalStateException(method.id());
        }
        float[] perSequence = new float[amounts.size()];
        for (int i = 0; i < perSequence.length; i++) {
            perSequence[i] = amounts.get(i);
        }
        Steering steering = new Steering(method, rank, parameters, perSequence);
        long tokens = 0;
        int[] lengths = new int[sequences.size()];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = sequences.get(i).responseLength();
            tokens += lengths[i];
        }
        double[] steered;
        float[] crossEntropyGrad = null;
        if (method == SteeringMethod.LOREFT) {
            // the cross-entropy's dL/dlogp does not depend on the log-probs: one pass does both
            double[] upstream = LogProbLosses.crossEntropy(new double[lengths.length], lengths).gradient();
            Scores s = scorer.score(steering, sequences, withGradient ? upstream : null);
            steered = s.logProbs();
            crossEntropyGrad = s.gradient();
        } else {
            // the loss needs the steered log-probs before the backward pass can be weighted by dL/dlogp
            steered = scorer.score(steering, sequences, null).logProbs();
        }
        LogProbLosses.Value value = switch (method) {
            case REPS -> {
                int[] nc = new int[b];
                int[] ny = new int[b];
                for (int i = 0; i < b; i++) {
                    nc[i] = lengths[4 * i + LogProbLosses.REPS_PLUS_CONCEPT];
                    ny[i] = lengths[4 * i + LogProbLosses.REPS_PLUS_PLAIN];
                }
                yield LogProbLosses.reps(steered, reference(sequences), nc, ny);
            }
            case BIPO -> LogProbLosses.bipo(steered, reference(sequences), beta);
            default -> LogProbLosses.crossEntropy(steered, lengths);
        };
        float[] grad = null;
        if (withGradient) {
            grad = crossEntropyGrad != null ? crossEntropyGrad : scorer.score(steering, sequences, value.gradient()).gradient();
            if (grad == null || grad.length != parameters.length) {
                throw new IllegalStateException("the scorer returned a gradient of " + (grad == null ? "no" : grad.length)
                        + " values for " + parameters.length + " parameters");
            }
        }
        return new Result(value.loss(), grad, tokens);
    }

    /** The unsteered log-probabilities of {@code sequences}, each computed once per run. */
    private double[] reference(List<Scored> sequences) {
        List<Scored> missing = new ArrayList<>();
        for (Scored s : sequences) {
            if (!references.containsKey(s) && !missing.contains(s)) {
                missing.add(s);
            }
        }
        if (!missing.isEmpty()) {
            double[] lp = scorer.score(null, missing, null).logProbs();
            for (int i = 0; i < lp.length; i++) {
                references.put(missing.get(i), lp[i]);
            }
        }
        double[] out = new double[sequences.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = references.get(sequences.get(i));
        }
        return out;
    }

    private Scored encode(String input, String response, String origin) {
        return encoded.computeIfAbsent(input + "\u0000" + response, k -> {
            Scored e;
            try {
                e = encoder.encode(input, response, origin);
            } catch (ChatTemplateException ex) {
                throw new InvalidArgumentException(origin + ": " + ex.getMessage(), ex);
            }
            if (e.responseLength() < 1) {
                throw new InvalidArgumentException(origin + ": the response encodes to no tokens");
            }
            return e;
        });
    }

    /** BiPO's sign of pair {@code index} at {@code step}: +1 or −1, evenly. */
    int sign(long step, int index) {
        return (draw(step, index) & 1L) == 0 ? 1 : -1;
    }

    /** A 64-bit draw from (seed, step, index): SplitMix64's finaliser over their mix. */
    private long draw(long step, int index) {
        long z = seed * 0x9E3779B97F4A7C15L + step * 0xC2B2AE3D27D4EB4FL + index * 0x165667B19E3779F9L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
