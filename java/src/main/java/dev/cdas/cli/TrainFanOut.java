package dev.cdas.cli;

import dev.cdas.InvalidArgumentException;
import dev.cdas.data.ConceptPair;
import dev.cdas.data.PairReader;
import dev.cdas.fanout.Concept;
import dev.cdas.fanout.ConceptFanOut;
import dev.cdas.fanout.ConceptSelection;
import dev.cdas.fanout.ManifestEntry;
import dev.cdas.fanout.Shard;
import dev.cdas.model.Model;
import dev.cdas.model.ModelFolder;
import dev.cdas.model.RuntimeOptions;
import dev.cdas.train.CdasObjective;
import dev.cdas.train.ConceptPack;
import dev.cdas.train.DiffMean;
import dev.cdas.train.LogProbObjective;
import dev.cdas.train.ModelLogProbScorer;
import dev.cdas.train.ModelSteeringFactors;
import dev.cdas.train.SteeringMethod;
import dev.cdas.train.TrainJob;
import dev.cdas.train.Trainer;
import dev.cdas.train.TrainingSettings;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** {@code train --concepts SEL --out-dir DIR}: the concept fan-out of {@link ConceptFanOut}, one shard per process. */
final class TrainFanOut {
    private TrainFanOut() {}

    record Options(Path model, Path data, int layer, SteeringMethod method, TrainingSettings settings, String concepts,
            Path outDir, String shard, Integer shards, long stateCacheBytes, ModelOptions runtime, Map<String, String> env,
            int pack, int packPadding) {
        /** Without packing. */
        Options(Path model, Path data, int layer, SteeringMethod method, TrainingSettings settings, String concepts, Path outDir,
                String shard, Integer shards, long stateCacheBytes, ModelOptions runtime, Map<String, String> env) {
            this(model, data, layer, method, settings, concepts, outDir, shard, shards, stateCacheBytes, runtime, env, 1, 0);
        }
    }

    /** A concept's line on stdout: ok (or skipped, finished before) with its file and final loss, or failed with the error. */
    static String resultLine(ManifestEntry e, boolean skipped) {
        if (!e.ok()) {
            return String.format(Locale.ROOT, "failed  %d %s: %s", e.conceptId(), e.concept(), e.error());
        }
        return String.format(Locale.ROOT, "%-7s %d %s: %s%s%s", skipped ? "skipped" : "ok", e.conceptId(), e.concept(), e.file(),
                e.finalLoss() == null ? "" : String.format(Locale.ROOT, ", final loss %.5f", e.finalLoss()),
                skipped ? " (finished before)" : String.format(Locale.ROOT, ", %.1f s", e.seconds())
                        + (e.resumedFromStep() == null ? "" : ", continued from the checkpoint of step " + e.resumedFromStep()));
    }

    /** What an interrupted run says on its way out: what is kept, and that the same command continues. */
    static String interruptedLine(int recorded, int toTrain, Path manifest) {
        return String.format(Locale.ROOT, "interrupted: %d of the %d concepts this run was to train finished and are recorded in"
                + " %s; the same command trains the other %d (finished concepts are skipped; one stopped in training continues"
                + " from the last step it finished)", recorded, toTrain, manifest, toTrain - recorded);
    }

    static int run(Options o, PrintStream out, PrintStream err) throws IOException {
        ConceptSelection selection;
        try {
            selection = ConceptSelection.parse(o.concepts());
        } catch (InvalidArgumentException e) {
            throw new InvalidArgumentException("--concepts: " + e.getMessage(), e);
        }
        Shard shard = Shard.resolve(o.shard(), o.shards(), o.env());
        try (ModelFolder folder = ModelFolder.open(o.model())) {
            CliSupport.checkLayer(o.layer(), folder);
            List<ConceptPair> pairs = PairReader.read(o.data());
            List<Concept> all = Concept.group(pairs, o.data());
            List<Concept> selected;
            try {
                selected = selection.select(all, o.data());
            } catch (InvalidArgumentException e) {
                throw new InvalidArgumentException("--concepts: " + e.getMessage(), e);
            }
            ConceptFanOut.Plan plan = new ConceptFanOut.Plan(o.data(), ConceptFanOut.sha256(o.data()), selected, shard,
                    o.settings(), o.layer(), o.model().getFileName().toString(), o.method().id(), runtime(o.runtime(), folder), o.outDir());
            List<Concept> mine = plan.mine();
            List<Concept> pending = ConceptFanOut.pending(plan);
            out.printf(Locale.ROOT, "shard %s (%s): %d of %d concepts, %d of %d pairs; %d to train, %d finished before%n", shard,
                    shard.source(), mine.size(), selected.size(), mine.stream().mapToInt(c -> c.pairs().size()).sum(),
                    selected.stream().mapToInt(c -> c.pairs().size()).sum(), pending.size(), mine.size() - pending.size());
            if (!pending.isEmpty()) {
                TrainingSettings s = o.settings();
                if (o.method().optimised()) {
                    out.printf(Locale.ROOT, "%s at layer %d: %d epochs, batch %d, lr %s, rank %d, run seed %d (each concept's seed "
                            + "mixes it with the concept id), responses cut to %d tokens%s%n", o.method().id(), o.layer(), s.epochs(),
                            s.batchSize(), s.lr(), s.rank(), s.seed(), s.maxResponseTokens(),
                            o.pack() > 1 ? String.format(Locale.ROOT, "; %d concepts packed per step", o.pack()) : "");
                } else {
                    out.printf(Locale.ROOT, "diffmean at layer %d, responses cut to %d tokens%n", o.layer(), s.maxResponseTokens());
                }
            }
            ConceptFanOut.Outcome outcome;
            boolean streamed;
            try (LazyModel model = new LazyModel(o.runtime(), folder)) {
                if (!pending.isEmpty()) {
                    model.get(); // a model that does not load is the run's error, not each concept's
                }
                ConsoleProgress progress = pending.isEmpty() ? null : new ConsoleProgress(err);
                // Each concept's line as it is recorded (a long run's log shows them as they come), unless
                // a progress bar is being redrawn on the same terminal: then all of them at the end.
                streamed = progress != null && !progress.drawsBars();
                java.util.concurrent.atomic.AtomicInteger recordedNow = new java.util.concurrent.atomic.AtomicInteger();
                java.util.function.Consumer<ManifestEntry> recorded = e -> {
                    recordedNow.incrementAndGet();
                    if (streamed) {
                        out.println(resultLine(e, false));
                    }
                };
                // SIGTERM (Slurm's time limit or preemption, a Kubernetes eviction) or Ctrl-C: say what is kept.
                Thread interrupted = new Thread(() -> err.println(interruptedLine(recordedNow.get(), pending.size(),
                        o.outDir().resolve(dev.cdas.fanout.Manifest.FILE))), "cdas-fanout-interrupted");
                Runtime.getRuntime().addShutdownHook(interrupted);
                try {
                    outcome = o.pack() > 1 ? ConceptFanOut.runPacked(plan, packFitter(o, folder, model), progress, recorded)
                            : ConceptFanOut.run(plan, fitter(o, folder, model), progress, recorded);
                } finally {
                    try {
                        Runtime.getRuntime().removeShutdownHook(interrupted);
                    } catch (IllegalStateException shuttingDown) {
                        // the JVM is exiting: the hook says what is kept
                    }
                }
            }
            List<String> failed = new ArrayList<>();
            for (ManifestEntry e : outcome.entries()) {
                boolean skipped = outcome.skipped().contains(e.conceptId());
                if (skipped || !streamed) {
                    out.println(resultLine(e, skipped));
                }
                if (!e.ok()) {
                    failed.add(e.conceptId() + " (" + e.concept() + ")");
                }
            }
            out.println("wrote " + o.outDir().resolve(dev.cdas.fanout.Manifest.FILE));
            if (!failed.isEmpty()) {
                err.println("error: " + failed.size() + " of " + mine.size() + " concepts of shard " + shard + " failed: "
                        + String.join(", ", failed) + " (see " + o.outDir().resolve(dev.cdas.fanout.Manifest.FILE)
                        + "; a rerun retries them)");
                return CliSupport.INCOMPLETE;
            }
            return 0;
        }
    }

    /**
     * The device kind and compute dtype: vectors made on another kind or dtype differ, the device
     * index does not matter. The dtype as the model will compute in it: without --dtype that depends
     * on the CPU (Model.defaultDtype), so shards on different machines record what they did.
     */
    private static String runtime(ModelOptions runtime, ModelFolder folder) {
        RuntimeOptions opts = runtime.options();
        return Model.computeKind(opts.device(), Model.computeDtype(folder.weights(), opts));
    }

    /** The model, loaded at the first concept that needs it (a rerun with nothing left to train loads none). */
    private static final class LazyModel implements AutoCloseable {
        private final ModelOptions runtime;
        private final ModelFolder folder;
        private Model model;

        LazyModel(ModelOptions runtime, ModelFolder folder) {
            this.runtime = runtime;
            this.folder = folder;
        }

        Model get() throws IOException {
            if (model == null) {
                model = runtime.create(folder);
            }
            return model;
        }

        @Override
        public void close() {
            if (model != null) {
                model.close();
            }
        }
    }

    /** One concept of a pack: its job, objective, session and when it joined. */
    private record PackMember(ConceptFanOut.Job job, CdasObjective objective, Trainer.Session session, long startNanos)
            implements ConceptPack.Member {
        double seconds() {
            return (System.nanoTime() - startNanos) / 1e9;
        }
    }

    /** --pack K: the concepts trained K at a time by {@link ConceptPack}; each concept's cache gets 1/K of the bound. */
    private static ConceptFanOut.PackFitter packFitter(Options o, ModelFolder folder, LazyModel lazy) {
        SteeringMethod sm = o.method();
        return (jobs, done, progress) -> {
            if (jobs.isEmpty()) {
                return;
            }
            Model m = lazy.get();
            ModelSteeringFactors factors = new ModelSteeringFactors(m, folder.prompts(), o.layer());
            long totalSteps = 0;
            for (ConceptFanOut.Job job : jobs) {
                totalSteps += job.spec().settings().totalSteps(job.concept().pairs().size());
            }
            Iterator<ConceptFanOut.Job> queue = jobs.iterator();
            ConceptPack.run(o.pack(), o.packPadding(), new ConceptPack.Source<PackMember>() {
                @Override
                public PackMember next() throws IOException {
                    while (queue.hasNext()) {
                        ConceptFanOut.Job job = queue.next();
                        long t0 = System.nanoTime();
                        try {
                            CdasObjective objective = new CdasObjective(m, folder.prompts(), o.layer(),
                                    job.spec().settings().maxResponseTokens(), sm.objectiveLoss(), o.stateCacheBytes() / o.pack());
                            // the spec's checkpoint: written if the run is stopped, resumed from by the next
                            Trainer.Session session = new Trainer(objective, job.spec().settings()).start(job.concept().pairs(),
                                    new Trainer.Outputs(job.spec().checkpoint(), null, null, null), job.spec().resume());
                            return new PackMember(job, objective, session, t0);
                        } catch (RuntimeException e) {
                            done.accept(job, null, e, (System.nanoTime() - t0) / 1e9);
                        }
                    }
                    return null;
                }

                @Override
                public void finished(PackMember member) throws IOException {
                    ConceptFanOut.Job job = member.job();
                    TrainJob.Result result;
                    try {
                        result = TrainJob.finish(job.spec(), job.concept().pairs(), job.concept().name(), member.session().finish(),
                                factors);
                    } catch (Exception e) {
                        done.accept(job, null, e, member.seconds());
                        return;
                    }
                    done.accept(job, result, null, member.seconds());
                }

                @Override
                public void failed(PackMember member, Exception error) throws IOException {
                    done.accept(member.job(), null, error, member.seconds());
                }
            }, totalSteps, progress);
        };
    }

    private static ConceptFanOut.Fitter fitter(Options o, ModelFolder folder, LazyModel lazy) {
        SteeringMethod sm = o.method();
        return (spec, c, progress) -> {
            Model m = lazy.get();
            if (!sm.optimised()) {
                return TrainJob.run(spec, c.pairs(), c.name(),
                        new DiffMean(m, folder.prompts(), o.layer(), spec.settings().maxResponseTokens()), progress);
            }
            if (sm.logProbTrained()) {
                // the paper constants at their defaults (the per-concept seed comes with the spec's settings)
                int pad = folder.prompts().tokenizer().padTokenId().orElse(0);
                LogProbObjective objective = new LogProbObjective(sm, new ModelLogProbScorer(m, o.layer(), pad,
                        TrainCommand.SEQUENCES_PER_CALL), folder.prompts(), spec.settings().maxResponseTokens(),
                        spec.settings().seed(), LogProbObjective.DEFAULT_REPS_FACTORS, LogProbObjective.DEFAULT_BIPO_BETA);
                return TrainJob.run(spec, c.pairs(), c.name(), objective, progress);
            }
            CdasObjective objective = new CdasObjective(m, folder.prompts(), o.layer(), spec.settings().maxResponseTokens(),
                    sm.objectiveLoss(), o.stateCacheBytes());
            return TrainJob.run(spec, c.pairs(), c.name(), objective, new ModelSteeringFactors(m, folder.prompts(), o.layer()),
                    progress);
        };
    }
}
