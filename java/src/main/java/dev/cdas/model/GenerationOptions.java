package dev.cdas.model;

/**
 * temperature 0 = greedy; topP 1 and topK 0 = off; a row stops after producing one of eosIds.
 *
 * @param maxNewTokens the most tokens each row may add, at least 1
 * @param temperature  the sampling temperature; 0 for greedy decoding
 * @param topP         nucleus sampling's probability mass, in (0, 1]; 1 for off
 * @param topK         sample among the k most likely tokens; 0 for off
 * @param seed         the sampler's seed (sampling only)
 * @param eosIds       the ids that end a row (the id itself is returned); empty for none
 */
public record GenerationOptions(int maxNewTokens, float temperature, float topP, int topK, long seed, int[] eosIds) {
    /**
     * Greedy decoding (temperature 0, no top-p or top-k, seed 0).
     *
     * @param maxNewTokens the most tokens each row may add
     * @param eosIds       the ids that end a row
     * @return the options
     */
    public static GenerationOptions greedy(int maxNewTokens, int... eosIds) {
        return new GenerationOptions(maxNewTokens, 0f, 1f, 0, 0L, eosIds);
    }
}
