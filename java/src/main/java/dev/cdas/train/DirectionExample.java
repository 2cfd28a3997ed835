package dev.cdas.train;

/**
 * One example of one training direction (docs/method.md section 1). The runtime builds from it
 * <ul>
 *   <li>the base sequence {@code baseInput ⊕ response} (intervened, with autograd above layer L),</li>
 *   <li>the source prompt {@code sourceInput}, whose last token gives the source activation, and</li>
 *   <li>the target sequence {@code sourceInput ⊕ response}, whose unmodified output distribution at
 *       the response positions is the target.</li>
 * </ul>
 * D⁺ (inject): base input x, source xᶜ, response yᶜ. D⁻ (suppress): base input xᶜ, source x,
 * response y. Inputs are raw prompts (the runtime renders them with the chat template).
 *
 * @param baseInput   the prompt of the base sequence, the one intervened on
 * @param sourceInput the prompt whose last token gives the source activation
 * @param response    the response after either prompt
 * @param origin      where the pair is, for messages ("pairs.jsonl line 3")
 */
public record DirectionExample(String baseInput, String sourceInput, String response, String origin) {}
