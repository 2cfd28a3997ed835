package dev.cdas.train;

import dev.cdas.NonFiniteException;
import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The optimisation loop of docs/method.md section 1, independent of the model: seeded random unit
 * initialisation, per-epoch shuffled minibatches, loss and gradient from an {@link Objective},
 * global gradient-norm clipping, AdamW on a linearly decaying learning rate (no warm-up),
 * re-normalisation of each row after every step. It checkpoints every N steps and resumes from a
 * checkpoint to exactly the trajectory of an uninterrupted run.
 *
 * <p>Order of draws from the run's generator: first the initial directions, then one permutation
 * per epoch at the epoch's start.
 */
public final class Trainer {

    /**
     * Where the run writes; any may be null.
     *
     * @param checkpoint the checkpoint file, or null for none
     * @param lossCsv    the loss log as CSV, or null
     * @param lossPng    the loss plot as PNG, or null
     * @param progress   progress reports (task "train"), or null
     */
    public record Outputs(Path checkpoint, Path lossCsv, Path lossPng, ProgressListener progress) {
        /** {@return outputs with nothing written and no progress reports} */
        public static Outputs none() {
            return new Outputs(null, null, null, null);
        }
    }

    /**
     * A finished run.
     *
     * @param w         the trained directions, rank x d row-major, rows of unit norm
     * @param rank      the number of directions r
     * @param dimension d
     * @param log       the loss of every step
     * @param steps     the optimiser steps done in all (resumed ones included)
     * @param resumed   whether the run continued from a checkpoint
     * @param firstStep the steps done before this run took over: the checkpoint's step when resumed, else 0
     */
    public record Run(float[] w, int rank, int dimension, LossLog log, long steps, boolean resumed, long firstStep) {}

    private final Objective objective;
    private final TrainingSettings settings;
    private final Collective group;

    /**
     * A trainer of {@code objective}'s directions with {@code settings}.
     *
     * @param objective the loss and gradient
     * @param settings  epochs, batch size, optimiser, rank, seed
     */
    public Trainer(Objective objective, TrainingSettings settings) {
        this(objective, settings, null);
    }

    /**
     * A trainer that is one rank of data-parallel training ({@code group} non-null; the objective
     * is then a {@link DataParallelObjective} over the same group, so every rank takes the same
     * steps): only rank 0 writes checkpoints, and every rank waits for it at a barrier after each;
     * on resume, every rank reads the checkpoint (a folder all ranks see) and the ranks check that
     * they start from the same step.
     *
     * @param objective the loss and gradient
     * @param settings the training settings
     * @param group the ranks, or null for one process
     */
    public Trainer(Objective objective, TrainingSettings settings, Collective group) {
        this.objective = objective;
        this.settings = settings;
        this.group = group;
    }

    /**
     * Trains on {@code pairs}. With {@code resume} and an existing checkpoint at
     * {@code outputs.checkpoint()}, continues from it (refusing one made with other settings,
     * data or dimension).
     */
    /**
     * Refuses a checkpoint that cannot be a state of this run: a step outside 0..total-1 (checkpoints
     * are written before the last step), an optimiser step or history that disagrees with it, state of
     * the wrong size, or non-finite values.
     */
    static void checkConsistent(Path file, TrainingCheckpoint ck, long total, int n) {
        String problem = null;
        if (ck.step() < 0 || ck.step() >= total) {
            problem = "it is at step " + ck.step() + ", but this run has steps 0.." + (total - 1);
        } else if (ck.adamStep() != ck.step()) {
            problem = "its optimiser step " + ck.adamStep() + " differs from its step " + ck.step();
        } else if (ck.history().size() != ck.step()) {
            problem = "its loss history has " + ck.history().size() + " entries for " + ck.step() + " steps";
        } else if (ck.w().length != n || ck.adamM().length != n || ck.adamV().length != n) {
            problem = "its state has " + ck.w().length + "/" + ck.adamM().length + "/" + ck.adamV().length
                    + " values (w/adam_m/adam_v), this run needs " + n;
        } else {
            for (int i = 0; i < n && problem == null; i++) {
                if (!Float.isFinite(ck.w()[i]) || !Float.isFinite(ck.adamM()[i]) || !(ck.adamV()[i] >= 0)
                        || !Float.isFinite(ck.adamV()[i])) {
                    problem = "its state holds a non-finite (or negative second-moment) value at index " + i;
                }
            }
        }
        if (problem != null) {
            throw new InvalidArgumentException(file + ": not a checkpoint of this run: " + problem
                    + "; delete it or start afresh instead of resuming");
        }
    }

    /**
     * Trains on {@code pairs}. With {@code resume} and an existing checkpoint at
     * {@code outputs.checkpoint()}, continues from it (refusing one made with other settings, data or
     * dimension).
     *
     * @param pairs   the training pairs, at least one
     * @param outputs where the run writes
     * @param resume  whether to continue from an existing checkpoint
     * @return the trained directions and the loss log
     * @throws InvalidArgumentException when there is no pair, the rank exceeds d, or the checkpoint is not one of this run
     * @throws dev.cdas.NonFiniteException when a loss or gradient is not finite
     * @throws IOException              when a checkpoint or log cannot be read or written
     */
    public Run train(List<ConceptPair> pairs, Outputs outputs, boolean resume) throws IOException {
        Session session = start(pairs, outputs, resume);
        try {
            while (session.hasNext()) {
                Batch batch = session.next();
                session.apply(objective.lossAndGradient(session.directions(), batch));
            }
        } finally {
            session.close();
        }
        return session.finish();
    }

    /**
     * A run taken one step at a time: {@link Session#next} gives the minibatch, {@link Session#apply} the
     * objective's result on it (at {@link Session#directions}); {@link #train} is this loop with this
     * trainer's objective. A concept pack ({@link ConceptPack}) drives several sessions in
     * lockstep, computing their results in one call; each session keeps its own random stream,
     * minibatch order, optimiser state, schedule and checkpoints, so it takes the same steps as alone.
     *
     * @param pairs   the training pairs, at least one
     * @param outputs where the run writes
     * @param resume  whether to continue from an existing checkpoint
     * @return the run, before its first step (or at the resumed step)
     * @throws InvalidArgumentException when there is no pair, the rank exceeds d, or the checkpoint is not one of this run
     * @throws IOException              when a checkpoint cannot be read
     */
    public Session start(List<ConceptPair> pairs, Outputs outputs, boolean resume) throws IOException {
        return new Session(pairs, outputs, resume);
    }

    /**
     * One run of this trainer, stepped by its caller ({@link #start}). Under data parallel
     * ({@code group} non-null) only rank 0 writes checkpoints and the loss curve, and every rank waits
     * at a barrier after each checkpoint. Otherwise, given a checkpoint path (with or without a
     * checkpoint interval), an open session holds a JVM
     * shutdown hook: when the JVM exits before {@link #close} (SIGTERM, Ctrl-C), it writes a checkpoint
     * of the last finished step and reports it to the progress listener
     * ({@link ProgressListener#interrupted}). {@link #close} removes it.
     */
    public final class Session implements AutoCloseable {
        private final Outputs outputs;
        private final int rank;
        private final int dim;
        private final int perEpoch;
        private final long total;
        private final LinearDecaySchedule schedule;
        private final AdamW adam;
        private final Map<String, String> identity;
        private final LossLog log = new LossLog();
        private final List<ConceptPair> pairs;
        private final int ckRank;
        private final int ckDim;
        private final boolean writesCheckpoints;
        private Rng rng;
        private final float[] w;
        private long step;
        private final boolean resumed;
        private final long firstStep;
        private final long startNanos = System.nanoTime();
        private long tokensThisRun;
        private int epoch = -1;
        private long epochState;
        private List<Batch> batches;
        private Batch pending;
        private boolean closed;
        // apply (the state's update and its checkpoints) and the exit hook's checkpoint take turns
        private final Object stateLock = new Object();
        private long checkpointedStep = -1;
        private Thread onExit;

        private Session(List<ConceptPair> pairs, Outputs outputs, boolean resume) throws IOException {
            if (pairs.isEmpty()) {
                throw new InvalidArgumentException("no training pairs");
            }
            this.pairs = pairs;
            this.outputs = outputs;
            dim = objective.dimension();
            rank = settings.rank();
            if (rank > dim) {
                throw new InvalidArgumentException("rank " + rank + " exceeds the dimension " + dim);
            }
            perEpoch = Batches.batchesPerEpoch(pairs.size(), settings.batchSize());
            total = settings.totalSteps(pairs.size());
            schedule = new LinearDecaySchedule(settings.lr(), total);
            int n = objective.parameterCount(rank);
            // the checkpoint's w is [rank, d] for directions, a flat [n] for other parameters
            ckRank = n == rank * dim ? rank : 1;
            ckDim = n == rank * dim ? dim : n;
            adam = new AdamW(n, settings.beta1(), settings.beta2(), settings.eps(), settings.weightDecay());
            identity = identity(pairs, dim);
            rng = new Rng(settings.seed());
            if (resume && outputs.checkpoint() != null && Files.exists(outputs.checkpoint())) {
                TrainingCheckpoint ck = TrainingCheckpoint.read(outputs.checkpoint());
                // A checkpoint from before the compute kind was recorded resumes as before, wherever it runs.
                Map<String, String> theirs = ck.identity();
                Map<String, String> expected = theirs.containsKey(COMPUTE) ? identity : withoutCompute(identity);
                if (!theirs.equals(expected) || ck.rank() != ckRank || ck.dimension() != ckDim) {
                    if (theirs.containsKey(COMPUTE) && ck.rank() == ckRank && ck.dimension() == ckDim
                            && withoutCompute(theirs).equals(withoutCompute(identity))) {
                        String ours = identity.get(COMPUTE);
                        throw new InvalidArgumentException(outputs.checkpoint() + " was trained computing in " + theirs.get(COMPUTE)
                                + " but this run computes in " + (ours == null ? "(nothing recorded)" : ours)
                                + ", which would not continue the same run: give the --device and --dtype it was trained with"
                                + " (train --resume without --dtype takes the checkpoint's), or delete it to start afresh");
                    }
                    throw new InvalidArgumentException(outputs.checkpoint() + " was made by a different run: "
                            + describeDifference(theirs, expected) + "; delete it or start afresh instead of resuming");
                }
                checkConsistent(outputs.checkpoint(), ck, total, n);
                w = ck.w();
                adam.restore(ck.adamM(), ck.adamV(), ck.adamStep());
                step = ck.step();
                checkpointedStep = step;
                rng = Rng.fromState(ck.epochRngState());
                ck.history().forEach(log::add);
                resumed = true;
                replayTaken(pairs);
            } else {
                w = objective.initialParameters(rank, rng);
                if (w.length != n) {
                    throw new IllegalStateException("objective made " + w.length + " initial parameters, expected " + n);
                }
                resumed = false;
            }
            if (group != null && group.worldSize() > 1) {
                float[] steps = {step, resumed ? 1 : 0};
                group.allReduceSum(steps);
                if (steps[0] != (float) step * group.worldSize() || steps[1] != (resumed ? group.worldSize() : 0)) {
                    throw new InvalidArgumentException("the ranks do not start from the same step: rank " + group.rank() + " "
                            + (resumed ? "resumes at step " + step + " from " + outputs.checkpoint() : "starts afresh")
                            + ", while the ranks' steps sum to " + (long) steps[0] + " and " + (int) steps[1] + " of "
                            + group.worldSize() + " resume; every rank must see the same checkpoint beside --out");
                }
            }
            firstStep = step;
            writesCheckpoints = group == null || group.rank() == 0;
            if (outputs.checkpoint() != null && group == null) {
                // SIGTERM (a scheduler's time limit or preemption) or Ctrl-C: a checkpoint of the last
                // finished step, so that --resume loses nothing (not under data parallel: every rank
                // would have to stop at the same step)
                onExit = new Thread(this::checkpointOnExit, "cdas-checkpoint-on-exit");
                Runtime.getRuntime().addShutdownHook(onExit);
            }
        }

        /**
         * The exit hook: a checkpoint at the last finished step unless one is there, reported to the
         * progress listener. Package-private for the test that calls it between steps.
         */
        void checkpointOnExit() {
            synchronized (stateLock) {
                if (closed || step == 0 || step >= total) {
                    return;
                }
                String what;
                if (step == checkpointedStep) {
                    what = "the checkpoint of this step is " + outputs.checkpoint();
                } else {
                    try {
                        writeCheckpoint();
                        what = "checkpoint of this step written to " + outputs.checkpoint();
                    } catch (IOException | RuntimeException e) {
                        what = "writing its checkpoint failed (" + e.getMessage() + "); the last one is of step "
                                + Math.max(checkpointedStep, 0);
                    }
                }
                if (outputs.progress() != null) {
                    outputs.progress().interrupted("train", step, total, what);
                }
            }
        }

        /** Writes the checkpoint of the current step (under stateLock). */
        private void writeCheckpoint() throws IOException {
            // the generator's state at the start of the epoch of the next step: kept when that epoch is
            // drawn already (mid-epoch, or next() ran for the first step of a new one), else the
            // generator's own state, from which next() will draw it
            long stateForNext = epoch == (int) (step / perEpoch) ? epochState : rng.state();
            if (writesCheckpoints) {
                new TrainingCheckpoint(w, adam.firstMoment(), adam.secondMoment(), adam.stepCount(), step,
                        stateForNext, ckRank, ckDim, identity, log.entries()).write(outputs.checkpoint());
            }
            checkpointedStep = step;
        }

        /**
         * Before a resumed run's first step: every minibatch the interrupted run had taken, in its
         * order, through {@link Objective#warm}, so that the objective's cached states are what they
         * were in that run ({@link Objective#warm} says why). The epochs' orders are drawn as a fresh
         * run draws them: the seed's generator after the initial parameters, one shuffle per epoch.
         */
        private void replayTaken(List<ConceptPair> pairs) {
            if (step == 0) {
                return;
            }
            Rng fresh = new Rng(settings.seed());
            objective.initialParameters(rank, fresh);
            for (int e = 0; (long) e * perEpoch < step; e++) {
                for (Batch b : Batches.epoch(pairs, settings.batchSize(), e, fresh)) {
                    if (b.step() >= step) {
                        return;
                    }
                    objective.warm(b);
                }
            }
        }

        /**
         * Steps this run takes in all (a resumed run has taken some of them before).
         *
         * @return the number of optimiser steps of the whole run
         */
        public long totalSteps() {
            return total;
        }

        /**
         * Steps taken so far.
         *
         * @return the optimiser steps done (resumed ones included)
         */
        public long step() {
            return step;
        }

        /**
         * The number of directions.
         *
         * @return r
         */
        public int rank() {
            return rank;
        }

        /**
         * Whether steps are left.
         *
         * @return true until the last step is applied
         */
        public boolean hasNext() {
            return step < total;
        }

        /**
         * The next step's minibatch; call {@link #apply} with the result on it before asking again.
         *
         * @return the minibatch of the next step (the same until it is applied)
         */
        public Batch next() {
            synchronized (stateLock) {
                return nextLocked();
            }
        }

        private Batch nextLocked() {
            if (pending != null) {
                return pending;
            }
            if (!hasNext()) {
                throw new IllegalStateException("the run has taken all its steps");
            }
            int e = (int) (step / perEpoch);
            if (e != epoch) {
                epoch = e;
                epochState = rng.state();
                batches = Batches.epoch(pairs, settings.batchSize(), epoch, rng);
            }
            pending = batches.get((int) (step - (long) epoch * perEpoch));
            return pending;
        }

        /**
         * A copy of the current parameters, for the objective (which must not keep it).
         *
         * @return the directions (rank x d) or the objective's parameters
         */
        public float[] directions() {
            return w.clone();
        }

        /**
         * Takes the step with the objective's loss and gradient at {@link #directions} on {@link #next}'s batch.
         *
         * @param r the objective's loss and gradient
         * @throws dev.cdas.NonFiniteException when the loss or gradient is not finite
         * @throws IOException when a checkpoint cannot be written
         */
        public void apply(Objective.Result r) throws IOException {
            synchronized (stateLock) {
                applyLocked(r);
            }
        }

        private void applyLocked(Objective.Result r) throws IOException {
            Batch batch = nextLocked();
            float[] grad = checked(r, w.length, batch);
            double gradNorm = GradientClipping.clipGlobalNorm(grad, settings.maxGradNorm());
            double lr = schedule.lr(step);
            adam.step(w, grad, lr);
            objective.afterStep(w, rank);
            log.add(new LossLog.Entry(step, epoch, r.loss(), gradNorm, lr, r.tokens()));
            step++;
            pending = null;
            tokensThisRun += r.tokens();
            ProgressListener bar = outputs.progress();
            if (bar != null) {
                double secs = (System.nanoTime() - startNanos) / 1e9;
                bar.progress("train", step, total, String.format(Locale.ROOT, "loss %.4f  %.0f tok/s", r.loss(),
                        secs > 0 ? tokensThisRun / secs : 0.0));
            }
            if (outputs.checkpoint() != null && settings.checkpointEvery() > 0
                    && step % settings.checkpointEvery() == 0 && step < total) {
                writeCheckpoint();
                if (group != null) {
                    group.barrier();
                }
            }
        }

        /** Ends the progress task (idempotent). */
        @Override
        public void close() {
            synchronized (stateLock) {
                if (closed) {
                    return;
                }
                closed = true;
            }
            if (onExit != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(onExit);
                } catch (IllegalStateException shuttingDown) {
                    // the JVM is exiting; the hook finds the session closed and does nothing
                }
            }
            if (outputs.progress() != null) {
                outputs.progress().finished("train");
            }
        }

        /**
         * After the last step: writes the loss curve where the outputs name one (rank 0 only under data
         * parallel), returns the run.
         *
         * @return the trained run
         * @throws IOException when the loss curve cannot be written
         */
        public Run finish() throws IOException {
            if (hasNext()) {
                throw new IllegalStateException("the run has " + (total - step) + " steps left");
            }
            close();
            if (outputs.lossCsv() != null && writesCheckpoints) {
                log.writeCsv(outputs.lossCsv());
            }
            if (outputs.lossPng() != null && writesCheckpoints) {
                log.writePng(outputs.lossPng(), "training loss", perEpoch);
            }
            return new Run(w, rank, dim, log, step, resumed, firstStep);
        }
    }

    private static float[] checked(Objective.Result r, int size, Batch batch) {
        if (r == null || r.gradient() == null || r.gradient().length != size) {
            throw new IllegalStateException("objective returned a gradient of size "
                    + (r == null || r.gradient() == null ? "none" : r.gradient().length) + ", expected " + size);
        }
        if (!Double.isFinite(r.loss())) {
            throw new NonFiniteException("loss is " + r.loss() + " at " + batch);
        }
        float[] g = r.gradient().clone();
        for (float x : g) {
            if (!Float.isFinite(x)) {
                throw new NonFiniteException("non-finite gradient at " + batch);
            }
        }
        return g;
    }

    /**
     * The checkpoint metadata key of the device kind and dtype the run computed in
     * ({@link Objective#compute}): resuming where the arithmetic differs is refused.
     */
    public static final String COMPUTE = "compute";

    /**
     * The settings (all but the checkpoint interval), the dimension and a fingerprint of the data:
     * what a checkpoint must match to be resumed.
     */
    private Map<String, String> identity(List<ConceptPair> pairs, int dim) {
        Map<String, String> id = new LinkedHashMap<>(settings.toMetadata());
        id.put("dimension", Integer.toString(dim));
        id.put("pairs", Integer.toString(pairs.size()));
        id.put("data_sha256", fingerprint(pairs));
        // absent for CDAS/DAS, so their older checkpoints still resume
        objective.identity().forEach((k, v) -> id.put("objective_" + k, v));
        String compute = objective.compute();
        if (!compute.isEmpty()) {
            id.put(COMPUTE, compute);
        }
        return id;
    }

    private static Map<String, String> withoutCompute(Map<String, String> identity) {
        Map<String, String> m = new LinkedHashMap<>(identity);
        m.remove(COMPUTE);
        return m;
    }

    static String fingerprint(List<ConceptPair> pairs) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (ConceptPair p : pairs) {
                for (String s : new String[] {p.negativeInput(), p.negativeOutput(), p.positiveInput(), p.positiveOutput(),
                        p.concept(), Long.toString(p.conceptId())}) {
                    byte[] b = s.getBytes(StandardCharsets.UTF_8);
                    md.update(HexFormat.of().parseHex(String.format("%08x", b.length)));
                    md.update(b);
                }
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String describeDifference(Map<String, String> was, Map<String, String> now) {
        StringBuilder sb = new StringBuilder();
        for (var e : now.entrySet()) {
            String old = was.get(e.getKey());
            if (!e.getValue().equals(old)) {
                sb.append(sb.isEmpty() ? "" : ", ").append(e.getKey()).append(" ").append(old).append(" -> ").append(e.getValue());
            }
        }
        return sb.isEmpty() ? "different rank or dimension" : sb.toString();
    }
}
