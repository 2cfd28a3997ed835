package dev.cdas;

import dev.cdas.bindings.cdas_context_options;
import dev.cdas.bindings.cdas_h;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Where kernels run (CPU or one CUDA device) and the scratch memory they reuse between calls.
 * The native handle belongs to a shared arena: {@link #close()} destroys it exactly once, and a
 * kernel call in flight on another thread keeps it alive until the call returns.
 */
public final class Context implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(Context.class.getName());

    private final Arena arena;
    private final MemorySegment handle;
    private final Device device;
    private final int deviceIndex;
    private final int threads;
    private final int chunkRows;
    private final JsdSchedule jsdSchedule;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Context(Builder b) {
        NativeLibrary.load();
        Arena owner = Arena.ofShared();
        try {
            MemorySegment options = cdas_context_options.allocate(owner);
            Native.check(cdas_h.cdas_context_options_default(options));
            if (b.device != null) {
                cdas_context_options.device_type(options, b.device.code());
            }
            if (b.deviceIndex != null) {
                cdas_context_options.device_index(options, b.deviceIndex);
            }
            if (b.threads != null) {
                cdas_context_options.num_threads(options, b.threads);
            }
            if (b.chunkRows != null) {
                cdas_context_options.chunk_rows(options, b.chunkRows);
            }
            if (b.jsdSchedule != null) {
                cdas_context_options.jsd_schedule(options, b.jsdSchedule.code());
            }
            if (b.checkInputs != null) {
                cdas_context_options.check_inputs(options, b.checkInputs ? 1 : 0);
            }
            MemorySegment out = owner.allocate(ValueLayout.ADDRESS);
            Native.check(cdas_h.cdas_context_create(options, out));
            MemorySegment raw = out.get(ValueLayout.ADDRESS, 0);
            this.handle = raw.reinterpret(owner, Context::destroy);
            this.device = b.device == null ? Device.CPU : b.device;
            this.deviceIndex = cdas_context_options.device_index(options);
            this.threads = cdas_context_options.num_threads(options);
            this.chunkRows = cdas_context_options.chunk_rows(options);
            this.jsdSchedule = scheduleOf(cdas_context_options.jsd_schedule(options));
            this.arena = owner;
        } catch (RuntimeException | Error e) {
            owner.close();
            throw e;
        }
        LOG.log(System.Logger.Level.INFO, "cdas context on {0}: {1}", device, describeSettings());
    }

    /**
     * A CPU context with the library's defaults (all cores, automatic chunking).
     *
     * @return a new context; close it when done
     * @throws CdasException when libcdas cannot be loaded or the context cannot be created
     */
    public static Context cpu() {
        return builder().build();
    }

    /**
     * A builder for a context with settings other than the defaults.
     *
     * @return a builder holding no settings yet
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The native {@code cdas_context*}; valid until {@link #close()}.
     *
     * @return the native handle, to pass to {@code cdas_*} calls
     * @throws IllegalStateException when the context is closed
     */
    public MemorySegment handle() {
        if (closed.get()) {
            throw new IllegalStateException("cdas Context is closed; create a new one");
        }
        return handle;
    }

    /**
     * Where this context's kernels run.
     *
     * @return CPU or CUDA
     */
    public Device device() {
        return device;
    }

    /**
     * Whether {@link #close()} has been called.
     *
     * @return true once closed
     */
    public boolean isClosed() {
        return closed.get();
    }

    /**
     * High-water mark, in bytes, of the scratch memory this context has held.
     *
     * @return the largest workspace, in bytes, held since the context was created
     * @throws IllegalStateException when the context is closed
     */
    public long peakWorkspaceBytes() {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment bytes = local.allocate(ValueLayout.JAVA_LONG);
            Native.check(cdas_h.cdas_context_peak_workspace_bytes(handle(), bytes));
            return bytes.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** Waits for all queued work (a no-op on CPU). */
    public void synchronize() {
        Native.check(cdas_h.cdas_context_synchronize(handle()));
    }

    /**
     * Destroys the native context; later calls are no-ops. Safe while another thread is inside a
     * call on this context: new calls are refused ({@link #handle()}) and the close waits for the
     * calls in flight to return (docs/concurrency.md).
     */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Native.closeWhenIdle(arena);
        }
    }

    @Override
    public String toString() {
        return "Context[" + device + ", " + describeSettings() + (closed.get() ? ", closed" : "") + "]";
    }

    private String describeSettings() {
        return (device == Device.CUDA ? "device " + deviceIndex + ", " : "")
                + "threads " + (threads == 0 ? "all" : threads)
                + ", chunk rows " + (chunkRows == 0 ? "auto" : chunkRows)
                + ", JSD schedule " + jsdSchedule;
    }

    private static void destroy(MemorySegment raw) {
        int status = cdas_h.cdas_context_destroy(raw);
        if (status != cdas_h.CDAS_STATUS_OK()) {
            // A cleanup action cannot usefully throw: the arena is closing either way.
            LOG.log(System.Logger.Level.WARNING, "cdas_context_destroy failed ({0}): {1}",
                    Status.of(status), Native.lastError());
        }
    }

    private static JsdSchedule scheduleOf(int code) {
        for (JsdSchedule s : JsdSchedule.values()) {
            if (s.code() == code) {
                return s;
            }
        }
        throw new InternalException("cdas_context_options_default gave unknown JSD schedule " + code);
    }

    /** Settings left unset keep the defaults of {@code cdas_context_options_default}. */
    public static final class Builder {
        private Device device;
        private Integer deviceIndex;
        private Integer threads;
        private Integer chunkRows;
        private JsdSchedule jsdSchedule;
        private Boolean checkInputs;

        private Builder() {
        }

        /**
         * Where the kernels run; CPU when not set.
         *
         * @param device CPU or CUDA
         * @return this builder
         * @throws InvalidArgumentException when {@code device} is null
         */
        public Builder device(Device device) {
            this.device = Args.notNull("device", device);
            return this;
        }

        /**
         * CUDA ordinal; 0 for CPU.
         *
         * @param index the CUDA device ordinal, 0 or more
         * @return this builder
         * @throws InvalidArgumentException when {@code index} is negative
         */
        public Builder deviceIndex(int index) {
            this.deviceIndex = Args.nonNegative("deviceIndex", index);
            return this;
        }

        /**
         * CPU worker threads; 0 = all available cores.
         *
         * @param threads the number of threads, 0 to {@link Args#maxThreads()}
         * @return this builder
         * @throws InvalidArgumentException when {@code threads} is outside that range
         */
        public Builder threads(int threads) {
            this.threads = Args.threads("threads", threads);
            return this;
        }

        /**
         * Token rows per LM-head chunk; 0 = automatic.
         *
         * @param rows the rows per chunk, 0 or more
         * @return this builder
         * @throws InvalidArgumentException when {@code rows} is negative
         */
        public Builder chunkRows(int rows) {
            this.chunkRows = Args.nonNegative("chunkRows", rows);
            return this;
        }

        /**
         * How the LM-head JSD walks the logits; {@link JsdSchedule#AUTO} when not set.
         *
         * @param schedule the schedule
         * @return this builder
         * @throws InvalidArgumentException when {@code schedule} is null
         */
        public Builder jsdSchedule(JsdSchedule schedule) {
            this.jsdSchedule = Args.notNull("jsdSchedule", schedule);
            return this;
        }

        /**
         * CUDA: scan every input for NaN/infinity before each call ({@link NonFiniteException}),
         * at the cost of one host synchronisation per call. Off by default on CUDA (non-finite
         * inputs then give non-finite outputs); CPU contexts always check.
         * @param check true to scan the inputs
         * @return this builder
         */
        public Builder checkInputs(boolean check) {
            this.checkInputs = check;
            return this;
        }

        /**
         * Creates the native context with these settings.
         *
         * @return a new context; close it when done
         * @throws CdasException when libcdas cannot be loaded, or the settings are refused (a CUDA device
         *         that does not exist, CUDA without CUDA support: {@link UnsupportedFeatureException})
         */
        public Context build() {
            return new Context(this);
        }
    }
}
