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
import java.util.stream.IntStream;

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
 *   <li>RePS: rank 1; per example a factor α drawn from {@code factors}; Δ⁺ on x with the
 *       addition {@code h + α·v}, Δ⁻ on xᶜ with the paper's null-out
 *       {@code h − ReLU(v·h)/‖v‖² · v} (no factor).</li>
 *   <li>BiPO: rank 1, additive; per example a sign d = ±1; d = +1: {@code +v} on x, yᶜ preferred
 *       over y; d = −1: {@code −v} on xᶜ, y preferred over yᶜ.</li>
 *   <li>LoReFT: rank r, two edits (R, W, b) ({@link LoreftParameters}): ½ the token-mean
 *       cross-entropy of yᶜ after x under the injecting edit plus ½ that of y after xᶜ under the
 *       suppressing one.</li>
 * </ul>
 * The per-example draws come from a hash of the seed, the step and the pair's index, not from the
 * run's generator, so a resumed run draws exactly what the uninterrupted one did.
 *
 * <p>Reference log-probabilities (the unsteered model) do not depend on the parameters; they are
 * computed once per sequence and kept for the run.
 */
public final class LogProbObjective implements Objective {

    /**
     * A sequence to score: rendered prompt ⊕ truncated response.
     *
     * @param ids the token ids
     * @param prefixLen the first position the steering applies at
     * @param promptLength tokens of the rendered prompt; the rest is the response
     */
    public record Scored(int[] ids, int prefixLen, int promptLength) {
        /** {@return the tokens of the response} */
        public int responseLength() {
            return ids.length - promptLength;
        }
    }

    /** The interventions these objectives train through. */
    public enum Kind {
        /** {@code h + vᵀ f} with {@code f} per sequence ({@link Steering#amounts}). */
        ADD,
        /** RePS's suppression {@code h − Σ_k ReLU(v_k·h)/‖v_k‖² v_k}; no amounts. */
        NULL_OUT,
        /** LoReFT's {@code h + Rᵀ(W h + b − R h)}, parameters laid out as {@link LoreftParameters}; no amounts. */
        LOREFT
    }

    /**
     * The steering of one scorer call: the parameters and, for {@link Kind#ADD}, {@code rank}
     * amounts per sequence (null otherwise).
     *
     * @param kind how the parameters act
     * @param rank the number of directions
     * @param parameters the parameters being trained
     * @param amounts for ADD, rank amounts per sequence; null otherwise
     */
    public record Steering(Kind kind, int rank, float[] parameters, float[] amounts) {}

    /**
     * What a scorer returns for a list of sequences.
     *
     * @param logProbs per sequence, the sum of the response tokens' log p
     * @param gradient {@code ∂(Σ upstream_i · logProbs_i)/∂parameters}; null without upstream
     */
    public record Scores(double[] logProbs, float[] gradient) {}

    /** Renders and tokenises {@code input ⊕ response} ({@link ExampleEncoder#encodeSequence} for a model). */
    public interface SequenceEncoder {
        /**
         * Encodes one sequence.
         *
         * @param input the user message
         * @param response the response
         * @param origin where the example came from, for errors
         * @return the sequence
         * @throws ChatTemplateException when the template cannot render it
         */
        Scored encode(String input, String response, String origin) throws ChatTemplateException;
    }

    /** The model as these objectives use it. */
    public interface Scorer {
        /** {@return d, the width of the residual stream} */
        int dimension();

        /**
         * Scores the sequences under the steering, with the gradient when {@code upstream} is given.
         *
         * @param steering null: the unsteered model
         * @param upstream null: no backward pass
         * @param sequences the sequences to score
         * @return the log-likelihoods and the gradient
         */
        Scores score(Steering steering, List<Scored> sequences, double[] upstream);

        /** {@return the model's device kind and dtype ({@link Objective#compute}); "" for no model} */
        default String compute() {
            return "";
        }
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
     * An objective for {@code method} (reps, bipo or loreft) on a model's scorer and chat template.
     *
     * @param factors RePS's training factors (ignored by the others)
     * @param beta    BiPO's β (ignored by the others)
     * @param method reps, bipo or loreft
     * @param scorer the model's log-likelihoods
     * @param prompts the model's prompt encoder (chat template)
     * @param maxResponseTokens the most response tokens per example
     * @param seed the seed of the per-example random draws
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

    /**
     * With any sequence encoder (tests: a toy tokenizer).
     *
     * @param method reps, bipo or loreft
     * @param scorer the log-likelihoods
     * @param encoder renders and tokenises the sequences
     * @param seed the seed of the per-example random draws
     * @param factors RePS's training factors (ignored by the others)
     * @param beta BiPO's β (ignored by the others)
     */
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

    /** {@return the method trained} */
    public SteeringMethod method() {
        return method;
    }

    @Override
    public String compute() {
        return scorer.compute();
    }

    @Override
    public int dimension() {
        return scorer.dimension();
    }

    @Override
    public int parameterCount(int rank) {
        return method == SteeringMethod.LOREFT ? LoreftParameters.count(rank, dimension()) : rank * dimension();
    }

    /**
     * BiPO starts from v = 0 (the unsteered model); RePS from a seeded random unit vector (its
     * null-out needs a nonzero v); LoReFT from random orthonormal R, W = R, b = 0 (the identity).
     */
    @Override
    public float[] initialParameters(int rank, Rng rng) {
        checkRank(rank);
        return switch (method) {
            case LOREFT -> LoreftParameters.initial(rank, dimension(), rng);
            case REPS -> Directions.randomUnit(1, dimension(), rng);
            default -> new float[dimension()];
        };
    }

    /** LoReFT: each R's rows re-orthonormalised (Gram–Schmidt); RePS, BiPO: unconstrained. */
    @Override
    public void afterStep(float[] parameters, int rank) {
        if (method == SteeringMethod.LOREFT) {
            LoreftParameters.orthonormalizeBoth(parameters, rank, dimension());
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

    /**
     * The training constants for the vector file's metadata.
     *
     * @return the names and values
     */
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

    /**
     * Loss only; the result's gradient is null.
     *
     * @param parameters the parameters
     * @param batch the minibatch
     * @return the loss, without gradient
     */
    public Result loss(float[] parameters, Batch batch) {
        return evaluate(parameters, batch, false);
    }

    private int rankOf(float[] parameters) {
        int d = dimension();
        if (method == SteeringMethod.LOREFT) {
            int rank = LoreftParameters.rankOf(parameters.length, d);
            if (rank < 1) {
                throw new InvalidArgumentException(parameters.length + " parameters are not LoReFT's two edits of R, W [r x "
                        + d + "] and b [r]");
            }
            return rank;
        }
        if (parameters.length != d) {
            throw new InvalidArgumentException(method + " has one vector of " + d + " values, got " + parameters.length);
        }
        return 1;
    }

    /**
     * The sequences of one scorer call and how they are steered: by the parameters from
     * {@code offset} on ({@code length} of them; all but LoReFT's: all).
     */
    private record Group(Kind kind, List<Scored> sequences, float[] amounts, int offset, int length) {
        Group(Kind kind, List<Scored> sequences, float[] amounts, int all) {
            this(kind, sequences, amounts, 0, all);
        }

        Steering steering(int rank, float[] parameters) {
            float[] p = offset == 0 && length == parameters.length ? parameters
                    : java.util.Arrays.copyOfRange(parameters, offset, offset + length);
            return new Steering(kind, rank, p, amounts);
        }
    }

    /**
     * The steered sequences of one minibatch in the loss's layout ({@link LogProbLosses}), the
     * scorer calls that score them, and each call's positions in {@code sequences}.
     */
    private record Layout(List<Scored> sequences, List<Group> groups, List<int[]> slots) {}

    /**
     * Computes the reference log-probabilities of {@code batch}'s sequences that are not yet
     * known, as the step on it would (REPS and BiPO; LoReFT has none). Each is computed once per
     * run, beside the other new sequences of the minibatch that first needs it, so a resumed run
     * replays the minibatches taken before to get the same values ({@link Objective#warm}).
     */
    @Override
    public void warm(Batch batch) {
        if (method != SteeringMethod.LOREFT) {
            reference(layout(batch, parameterCount(1), 1).sequences());
        }
    }

    private Layout layout(Batch batch, int parameterCount, int rank) {
        List<ConceptPair> pairs = batch.pairs();
        int[] indices = batch.pairIndices();
        int b = pairs.size();
        // the steered sequences in the loss's layout (LogProbLosses), and the calls that score them
        List<Scored> sequences = new ArrayList<>();
        List<Group> groups = new ArrayList<>();
        // position in `sequences` of each group's i-th sequence
        List<int[]> slots = new ArrayList<>();
        switch (method) {
            case REPS -> {
                List<Scored> plus = new ArrayList<>();
                List<Scored> minus = new ArrayList<>();
                float[] alpha = new float[2 * b];
                int[] plusSlots = new int[2 * b];
                int[] minusSlots = new int[2 * b];
                for (int i = 0; i < b; i++) {
                    ConceptPair p = pairs.get(i);
                    float a = (float) factors[(int) Long.remainderUnsigned(draw(batch.step(), indices[i]), factors.length)];
                    Scored[] four = {encode(p.negativeInput(), p.positiveOutput(), p.origin()),
                        encode(p.negativeInput(), p.negativeOutput(), p.origin()),
                        encode(p.positiveInput(), p.negativeOutput(), p.origin()),
                        encode(p.positiveInput(), p.positiveOutput(), p.origin())};
                    sequences.addAll(List.of(four));
                    plus.add(four[LogProbLosses.REPS_PLUS_CONCEPT]);
                    plus.add(four[LogProbLosses.REPS_PLUS_PLAIN]);
                    minus.add(four[LogProbLosses.REPS_MINUS_PLAIN]);
                    minus.add(four[LogProbLosses.REPS_MINUS_CONCEPT]);
                    alpha[2 * i] = a;
                    alpha[2 * i + 1] = a;
                    plusSlots[2 * i] = 4 * i + LogProbLosses.REPS_PLUS_CONCEPT;
                    plusSlots[2 * i + 1] = 4 * i + LogProbLosses.REPS_PLUS_PLAIN;
                    minusSlots[2 * i] = 4 * i + LogProbLosses.REPS_MINUS_PLAIN;
                    minusSlots[2 * i + 1] = 4 * i + LogProbLosses.REPS_MINUS_CONCEPT;
                }
                groups.add(new Group(Kind.ADD, plus, alpha, parameterCount));
                slots.add(plusSlots);
                groups.add(new Group(Kind.NULL_OUT, minus, null, parameterCount));
                slots.add(minusSlots);
            }
            case BIPO -> {
                float[] signs = new float[2 * b];
                for (int i = 0; i < b; i++) {
                    ConceptPair p = pairs.get(i);
                    if (sign(batch.step(), indices[i]) > 0) {
                        sequences.add(encode(p.negativeInput(), p.positiveOutput(), p.origin()));
                        sequences.add(encode(p.negativeInput(), p.negativeOutput(), p.origin()));
                        signs[2 * i] = 1;
                        signs[2 * i + 1] = 1;
                    } else {
                        sequences.add(encode(p.positiveInput(), p.negativeOutput(), p.origin()));
                        sequences.add(encode(p.positiveInput(), p.positiveOutput(), p.origin()));
                        signs[2 * i] = -1;
                        signs[2 * i + 1] = -1;
                    }
                }
                groups.add(new Group(Kind.ADD, List.copyOf(sequences), signs, parameterCount));
                slots.add(IntStream.range(0, 2 * b).toArray());
            }
            case LOREFT -> {
                // the injecting edit on x ⊕ yᶜ, the suppressing edit on xᶜ ⊕ y
                int block = LoreftParameters.blockSize(rank, dimension());
                List<Scored> plus = new ArrayList<>();
                List<Scored> minus = new ArrayList<>();
                for (ConceptPair p : pairs) {
                    plus.add(encode(p.negativeInput(), p.positiveOutput(), p.origin()));
                    minus.add(encode(p.positiveInput(), p.negativeOutput(), p.origin()));
                }
                sequences.addAll(plus);
                sequences.addAll(minus);
                groups.add(new Group(Kind.LOREFT, plus, null, 0, block));
                slots.add(IntStream.range(0, b).toArray());
                groups.add(new Group(Kind.LOREFT, minus, null, block, block));
                slots.add(IntStream.range(b, 2 * b).toArray());
            }
            default -> throw new IllegalStateException(method.id());
        }
        return new Layout(sequences, groups, slots);
    }

    private Result evaluate(float[] parameters, Batch batch, boolean withGradient) {
        int rank = rankOf(parameters);
        int b = batch.pairs().size();
        Layout layout = layout(batch, parameters.length, rank);
        List<Scored> sequences = layout.sequences();
        List<Group> groups = layout.groups();
        List<int[]> slots = layout.slots();
        long tokens = 0;
        int[] lengths = new int[sequences.size()];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = sequences.get(i).responseLength();
            tokens += lengths[i];
        }
        double[] steered = new double[sequences.size()];
        if (method == SteeringMethod.LOREFT) {
            // ½ the token-mean cross-entropy of each direction under its own edit; its dL/dlogp does
            // not depend on the log-probs, so one pass per edit gives loss and gradient
            double loss = 0;
            float[] grad = withGradient ? new float[parameters.length] : null;
            for (int k = 0; k < groups.size(); k++) {
                Group g = groups.get(k);
                int[] n = new int[g.sequences().size()];
                for (int i = 0; i < n.length; i++) {
                    n[i] = g.sequences().get(i).responseLength();
                }
                double[] upstream = LogProbLosses.crossEntropy(new double[n.length], n).gradient();
                for (int i = 0; i < upstream.length; i++) {
                    upstream[i] *= 0.5;
                }
                Scores s = scorer.score(g.steering(rank, parameters), g.sequences(), withGradient ? upstream : null);
                loss += 0.5 * LogProbLosses.crossEntropy(s.logProbs(), n).loss();
                if (withGradient) {
                    checkGradient(s.gradient(), g.length());
                    System.arraycopy(s.gradient(), 0, grad, g.offset(), g.length());
                }
            }
            return new Result(loss, grad, tokens);
        }
        // the loss needs the steered log-probs before the backward pass can be weighted by dL/dlogp
        for (int k = 0; k < groups.size(); k++) {
            Group g = groups.get(k);
            double[] lp = scorer.score(g.steering(rank, parameters), g.sequences(), null).logProbs();
            for (int i = 0; i < lp.length; i++) {
                steered[slots.get(k)[i]] = lp[i];
            }
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
            default -> LogProbLosses.bipo(steered, reference(sequences), beta);
        };
        float[] grad = null;
        if (withGradient) {
            grad = new float[parameters.length];
            for (int k = 0; k < groups.size(); k++) {
                Group g = groups.get(k);
                double[] upstream = new double[g.sequences().size()];
                for (int i = 0; i < upstream.length; i++) {
                    upstream[i] = value.gradient()[slots.get(k)[i]];
                }
                float[] part = scorer.score(g.steering(rank, parameters), g.sequences(), upstream).gradient();
                checkGradient(part, g.length());
                for (int i = 0; i < part.length; i++) {
                    grad[g.offset() + i] += part[i];
                }
            }
        }
        return new Result(value.loss(), grad, tokens);
    }

    private static void checkGradient(float[] grad, int n) {
        if (grad == null || grad.length != n) {
            throw new IllegalStateException("the scorer returned a gradient of " + (grad == null ? "no" : grad.length)
                    + " values for " + n + " parameters");
        }
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
