package dev.cdas.model;

import dev.cdas.io.Checkpoint;
import dev.cdas.io.ModelFormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A model folder opened and cross-checked in one go: config.json, the memory-mapped weights
 * (validated against the config), the tokenizer and the prompt encoder. The tokenizer may be
 * smaller than the model's (padded) vocabulary but never larger.
 */
public final class ModelFolder implements AutoCloseable {
    private final Path folder;
    private final ModelConfig config;
    private final Checkpoint checkpoint;
    private final CheckpointValidator.Weights weights;
    private final Tokenizer tokenizer;
    private final PromptEncoder prompts;

    private ModelFolder(Path folder, ModelConfig config, Checkpoint checkpoint, CheckpointValidator.Weights weights,
            Tokenizer tokenizer, PromptEncoder prompts) {
        this.folder = folder;
        this.config = config;
        this.checkpoint = checkpoint;
        this.weights = weights;
        this.tokenizer = tokenizer;
        this.prompts = prompts;
    }

    public static ModelFolder open(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) {
            throw new ModelFormatException(folder, null, "is not a folder (expected what transformers' save_pretrained writes)");
        }
        ModelConfig config = ModelConfig.load(folder);
        Checkpoint checkpoint = Checkpoint.open(folder);
        Tokenizer tokenizer = null;
        try {
            CheckpointValidator.Weights weights = CheckpointValidator.validate(config, checkpoint);
            tokenizer = Tokenizer.load(folder);
            if (tokenizer.vocabSize() > config.vocabSize()) {
                throw new TokenizerException(folder.resolve(Tokenizer.TOKENIZER_JSON), null, "has " + tokenizer.vocabSize()
                        + " tokens, more than config.json's vocab_size " + config.vocabSize() + " (tokenizer of another model?)");
            }
            return new ModelFolder(folder, config, checkpoint, weights, tokenizer, PromptEncoder.of(tokenizer));
        } catch (IOException | RuntimeException | Error e) {
            if (tokenizer != null) {
                tokenizer.close();
            }
            checkpoint.close();
            throw e;
        }
    }

    public Path folder() {
        return folder;
    }

    public ModelConfig config() {
        return config;
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    public CheckpointValidator.Weights weights() {
        return weights;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    public PromptEncoder prompts() {
        return prompts;
    }

    /** Ids the model stops generating at: config.json's eos_token_id(s) plus the tokenizer's eos_token. */
    public List<Integer> stopTokenIds() {
        List<Integer> ids = new ArrayList<>(config.eosTokenIds());
        tokenizer.eosTokenId().ifPresent(id -> {
            if (!ids.contains(id)) {
                ids.add(id);
            }
        });
        return List.copyOf(ids);
    }

    @Override
    public void close() {
        tokenizer.close();
        checkpoint.close();
    }

    @Override
    public String toString() {
        return "ModelFolder[" + folder + ": " + config + ", " + weights.dtype() + "]";
    }
}
