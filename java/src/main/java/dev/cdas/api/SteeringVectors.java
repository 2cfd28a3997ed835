package dev.cdas.api;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.model.ChatTemplateException;
import dev.cdas.model.GenerationOptions;
import dev.cdas.model.Intervention;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.TokenBatch;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.LogProbObjective;
import dev.cdas.train.ModelLogProbScorer;
import dev.cdas.train.TrainJob;
import dev.cdas.train.DiffMean;
import dev.cdas.train.ModelSteeringFactors;
import dev.cdas.train.ProgressListener;
import dev.cdas.train.SteeringFactorEstimator;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.SteeringVectorFile;
import dev.cdas.train.Trainer;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Training and applying steering vectors from Java in one call each, for tools other than the
 * command line (which is built on the same calls). Nothing here prints; progress goes to a
 * {@link ProgressListener} (nullable). Errors in the inputs throw the project's exceptions
 * ({@link InvalidArgumentException} and the other {@link dev.cdas.CdasException}s). See
 * {@link dev.cdas.api} for an example.
 */
public final class SteeringVectors {
    private SteeringVectors() {}

    /**
     * Fits a vector for the concept of {@code pairs} at block {@code layer} with {@code method}
     * (cdas, das: trained with {@code settings}, factors from the trained w; diffmean: the mean
     * difference, of the settings only {@code maxResponseTokens} applies and the rank must be 1;
     * reps, bipo, loreft: trained with {@code settings} on the steered log-likelihoods, docs/method.md;
     * prompt: the default instructions for the pairs' concept, no vector, nothing computed).
     * The result is in memory; {@link SteeringVectorFile#write} saves it.
     *
     * @param folder   the model's folder (its tokenizer and chat template)
     * @param model    the model loaded from {@code folder}
     * @param pairs    the training pairs, all of one concept (the first pair's names the vector)
     * @param layer    the block whose output is steered (0-based)
     * @param method   how the vector is made
     * @param settings the training settings
     * @param listener progress reports (steps, passes)
     * @return the vector with its factors and metadata
     * @throws IOException a data or model file that cannot be used (a {@link dev.cdas.data.DataFormatException}, ...)
     */
    public static SteeringVectorFile train(ModelFolder folder, Model model, List<ConceptPair> pairs, int layer,
            SteeringMethod method, TrainingSettings settings, ProgressListener listener) throws IOException {
        if (pairs.isEmpty()) {
            throw new InvalidArgumentException("no training pairs");
        }
        String concept = pairs.getFirst().concept();
        String modelName = folder.folder().getFileName().toString();
        if (method.steersByPrompt()) {
            return SteeringVectorFile.prompt(dev.cdas.train.PromptSteering.defaults(concept), modelName,
                    Map.of("pairs", Integer.toString(pairs.size())));
        }
        if (!method.optimised()) {
            if (settings.rank() != 1) {
                throw new InvalidArgumentException("diffmean makes one direction (rank 1), not rank " + settings.rank());
            }
            DiffMean.Result r = new DiffMean(model, folder.prompts(), layer, settings.maxResponseTokens()).compute(pairs, listener);
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("rank", "1");
            meta.put("max_response_tokens", Integer.toString(settings.maxResponseTokens()));
            meta.put("pairs", Integer.toString(pairs.size()));
            return new SteeringVectorFile(r.direction(), 1, r.direction().length, layer, new double[] {r.factorPositive()},
                    new double[] {r.factorNegative()}, modelName, concept, method.id(), meta);
        }
        if (method.logProbTrained()) {
            // RePS, BiPO, LoReFT with the papers' constants at their defaults
            int pad = folder.prompts().tokenizer().padTokenId().orElse(0);
            LogProbObjective objective = new LogProbObjective(method, new ModelLogProbScorer(model, layer, pad, 32),
                    folder.prompts(), settings.maxResponseTokens(), settings.seed(), LogProbObjective.DEFAULT_REPS_FACTORS,
                    LogProbObjective.DEFAULT_BIPO_BETA);
            Trainer.Run run = new Trainer(objective, settings).train(pairs, new Trainer.Outputs(null, null, null, listener), false);
            Map<String, String> meta = new LinkedHashMap<>(settings.toMetadata());
            meta.putAll(objective.metadata());
            meta.put("steps", Long.toString(run.steps()));
            meta.put("pairs", Integer.toString(pairs.size()));
            return TrainJob.logProbVector(method, run, layer, modelName, concept, meta);
        }
        CdasObjective objective = new CdasObjective(model, folder.prompts(), layer, settings.maxResponseTokens(),
                method.objectiveLoss());
        Trainer.Run run = new Trainer(objective, settings).train(pairs, new Trainer.Outputs(null, null, null, listener), false);
        SteeringFactorEstimator.Factors f = new ModelSteeringFactors(model, folder.prompts(), layer).estimate(run.w(), run.rank(), pairs);
        Map<String, String> meta = new LinkedHashMap<>(settings.toMetadata());
        meta.put("steps", Long.toString(run.steps()));
        meta.put("pairs", Integer.toString(pairs.size()));
        return new SteeringVectorFile(run.w(), run.rank(), run.dimension(), layer, f.positive(), f.negative(), modelName,
                concept, method.id(), meta);
    }

    /**
     * Replies to each prompt (one user turn, the folder's chat template) with {@code vector}
     * applied as its method says from prefix_len on, with {@code values} per row of w (usually
     * {@link SteeringVectorFile#values}), or unsteered when {@code vector} is null. A prompt file
     * ({@code method} prompt) rewrites each user turn instead ({@link SteeringVectorFile#message}).
     *
     * @param folder  the model's folder (its tokenizer and chat template)
     * @param model   the model loaded from {@code folder}
     * @param vector  the steering vector, or null for unsteered replies
     * @param values  one value per row of w: the clamp value (cdas, das) or the amount added (diffmean);
     *                for prompt its sign picks the instruction
     * @param prompts the user turns, at least one
     * @param options the generation settings (length, sampling, stop ids)
     * @return one reply per prompt, up to its first stop id
     */
    public static List<String> steer(ModelFolder folder, Model model, SteeringVectorFile vector, double[] values,
            List<String> prompts, GenerationOptions options) {
        if (prompts.isEmpty()) {
            throw new InvalidArgumentException("no prompts");
        }
        int[][] rows = new int[prompts.size()][];
        int[] prefix = new int[rows.length];
        for (int i = 0; i < rows.length; i++) {
            try {
                String message = vector == null ? prompts.get(i) : vector.message(prompts.get(i), values);
                var p = folder.prompts().encodePrompt(message);
                rows[i] = p.ids();
                prefix[i] = p.prefixLen();
            } catch (ChatTemplateException e) {
                throw new InvalidArgumentException("prompt " + (i + 1) + ": " + e.getMessage(), e);
            }
        }
        int pad = folder.tokenizer().padTokenId().orElse(0);
        Intervention iv = vector == null ? null : vector.intervention(values, prefix);
        int[][] out = model.generate(TokenBatch.leftPadded(pad, rows), iv, options);
        Set<Integer> stops = new LinkedHashSet<>();
        for (int id : options.eosIds()) {
            stops.add(id);
        }
        List<String> texts = new ArrayList<>(out.length);
        for (int[] r : out) {
            int n = r.length;
            while (n > 0 && stops.contains(r[n - 1])) {
                n--;
            }
            texts.add(folder.tokenizer().decode(Arrays.copyOf(r, n), true));
        }
        return texts;
    }
}
