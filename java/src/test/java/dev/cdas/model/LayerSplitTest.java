package dev.cdas.model;

import static dev.cdas.model.ModelTest.ALL;
import static dev.cdas.model.ModelTest.concat;
import static dev.cdas.model.ModelTest.tokens;
import static dev.cdas.model.ModelTest.unit;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.Device;
import dev.cdas.InvalidArgumentException;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * The layer split through {@link Model}: the fixtures over two CPU placement stages give the unsplit
 * model's logits, hidden states, generated tokens and objective with gradient, bit for bit (the
 * native tests sweep split points and every call; docs/scale-out.md).
 */
class LayerSplitTest {
    static final List<String> FAMILIES = Fixtures.FAMILIES;
    static final RuntimeOptions CPU = ModelTest.CPU;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void twoCpuStagesEqualTheUnsplitModel(String family) throws Exception {
        try (Model whole = Model.load(Fixtures.dir(family), CPU);
             Model split = Model.load(Fixtures.dir(family), CPU.withDevices("cpu:0,cpu:1"))) {
            int layers = whole.config().numLayers();
            assertEquals(Optional.empty(), whole.placement());
            int firstOnSecond = (layers + 1) / 2;  // even ranges: block i on floor(2 i / layers)
            String expected = "blocks 0" + (firstOnSecond > 1 ? "-" + (firstOnSecond - 1) : "") + " on cpu:0, "
                    + firstOnSecond + (layers - 1 > firstOnSecond ? "-" + (layers - 1) : "") + " on cpu:1";
            assertEquals(Optional.of(expected), split.placement());
            assertEquals("cpu:0,cpu:1", split.deviceName());
            int v = whole.config().vocabSize();
            int d = whole.config().hiddenSize();
            Random rng = new Random(17);
            TokenBatch batch = TokenBatch.leftPadded(0, new int[][] {tokens(rng, 7, v), tokens(rng, 4, v)});
            ForwardOutputs a = whole.forward(batch, null, 1, ALL);
            ForwardOutputs b = split.forward(batch, null, 1, ALL);
            assertArrayEquals(a.logits(), b.logits(), family + " logits");
            assertArrayEquals(a.hidden(), b.hidden(), family + " hidden states");
            assertArrayEquals(a.finalHidden(), b.finalHidden(), family + " final hidden states");

            float[] w = unit(rng, d);
            Intervention steer = Intervention.fromSource(1, 1, w, new int[] {2, 1}, new int[] {1, 0});
            assertArrayEquals(whole.generate(batch, steer, GenerationOptions.greedy(4)),
                    split.generate(batch, steer, GenerationOptions.greedy(4)), family + " generated tokens");

            int[][] x = {tokens(rng, 4, v), tokens(rng, 6, v)};
            int[][] xc = {tokens(rng, 5, v), tokens(rng, 3, v)};
            int[][] yc = {tokens(rng, 3, v), tokens(rng, 4, v)};
            ObjectiveBatch objective = new ObjectiveBatch(
                    TokenBatch.leftPadded(0, new int[][] {concat(x[0], yc[0]), concat(x[1], yc[1])}),
                    TokenBatch.leftPadded(0, xc),
                    TokenBatch.leftPadded(0, new int[][] {concat(xc[0], yc[0]), concat(xc[1], yc[1])}),
                    new int[] {1, 1}, new int[] {4, 2}, new int[] {3, 5}, new int[] {4, 2}, new int[] {3, 4});
            ObjectiveResult ra = whole.cdasObjective(1, 1, w, objective, 1f, true);
            ObjectiveResult rb = split.cdasObjective(1, 1, w, objective, 1f, true);
            assertEquals(Float.floatToIntBits(ra.loss()), Float.floatToIntBits(rb.loss()), family + " loss " + ra.loss() + " vs " + rb.loss());
            assertArrayEquals(ra.gradDirections(), rb.gradDirections(), family + " gradient");
            assertTrue(ModelTest.maxAbsDiff(ra.gradDirections(), new float[d]) > 0, family + " zero gradient");
        }
    }

    @Test
    void devicesParse() {
        RuntimeOptions two = RuntimeOptions.defaults().withDevices("cuda:0, CUDA:1");
        assertEquals(List.of(new SplitDevice(Device.CUDA, 0), new SplitDevice(Device.CUDA, 1)), two.split());
        assertEquals(Device.CUDA, two.device());
        RuntimeOptions one = RuntimeOptions.defaults().withDevices("cuda:3");
        assertEquals(List.of(), one.split());
        assertEquals(RuntimeOptions.defaults().withDevice("cuda:3"), one);
        RuntimeOptions auto = RuntimeOptions.defaults().withDevices("auto");
        assertTrue(auto.autoSplit() && auto.split().isEmpty());
        assertEquals(List.of(new SplitDevice(Device.CPU, 0), new SplitDevice(Device.CPU, 1)),
                RuntimeOptions.defaults().withDevices("cpu:0,cpu:1").split());
        InvalidArgumentException twice = assertThrows(InvalidArgumentException.class,
                () -> RuntimeOptions.defaults().withDevices("cuda:0,cuda:0"));
        assertTrue(twice.getMessage().contains("twice"), twice.getMessage());
        InvalidArgumentException bad = assertThrows(InvalidArgumentException.class,
                () -> RuntimeOptions.defaults().withDevices("cuda:0,tpu:1"));
        assertTrue(bad.getMessage().contains("\"tpu:1\""), bad.getMessage());
        assertThrows(InvalidArgumentException.class, () -> RuntimeOptions.defaults().withDevices("cuda:0,"));
    }

    @Test
    void moreDevicesThanBlocksIsRefusedByTheRuntime() throws Exception {
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> Model.load(Fixtures.dir("llama"), CPU.withDevices("cpu:0,cpu:1,cpu:2,cpu:3")).close());
        assertTrue(e.getMessage().contains("more devices than the model's 3 blocks"), e.getMessage());
    }
}
