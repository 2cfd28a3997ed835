package dev.cdas.train;

import dev.cdas.InvalidArgumentException;
import dev.cdas.Native;
import dev.cdas.NativeLibrary;
import dev.cdas.bindings.cdas_dist_options;
import dev.cdas.bindings.cdas_h;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A group of processes over torch's c10d (the {@code cdas_dist_*} functions of cdas.h): Gloo for
 * host buffers (CPU training), NCCL through a CUDA device. Creating one waits until every rank has
 * joined, through a c10d TCPStore at {@code MASTER_ADDR:MASTER_PORT} that rank 0 hosts, or that
 * torchrun's agent hosts ({@code TORCHELASTIC_USE_AGENT_STORE=True}). A failed rendezvous or
 * collective (timeout, lost connection) is a {@link dev.cdas.NativeIOException}; a library built
 * without the backend's headers answers {@link dev.cdas.UnsupportedFeatureException} saying what to
 * install. One thread at a time.
 */
public final class ProcessGroup implements Collective, AutoCloseable {
    /** The process-group backend. */
    public enum Backend {
        /** Gloo, on CPU tensors. */
        GLOO(0),
        /** NCCL, on CUDA tensors. */
        NCCL(1);

        private final int code;

        Backend(int code) {
            this.code = code;
        }
    }

    /**
     * Where and as whom to join.
     *
     * @param hostStore   whether this process starts the store's server (rank 0 by hand; not under torchrun)
     * @param localRank   this rank's index on its machine (LOCAL_RANK): its CUDA device
     * @param storePrefix the group's keys in the store
     * @param source      where these came from, for the first line a run prints
     * @param masterAddr the address of the rendezvous store
     * @param masterPort its port
     * @param rank this process's rank
     * @param worldSize the number of ranks
     */
    public record Launch(String masterAddr, int masterPort, int rank, int worldSize, boolean hostStore, int localRank,
            String storePrefix, String source) {
        /**
         * Checks the ranks, port and sizes.
         *
         * @throws dev.cdas.InvalidArgumentException when one is out of range
         */
        public Launch {
            if (masterAddr == null || masterAddr.isBlank()) {
                throw new InvalidArgumentException("the store address (MASTER_ADDR) is empty");
            }
            if (masterPort < 1 || masterPort > 65535) {
                throw new InvalidArgumentException("the store port (MASTER_PORT) must be in 1..65535, got " + masterPort);
            }
            if (worldSize < 1) {
                throw new InvalidArgumentException("the world size (WORLD_SIZE) must be >= 1, got " + worldSize);
            }
            if (rank < 0 || rank >= worldSize) {
                throw new InvalidArgumentException("RANK " + rank + " is outside 0.." + (worldSize - 1) + " (WORLD_SIZE " + worldSize + ")");
            }
            if (localRank < 0) {
                throw new InvalidArgumentException("LOCAL_RANK must be >= 0, got " + localRank);
            }
        }

        /** Variables torchrun sets (and what a launch by hand needs: the first four). */
        public static final List<String> VARIABLES = List.of("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE");

        /**
         * The launch described by a launcher's environment: {@code MASTER_ADDR}, {@code MASTER_PORT},
         * {@code RANK}, {@code WORLD_SIZE} (all required), {@code LOCAL_RANK} (default 0), and from
         * torchrun {@code TORCHELASTIC_USE_AGENT_STORE} (True: its agent hosts the store, so no rank
         * does) and {@code TORCHELASTIC_RESTART_COUNT} (keys of each restart apart).
         *
         * @param env the environment variables
         * @return the launch
         */
        public static Launch fromEnvironment(Map<String, String> env) {
            List<String> missing = new ArrayList<>();
            for (String v : VARIABLES) {
                if (env.get(v) == null || env.get(v).isBlank()) {
                    missing.add(v);
                }
            }
            if (!missing.isEmpty()) {
                throw new InvalidArgumentException("--distributed needs " + String.join(", ", VARIABLES)
                        + " in the environment (torchrun sets them; by hand, set them for every rank); missing: "
                        + String.join(", ", missing));
            }
            int port = integer(env, "MASTER_PORT");
            int rank = integer(env, "RANK");
            int world = integer(env, "WORLD_SIZE");
            int localRank = env.get("LOCAL_RANK") == null ? 0 : integer(env, "LOCAL_RANK");
            boolean agentStore = "True".equals(env.get("TORCHELASTIC_USE_AGENT_STORE"));
            String restart = env.getOrDefault("TORCHELASTIC_RESTART_COUNT", "0").trim();
            boolean torchrun = env.containsKey("TORCHELASTIC_RUN_ID") || env.containsKey("TORCHELASTIC_USE_AGENT_STORE");
            String addr = env.get("MASTER_ADDR").trim();
            String source = (torchrun ? "torchrun" : "environment") + ": RANK=" + rank + ", WORLD_SIZE=" + world
                    + ", store " + addr + ":" + port + (agentStore ? " (torchrun's)" : rank == 0 ? " (hosted here)" : "");
            return new Launch(addr, port, rank, world, !agentStore && rank == 0, localRank,
                    "cdas/attempt_" + (restart.matches("[0-9]{1,9}") ? restart : "0"), source);
        }

        private static int integer(Map<String, String> env, String name) {
            String v = env.get(name).trim();
            try {
                return Integer.parseInt(v);
            } catch (NumberFormatException e) {
                throw new InvalidArgumentException(name + " must be an integer, got \"" + v + "\"");
            }
        }
    }

    private final Arena arena;
    private final MemorySegment handle;
    private final int rank;
    private final int worldSize;
    private final Backend backend;
    private final AtomicBoolean closed = new AtomicBoolean();

    private ProcessGroup(Arena arena, MemorySegment handle, int rank, int worldSize, Backend backend) {
        this.arena = arena;
        this.handle = handle;
        this.rank = rank;
        this.worldSize = worldSize;
        this.backend = backend;
    }

    /**
     * Joins the group described by {@code launch}: returns once every rank has joined.
     *
     * @param deviceIndex the CUDA device whose memory NCCL stages through (ignored for Gloo)
     * @param timeout     bound of the rendezvous and of every collective
     * @param launch the rendezvous and this rank
     * @param backend Gloo or NCCL
     * @return the joined group
     */
    public static ProcessGroup join(Launch launch, Backend backend, int deviceIndex, Duration timeout) {
        if (timeout == null || timeout.isNegative() || timeout.isZero()) {
            throw new InvalidArgumentException("the process-group timeout must be positive, got " + timeout);
        }
        NativeLibrary.load();
        Arena owner = Arena.ofShared();
        try {
            MemorySegment options = cdas_dist_options.allocate(owner);
            cdas_dist_options.master_addr(options, owner.allocateFrom(launch.masterAddr()));
            cdas_dist_options.master_port(options, launch.masterPort());
            cdas_dist_options.rank(options, launch.rank());
            cdas_dist_options.world_size(options, launch.worldSize());
            cdas_dist_options.host_store(options, launch.hostStore() ? 1 : 0);
            cdas_dist_options.backend(options, backend.code);
            cdas_dist_options.device_index(options, deviceIndex);
            cdas_dist_options.timeout_ms(options, timeout.toMillis());
            cdas_dist_options.store_prefix(options, owner.allocateFrom(launch.storePrefix()));
            MemorySegment out = owner.allocate(ValueLayout.ADDRESS);
            Native.check(cdas_h.cdas_dist_create(options, out));
            MemorySegment raw = out.get(ValueLayout.ADDRESS, 0);
            MemorySegment handle = raw.reinterpret(owner, ProcessGroup::destroy);
            return new ProcessGroup(owner, handle, launch.rank(), launch.worldSize(), backend);
        } catch (RuntimeException | Error e) {
            owner.close();
            throw e;
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int worldSize() {
        return worldSize;
    }

    /** {@return the backend} */
    public Backend backend() {
        return backend;
    }

    @Override
    public void allReduceSum(float[] data) {
        if (data.length == 0) {
            throw new InvalidArgumentException("all-reduce of an empty buffer");
        }
        try (Arena local = Arena.ofConfined()) {
            MemorySegment buf = local.allocateFrom(ValueLayout.JAVA_FLOAT, data);
            Native.check(cdas_h.cdas_dist_all_reduce_sum(handle(), buf, data.length));
            MemorySegment.copy(buf, ValueLayout.JAVA_FLOAT, 0, data, 0, data.length);
        }
    }

    @Override
    public void barrier() {
        Native.check(cdas_h.cdas_dist_barrier(handle()));
    }

    private MemorySegment handle() {
        if (closed.get()) {
            throw new IllegalStateException("the process group is closed");
        }
        return handle;
    }

    /** Leaves the group (without waiting for the others); later calls are no-ops. */
    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            Native.closeWhenIdle(arena);
        }
    }

    private static void destroy(MemorySegment raw) {
        int status = cdas_h.cdas_dist_destroy(raw);
        if (status != cdas_h.CDAS_STATUS_OK()) {
            System.getLogger(ProcessGroup.class.getName()).log(System.Logger.Level.WARNING,
                    "cdas_dist_destroy failed ({0}): {1}", status, Native.lastError());
        }
    }
}
