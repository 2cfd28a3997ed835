package dev.cdas.data;

import dev.cdas.InvalidArgumentException;
import dev.cdas.model.Tokenizer;
import java.util.Arrays;
import java.util.OptionalInt;

/**
 * Responses are cut to a maximum number of tokens (128 by default, as the reference) on the
 * token ids themselves. The reference code truncates, decodes the ids back to text and
 * re-tokenises, which puts a BOS in the middle of the sequence when the tokenizer adds one
 * (docs/method.md, section 1, the choices). Here the response is tokenised once without special tokens, a leading
 * BOS (from tokenizers that add it whatever they are asked) is dropped, and the ids are appended
 * to the prompt's ids as they are; nothing is decoded.
 */
public final class ResponseTruncation {
    /** The default maximum response length in tokens (the reference's). */
    public static final int DEFAULT_MAX_TOKENS = 128;

    private ResponseTruncation() {}

    /**
     * The first {@code maxTokens} ids of {@code ids}, after dropping leading {@code bosId}s.
     *
     * @param ids       a response's token ids
     * @param maxTokens the most ids kept, at least 1
     * @param bosId     the tokenizer's BOS id, if it has one
     * @return the kept ids
     * @throws InvalidArgumentException when {@code maxTokens} is less than 1
     */
    public static int[] truncate(int[] ids, int maxTokens, OptionalInt bosId) {
        if (maxTokens < 1) {
            throw new InvalidArgumentException("the maximum response length must be at least 1 token, got " + maxTokens);
        }
        int start = 0;
        if (bosId.isPresent()) {
            while (start < ids.length && ids[start] == bosId.getAsInt()) {
                start++;
            }
        }
        return Arrays.copyOfRange(ids, start, Math.min(ids.length, start + maxTokens));
    }

    /**
     * Tokenises a response for appending to a rendered prompt and truncates it.
     *
     * @param tokenizer the model's tokenizer
     * @param response  the response text
     * @param maxTokens the most tokens kept, at least 1
     * @return the response's ids, without special tokens, at most {@code maxTokens}
     * @throws InvalidArgumentException when {@code maxTokens} is less than 1
     */
    public static int[] encodeResponse(Tokenizer tokenizer, String response, int maxTokens) {
        OptionalInt bos = tokenizer.bosToken().map(tokenizer::tokenId).orElse(OptionalInt.empty());
        return truncate(tokenizer.encode(response, false), maxTokens, bos);
    }
}
