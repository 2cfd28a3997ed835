/**
 * The entry point for Java tools: {@link dev.cdas.api.SteeringVectors} trains a steering vector
 * and steers generation with it, one call each, on a model opened from a Hugging Face folder.
 *
 * <pre>{@code
 * try (ModelFolder folder = ModelFolder.open(modelDir);
 *      Model model = Model.create(folder.config(), folder.weights(), null, RuntimeOptions.defaults())) {
 *     List<ConceptPair> pairs = PairReader.read(pairsFile, null);
 *     TrainingSettings settings = TrainingSettings.defaults().withEpochs(2);
 *     SteeringVectorFile vector = SteeringVectors.train(folder, model, pairs, 1, SteeringMethod.CDAS, settings,
 *             (task, done, total, detail) -> System.out.println(task + " " + done + "/" + total + " " + detail));
 *     vector.write(outFile);
 *     List<String> replies = SteeringVectors.steer(folder, model, vector, vector.values(true, 1.0),
 *             List.of("Tell me about the weather."), GenerationOptions.greedy(16));
 *     System.out.println(replies.getFirst());
 * }
 * }</pre>
 *
 * (With the imports of {@code dev.cdas.api}, {@code dev.cdas.data}, {@code dev.cdas.model},
 * {@code dev.cdas.train}, {@code java.nio.file} and {@code java.util}, {@code SteeringVectorsTest.packageExample}
 * compiles this text as it stands here and runs it.) Errors in the inputs throw
 * {@link dev.cdas.InvalidArgumentException} and the other {@link dev.cdas.CdasException}s, or
 * {@link java.io.IOException}s naming the file; nothing prints.
 */
package dev.cdas.api;
