package dev.cdas.eval;

import dev.cdas.InvalidArgumentException;
import dev.cdas.api.SteeringVectors;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.train.ProgressListener;
import java.util.ArrayList;
import java.util.List;

/**
 * A judge that is an instruct model folder run by this project's runtime, offline: each prompt is
 * one user turn in the folder's chat template, answered greedily with at most
 * {@code maxNewTokens} tokens, {@code batchSize} prompts at a time. The folder and model stay the
 * caller's to close. A prompt the model cannot take (longer than its context) is a failed verdict
 * naming the reason, not an error of the whole run.
 */
public final class LocalJudge implements Judge {
    private final ModelFolder folder;
    private final Model model;
    private final int maxNewTokens;
    private final int batchSize;
    private final int[] stopIds;

    /**
     * A judge that generates with a local model, greedily.
     *
     * @param folder       the judge model's folder (tokenizer and chat template)
     * @param model        the judge model, loaded from {@code folder}
     * @param maxNewTokens the longest verdict, in tokens, at least 1
     * @param batchSize    the prompts generated together, at least 1
     * @param stopIds      the ids that end a verdict
     * @throws dev.cdas.InvalidArgumentException when maxNewTokens or batchSize is below 1
     */
    public LocalJudge(ModelFolder folder, Model model, int maxNewTokens, int batchSize, int[] stopIds) {
        if (maxNewTokens < 1 || batchSize < 1) {
            throw new dev.cdas.InvalidArgumentException("the local judge's max new tokens and batch size must be at least 1");
        }
        this.folder = folder;
        this.model = model;
        this.maxNewTokens = maxNewTokens;
        this.batchSize = batchSize;
        this.stopIds = stopIds.clone();
    }

    @Override
    public String id() {
        return "local:" + folder.folder().toAbsolutePath().normalize() + ":greedy:max_new_tokens=" + maxNewTokens
                + ":dtype=" + model.dtype();
    }

    /** One prompt; one the model refuses (longer than its context, say) is a failed verdict with the reason. */
    private Verdict one(String prompt, dev.cdas.model.GenerationOptions greedy) {
        try {
            return Verdict.of(SteeringVectors.steer(folder, model, null, null, List.of(prompt), greedy).getFirst());
        } catch (InvalidArgumentException e) {
            return Verdict.failed(e.getMessage());
        }
    }

    @Override
    public List<Verdict> judge(List<String> prompts, ProgressListener listener) {
        List<Verdict> out = new ArrayList<>(prompts.size());
        dev.cdas.model.GenerationOptions greedy = dev.cdas.model.GenerationOptions.greedy(maxNewTokens, stopIds);
        try {
            for (int i = 0; i < prompts.size(); i += batchSize) {
                List<String> batch = prompts.subList(i, Math.min(prompts.size(), i + batchSize));
                List<String> texts;
                try {
                    texts = SteeringVectors.steer(folder, model, null, null, batch, greedy);
                } catch (InvalidArgumentException e) {
                    texts = null; // one of them does not fit: answer them one by one
                }
                if (texts != null) {
                    texts.forEach(t -> out.add(Verdict.of(t)));
                } else {
                    for (String p : batch) {
                        out.add(one(p, greedy));
                    }
                }
                if (listener != null) {
                    listener.progress("judge", out.size(), prompts.size(), "");
                }
            }
        } finally {
            if (listener != null) {
                listener.finished("judge");
            }
        }
        return out;
    }
}
