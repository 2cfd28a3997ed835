package dev.cdas.model;

/** temperature 0 = greedy; topP 1 and topK 0 = off; a row stops after producing one of eosIds. */
public record GenerationOptions(int maxNewTokens, float temperature, float topP, int topK, long seed, int[] eosIds) {
    public static GenerationOptions greedy(int maxNewTokens, int... eosIds) {
        return new GenerationOptions(maxNewTokens, 0f, 1f, 0, 0L, eosIds);
    }
}
