package dev.cdas.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.cdas.Context;
import dev.cdas.Dii;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_context_options;
import dev.cdas.bindings.cdas_h;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * What docs/concurrency.md promises: the native error message is per thread, two models live in
 * one JVM, concurrent calls on one model or context are serialised (each gets the result it would
 * get alone), and closing a model or context while another thread is inside a call waits for
 * that call instead of crashing or leaking.
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS)
class ConcurrencyTest {
    private static final EnumSet<ForwardOutput> LOGITS = EnumSet.of(ForwardOutput.LOGITS);

    private static <T> List<T> runAll(List<Callable<T>> tasks) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(tasks.size());
        try {
            CountDownLatch start = new CountDownLatch(1);
            List<Future<T>> futures = new ArrayList<>();
            for (Callable<T> t : tasks) {
                futures.add(pool.submit(() -> {
                    start.await();
                    return t.call();
                }));
            }
            start.countDown();
            List<T> out = new ArrayList<>();
            for (Future<T> f : futures) {
                out.add(f.get(100, TimeUnit.SECONDS));
            }
            return out;
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void lastErrorIsPerThreadUnderConcurrentFailingCalls() throws Exception {
        NativeLibrary.load();
        int threads = 8;
        List<Callable<Integer>> tasks = new ArrayList<>();
        for (int k = 0; k < threads; k++) {
            int bad = -(k + 1);
            tasks.add(() -> {
                int checked = 0;
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment options = cdas_context_options.allocate(arena);
                    MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
                    for (int i = 0; i < 300; i++) {
                        // a success clears this thread's message ...
                        assertEquals(cdas_h.CDAS_STATUS_OK(), cdas_h.cdas_context_options_default(options));
                        assertEquals("", Native.lastError());
                        // ... and a failure sets it to this thread's own problem, whatever the others do
                        cdas_context_options.num_threads(options, bad);
                        int status = cdas_h.cdas_context_create(options, out);
                        assertEquals(cdas_h.CDAS_STATUS_INVALID_ARGUMENT(), status);
                        Thread.yield();
                        String message = Native.lastError();
                        assertTrue(message.endsWith("got " + bad), message);
                        assertEquals(1, message.lines().count(), message);
                        checked++;
                    }
                }
                return checked;
            });
        }
        for (int n : runAll(tasks)) {
            assertEquals(300, n);
        }
    }

    private static int[] tokens(Random rnd, int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) {
            t[i] = rnd.nextInt(vocab);
        }
        return t;
    }

    @Test
    void twoModelsInOneJvmComputeConcurrentlyWhatTheyComputeAlone() throws Exception {
        try (Model llama = Model.load(Fixtures.dir("llama"), ModelTest.CPU);
             Model gpt2 = Model.load(Fixtures.dir("gpt2"), ModelTest.CPU)) {
            int[] ids = tokens(new Random(1), 12, 101);
            float[] llamaAlone = llama.forward(TokenBatch.single(ids), null, 0, LOGITS).logits();
            float[] gpt2Alone = gpt2.forward(TokenBatch.single(ids), null, 0, LOGITS).logits();
            assertFalse(java.util.Arrays.equals(llamaAlone, gpt2Alone), "two different models");
            List<Callable<Integer>> tasks = new ArrayList<>();
            for (Model m : List.of(llama, gpt2, llama, gpt2)) {
                float[] expected = m == llama ? llamaAlone : gpt2Alone;
                tasks.add(() -> {
                    for (int i = 0; i < 25; i++) {
                        assertArrayEquals(expected, m.forward(TokenBatch.single(ids), null, 0, LOGITS).logits());
                    }
                    return 25;
                });
            }
            assertEquals(List.of(25, 25, 25, 25), runAll(tasks));
        }
    }

    @Test
    void concurrentCallsOnOneModelAreSerialisedAndGiveTheSingleThreadedResults() throws Exception {
        try (Model model = Model.load(Fixtures.dir("llama"), ModelTest.CPU)) {
            Random rnd = new Random(7);
            int threads = 6;
            int[][] inputs = new int[threads][];
            float[][] alone = new float[threads][];
            for (int k = 0; k < threads; k++) {
                inputs[k] = tokens(rnd, 5 + 3 * k, 101);
                alone[k] = model.forward(TokenBatch.single(inputs[k]), null, 2,
                        EnumSet.of(ForwardOutput.HIDDEN, ForwardOutput.LOGITS)).logits();
            }
            List<Callable<Integer>> tasks = new ArrayList<>();
            for (int k = 0; k < threads; k++) {
                int kk = k;
                tasks.add(() -> {
                    for (int i = 0; i < 30; i++) {
                        ForwardOutputs out = model.forward(TokenBatch.single(inputs[kk]), null, 2,
                                EnumSet.of(ForwardOutput.HIDDEN, ForwardOutput.LOGITS));
                        assertArrayEquals(alone[kk], out.logits(), "thread " + kk + " call " + i);
                    }
                    return 30;
                });
            }
            for (int n : runAll(tasks)) {
                assertEquals(30, n);
            }
        }
    }

    /**
     * A worker calls {@code call} in a loop until it fails; once it has completed a call, the main
     * thread closes the resource. The close must return normally; every result the worker got
     * equals the first; the worker's loop ends with the documented use-after-close error.
     */
    private static void closeWhileCalling(Callable<float[]> call, AutoCloseable resource) throws Exception {
        float[] expected = call.call();
        AtomicInteger completed = new AtomicInteger();
        AtomicReference<Throwable> ended = new AtomicReference<>();
        AtomicReference<String> wrong = new AtomicReference<>();
        Thread worker = new Thread(() -> {
            try {
                while (true) {
                    float[] got = call.call();
                    if (!java.util.Arrays.equals(expected, got)) {
                        wrong.set("call " + completed.get() + " returned another result");
                    }
                    completed.incrementAndGet();
                }
            } catch (Throwable t) {
                ended.set(t);
            }
        });
        worker.start();
        while (completed.get() < 3 && worker.isAlive()) {
            Thread.onSpinWait();
        }
        resource.close();
        resource.close();  // a second close is a no-op
        worker.join(60_000);
        assertFalse(worker.isAlive());
        assertEquals(null, wrong.get());
        assertTrue(completed.get() >= 3, "the worker ran before the close");
        Throwable t = ended.get();
        assertInstanceOf(IllegalStateException.class, t, String.valueOf(t));
        assertNotEquals(null, t.getMessage());
        assertTrue(t.getMessage().contains("closed"), t.getMessage());
    }

    @Test
    void closingAModelWhileAnotherThreadCallsItWaitsForTheCall() throws Exception {
        Model model = Model.load(Fixtures.dir("llama"), ModelTest.CPU);
        int[] ids = tokens(new Random(3), 64, 101);
        closeWhileCalling(() -> model.forward(TokenBatch.single(ids), null, 0, LOGITS).logits(), model);
    }

    @Test
    void closingAContextWhileAnotherThreadCallsItWaitsForTheCall() throws Exception {
        Context context = Context.builder().threads(1).build();
        int rows = 4096;
        int dim = 128;
        int rank = 2;
        Random rnd = new Random(5);
        float[] h = new float[rows * dim];
        float[] w = new float[rank * dim];
        float[] values = new float[rank];
        for (int i = 0; i < h.length; i++) {
            h[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) rnd.nextGaussian();
        }
        values[0] = 1.5f;
        values[1] = -0.5f;
        Dii.Shape shape = new Dii.Shape(rows, dim, rank, 1);
        closeWhileCalling(() -> Dii.forward(context, shape, h, w, null, values, new int[rows], null).hOut(), context);
    }
}
