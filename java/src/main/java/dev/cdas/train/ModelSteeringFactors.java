package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.ForwardOutput;
import dev.cdas.model.Model;
import dev.cdas.model.PromptEncoder;
import dev.cdas.model.TokenBatch;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;

/**
 * The steering factors of docs/method.md section 1 on the model runtime: the prompts rendered with the
 * chat template (generation prompt included, so they end at the source token), one unmodified
 * forward pass to block L, and {@code a⁺ = mean wᵀh_L} at the source token over the {@code xᶜ}
 * prompts, {@code a⁻} over the {@code x} prompts (per row of {@code w}).
 */
public final class ModelSteeringFactors implements SteeringFactorEstimator {
    private static final int CHUNK = 16;

    private final Model model;
    private final PromptEncoder prompts;
    private final int layer;

    /**
     * Factors read from {@code model} at {@code layer}.
     *
     * @param model   the model
     * @param prompts the model's prompt encoder (chat template)
     * @param layer   the block whose output h_L is projected (0-based)
     */
    public ModelSteeringFactors(Model model, PromptEncoder prompts, int layer) {
        this.model = model;
        this.prompts = prompts;
        this.layer = layer;
    }

    @Override
    public Factors estimate(float[] w, int rank, List<ConceptPair> pairs) {
        return new Factors(mean(w, rank, pairs.stream().map(ConceptPair::positiveInput).toList()),
                mean(w, rank, pairs.stream().map(ConceptPair::negativeInput).toList()));
    }

    /**
     * Mean of {@code W h_L} at the source token of each prompt, one value per row.
     *
     * @param w     the directions, rank x d row-major
     * @param rank  the number of directions
     * @param texts the prompts (user turns), at least one
     * @return rank values
     * @throws InvalidArgumentException when {@code w} is not rank x d or a prompt cannot be encoded
     */
    public double[] mean(float[] w, int rank, List<String> texts) {
        double[] sum = new double[rank];
        for (double[] p : projections(w, rank, texts)) {
            for (int r = 0; r < rank; r++) {
                sum[r] += p[r];
            }
        }
        for (int r = 0; r < rank; r++) {
            sum[r] /= texts.size();
        }
        return sum;
    }

    /**
     * {@code W h_L} at the source token of each prompt ([prompts][rank]).
     *
     * @param w     the directions, rank x d row-major
     * @param rank  the number of directions
     * @param texts the prompts (user turns)
     * @return one array of rank values per prompt, in order
     * @throws InvalidArgumentException when {@code w} is not rank x d or a prompt cannot be encoded
     */
    public List<double[]> projections(float[] w, int rank, List<String> texts) {
        int d = model.config().hiddenSize();
        if (w.length != rank * d) {
            throw new InvalidArgumentException("w holds " + w.length + " floats, not rank " + rank + " x " + d);
        }
        int pad = prompts.tokenizer().padTokenId().orElse(0);
        List<double[]> out = new ArrayList<>(texts.size());
        for (int from = 0; from < texts.size(); from += CHUNK) {
            List<String> chunk = texts.subList(from, Math.min(texts.size(), from + CHUNK));
            int[][] rows = new int[chunk.size()][];
            for (int i = 0; i < rows.length; i++) {
                try {
                    rows[i] = prompts.encodePrompt(chunk.get(i)).ids();
                } catch (ChatTemplateException e) {
                    throw new InvalidArgumentException(e.getMessage(), e);
                }
            }
            TokenBatch batch = TokenBatch.leftPadded(pad, rows);
            float[] h = model.forward(batch, null, layer, EnumSet.of(ForwardOutput.HIDDEN)).hidden();
            for (int b = 0; b < rows.length; b++) {
                // left-padded: every row's source token (its last) is the batch's last column
                long off = ((long) b * batch.seqLen() + batch.seqLen() - 1) * d;
                double[] p = new double[rank];
                for (int r = 0; r < rank; r++) {
                    double s = 0;
                    for (int i = 0; i < d; i++) {
                        s += (double) w[r * d + i] * h[(int) off + i];
                    }
                    p[r] = s;
                }
                out.add(p);
            }
        }
        return out;
    }
}
