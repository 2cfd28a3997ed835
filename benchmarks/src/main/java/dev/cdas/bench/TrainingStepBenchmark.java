package dev.cdas.bench;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.util.concurrent.TimeUnit;

/**
 * One CDAS training step ({@link TrainingStep}) on a GPT-2-124M-shaped model with its 50 257-token
 * vocabulary: the fused LM-head + JSD loss against the same step with the loss composed from
 * libtorch operations. Each measured iteration is one step (seconds long), so SingleShotTime with
 * several iterations gives the median.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 7)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED"})
public class TrainingStepBenchmark {
    @Param({"gpt2"})
    public String shape;

    @Param({"fused", "torch-composed"})
    public String impl;

    /** computed: a first-epoch step; cached: a later epoch's step (states from the trainer's cache). */
    @Param({"computed", "cached"})
    public String states;

    /** libtorch intra-op threads; 0 = its default (all cores). */
    @Param({"0"})
    public int threads;

    private TrainingStep step;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        step = new TrainingStep(TrainingStep.shape(shape), TrainingStep.loss(impl), states.equals("cached"), threads);
        step.warmUp();
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        step.close();
    }

    @Benchmark
    public double trainingStep() {
        return step.step();
    }
}
