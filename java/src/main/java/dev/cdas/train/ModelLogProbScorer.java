package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.Intervention;
import dev.cdas.model.LogProbBatch;
import dev.cdas.model.LogProbResult;
import dev.cdas.model.Model;
import dev.cdas.model.TokenBatch;
import java.util.List;

/**
 * {@link LogProbObjective.Scorer} on the model runtime: {@link Model#sequenceLogProbs} with the
 * intervention at block {@code layer} from each sequence's {@code prefixLen} on, scoring the
 * response tokens (positions {@code promptLength ..} of the row). At most {@code sequencesPerCall}
 * sequences go to one native call; log-probabilities are per row and the gradient is linear in the
 * upstream, so the chunks' gradients add up to the whole call's.
 */
public final class ModelLogProbScorer implements LogProbObjective.Scorer {
    private final Model model;
    private final int layer;
    private final int pad;
    private final int sequencesPerCall;

    /**
     * A scorer on {@code model}'s steered log-likelihoods at block {@code layer}.
     *
     * @param pad the tokenizer's padding id (rows are left-padded with it)
     * @param model the model
     * @param layer the block the steering acts on (0-based)
     * @param sequencesPerCall the most sequences per native call
     */
    public ModelLogProbScorer(Model model, int layer, int pad, int sequencesPerCall) {
        int layers = model.config().numLayers();
        if (layer < 0 || layer >= layers) {
            throw new InvalidArgumentException("layer " + layer + " is out of range: the model has blocks 0.." + (layers - 1));
        }
        if (sequencesPerCall < 1) {
            throw new InvalidArgumentException("sequences per call must be at least 1, got " + sequencesPerCall);
        }
        this.model = model;
        this.layer = layer;
        this.pad = pad;
        this.sequencesPerCall = sequencesPerCall;
    }

    @Override
    public String compute() {
        return model.computeKind();
    }

    @Override
    public int dimension() {
        return model.config().hiddenSize();
    }

    @Override
    public LogProbObjective.Scores score(LogProbObjective.Steering steering, List<LogProbObjective.Scored> sequences,
            double[] upstream) {
        int n = sequences.size();
        double[] logProbs = new double[n];
        float[] grad = upstream == null || steering == null ? null : new float[steering.parameters().length];
        for (int from = 0; from < n; from += sequencesPerCall) {
            int to = Math.min(n, from + sequencesPerCall);
            int b = to - from;
            int[][] ids = new int[b][];
            int[] prefix = new int[b];
            int[] start = new int[b];
            int[] count = new int[b];
            for (int i = 0; i < b; i++) {
                LogProbObjective.Scored s = sequences.get(from + i);
                ids[i] = s.ids();
                prefix[i] = s.prefixLen();
                start[i] = s.promptLength();
                count[i] = s.responseLength();
            }
            Intervention iv = steering == null ? null : intervention(steering, from, b, prefix);
            float[] up = null;
            if (grad != null) {
                up = new float[b];
                for (int i = 0; i < b; i++) {
                    up[i] = (float) upstream[from + i];
                }
            }
            LogProbResult r = model.sequenceLogProbs(iv, new LogProbBatch(TokenBatch.leftPadded(pad, ids), prefix, start, count), up);
            for (int i = 0; i < b; i++) {
                logProbs[from + i] = r.logProbs()[i];
            }
            if (grad != null) {
                for (int i = 0; i < grad.length; i++) {
                    grad[i] += r.gradient()[i];
                }
            }
        }
        return new LogProbObjective.Scores(logProbs, grad);
    }

    private Intervention intervention(LogProbObjective.Steering st, int from, int b, int[] prefix) {
        int rank = st.rank();
        float[] p = st.parameters();
        return switch (st.kind()) {
            case ADD -> {
                float[] amounts = new float[b * rank];
                System.arraycopy(st.amounts(), from * rank, amounts, 0, b * rank);
                yield Intervention.add(layer, rank, p, amounts, prefix.clone());
            }
            case NULL_OUT -> Intervention.nullOut(layer, rank, p, prefix.clone());
            case LOREFT -> {
                int d = dimension();
                yield Intervention.loreft(layer, LoreftParameters.r(p, rank, d), LoreftParameters.w(p, rank, d),
                        LoreftParameters.b(p, rank, d), rank, prefix.clone());
            }
        };
    }
}
