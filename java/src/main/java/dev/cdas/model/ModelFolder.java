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

    /**
     * Opens a model folder as transformers' {@code save_pretrained} writes it: config.json, the
     * safetensors weights (checked against the config) and tokenizer.json with its chat template.
     *
     * @param folder the folder
     * @return the opened folder; close it to unmap the weights and free the tokenizer
     * @throws ModelFormatException when the path is not a folder or a file in it is missing or malformed
     *         ({@link ConfigException}, {@link TokenizerException}, {@link dev.cdas.io.SafetensorsFormatException})
     * @throws IOException          when a file cannot be read
     */
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

    /** {@return the folder that was opened} */
    public Path folder() {
        return folder;
    }

    /** {@return the folder's config.json} */
    public ModelConfig config() {
        return config;
    }

    /** {@return the mapped checkpoint (valid until {@link #close()})} */
    public Checkpoint checkpoint() {
        return checkpoint;
    }

    /** {@return the checked weights, views into the checkpoint (valid until {@link #close()})} */
    public CheckpointValidator.Weights weights() {
        return weights;
    }

    /** {@return the folder's tokenizer} */
    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** {@return the prompt encoder over the folder's tokenizer and chat template} */
    public PromptEncoder prompts() {
        return prompts;
    }

    /**
     * Ids the model stops generating at: config.json's eos_token_id(s) plus the tokenizer's eos_token.
     *
     * @return the ids, without duplicates, unmodifiable
     */
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
