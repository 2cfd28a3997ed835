package dev.cdas;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.data.ResponseTruncation;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.PromptEncoder;
import dev.cdas.train.Batch;
import dev.cdas.train.Batches;
import dev.cdas.train.ExampleEncoder;
import dev.cdas.train.Rng;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** The bundled demo (demo/, made by tools/make_demo.py) is usable by the Java side as committed. */
class DemoAssetsTest {
    private static final Path DEMO =
            Path.of(System.getProperty("cdas.project.dir", "..")).toAbsolutePath().normalize().resolve("demo");

    @Test
    void demoModelLoadsWithItsChatTemplate() throws Exception {
        try (ModelFolder m = ModelFolder.open(DEMO.resolve("model"))) {
            assertEquals(4096, m.config().vocabSize());
            PromptEncoder prompts = m.prompts();
            assertTrue(prompts.usesChatTemplate());
            assertEquals(3, prompts.prefixLen()); // <|bos|><|user|>\n
            PromptEncoder.EncodedPrompt p = prompts.encodePrompt("Tell me a saying about food.");
            int[] ids = p.ids();
            int assistant = m.tokenizer().tokenId("<|assistant|>").orElseThrow();
            assertEquals(m.tokenizer().tokenId("<|bos|>").orElseThrow(), ids[0]);
            assertEquals(assistant, ids[ids.length - 2]); // then "\n": the source is the header's last token
            assertEquals(ids.length - 1, p.sourcePosition());

            int bos = m.tokenizer().tokenId("<|bos|>").orElseThrow();
            String longResponse = "Eat your vegetables. ".repeat(80);
            int[] response = ResponseTruncation.encodeResponse(m.tokenizer(), longResponse, 128);
            assertEquals(128, response.length);
            assertFalse(Arrays.stream(response).anyMatch(t -> t == bos));
            assertArrayEquals(Arrays.copyOf(m.tokenizer().encode(longResponse, false), 128), response);
        }
    }

    @Test
    void directionExamplesEncodeToAlignedTokenSequences() throws Exception {
        try (ModelFolder m = ModelFolder.open(DEMO.resolve("model"))) {
            List<ConceptPair> train = PairReader.read(DEMO.resolve("data/startrek.jsonl"), "Star Trek");
            Batch batch = Batches.epoch(train, 4, 0, new Rng(1)).getFirst();
            ExampleEncoder encoder = new ExampleEncoder(m.prompts(), 16);
            int bos = m.tokenizer().tokenId("<|bos|>").orElseThrow();
            for (var e : encoder.encode(batch.inject())) {
                int[] base = e.base();
                int[] target = e.target();
                assertTrue(e.responseLength() >= 1 && e.responseLength() <= 16, e.toString());
                assertEquals(e.basePromptLength() + e.responseLength(), base.length);
                assertEquals(e.targetPromptLength() + e.responseLength(), target.length);
                assertArrayEquals(Arrays.copyOfRange(base, e.basePromptLength(), base.length),
                        Arrays.copyOfRange(target, e.targetPromptLength(), target.length));
                assertArrayEquals(e.source(), Arrays.copyOf(target, e.targetPromptLength()));
                assertEquals(e.source().length - 1, e.sourcePosition());
                assertEquals(3, e.basePrefixLen());
                assertEquals(1, Arrays.stream(base).filter(t -> t == bos).count()); // no stray BOS
                assertTrue(m.tokenizer().decode(e.source(), false).contains("about Star Trek"));
                assertFalse(m.tokenizer().decode(Arrays.copyOf(base, e.basePromptLength()), false).contains("Star Trek"));
            }
        }
    }

    @Test
    void demoDatasetHasDisjointSplitsOfOneConcept() throws Exception {
        List<ConceptPair> train = PairReader.read(DEMO.resolve("data/startrek.jsonl"), "Star Trek");
        List<ConceptPair> heldout = PairReader.read(DEMO.resolve("data/startrek.heldout.jsonl"), "Star Trek");
        assertTrue(train.size() >= 100 && heldout.size() >= 20, train.size() + " / " + heldout.size());
        Set<String> trainQuotes = train.stream().map(ConceptPair::positiveOutput).collect(Collectors.toSet());
        assertTrue(heldout.stream().noneMatch(p -> trainQuotes.contains(p.positiveOutput())));
        assertTrue(train.stream().allMatch(p -> p.positiveInput().contains("Star Trek") && !p.negativeInput().contains("Star Trek")));
    }
}
