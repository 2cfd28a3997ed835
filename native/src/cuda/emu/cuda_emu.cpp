/*
 * The CPU side of the cdas CUDA emulation (cuda_emu.h): fibers and their scheduler, barriers
 * and warp collectives, shared memory, emulated device memory with guard pages and red zones,
 * the runtime API, WMMA and the cuBLAS stand-in.
 *
 * Threads of a block are fibers on the calling host thread. A fiber runs until it reaches a
 * synchronisation point (barrier, warp collective) or exits; the scheduler then resumes the
 * others, in a seeded shuffled order, so code that needs a barrier it does not have reads
 * poisoned (0xff = NaN) or stale shared memory instead of the value it expected.
 */
#include "cuda_emu.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "include/cublas_v2.h"
#include "include/mma.h"

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cdas_emu {

ThreadState* g_current = nullptr;

namespace {

constexpr size_t kStaticSharedLimit = 48 * 1024;        // without opt-in, static + dynamic
constexpr size_t kOptinSharedLimit = 227 * 1024;        // sharedMemPerBlockOptin of an H100/H200
constexpr size_t kSharedGuard = 128;                    // canary after the dynamic area
constexpr unsigned char kSharedPoison = 0xff;
constexpr unsigned char kDevicePoison = 0xff;
constexpr unsigned char kRedZone = 0xcd;
constexpr int kSmCount = 132;

std::recursive_mutex g_mutex;  // one emulated device
cudaError_t g_last_error = cudaSuccess;
cudaError_t g_sticky = cudaSuccess;
std::string g_fault;
unsigned long long g_launches = 0, g_threads = 0;
uint64_t g_seed = 0;
bool g_seed_set = false;

uint64_t splitmix(uint64_t& s) {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t seed() {
    if (!g_seed_set) {
        const char* env = std::getenv("CDAS_EMU_SEED");
        g_seed = env && *env ? std::strtoull(env, nullptr, 0) : 0x5eedull;
        g_seed_set = true;
    }
    return g_seed;
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
    char buf[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    return buf;
}

const char* base_name(const char* path) {
    const char* slash = path ? std::strrchr(path, '/') : nullptr;
    return slash ? slash + 1 : (path ? path : "?");
}

void report(const std::string& message) {
    g_fault = message;
    std::fprintf(stderr, "cuda-emu: %s\n", message.c_str());
    std::fflush(stderr);
}

// ---- device memory ------------------------------------------------------------------------------------

struct Allocation {
    char* map;          // mmap'd region: [guard page][front red zone][user][tail red zone][guard page]
    size_t map_bytes;
    char* user;
    size_t bytes;
    char* data_begin;   // after the front guard page
    char* data_end;     // start of the tail guard page
};
std::map<uintptr_t, Allocation> g_allocations;  // by user address
size_t g_page = 4096;

const Allocation* find_allocation(const void* p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    auto it = g_allocations.upper_bound(a);
    if (it == g_allocations.begin()) return nullptr;
    --it;
    const Allocation& al = it->second;
    if (a >= reinterpret_cast<uintptr_t>(al.user) && a < reinterpret_cast<uintptr_t>(al.user) + std::max<size_t>(al.bytes, 1))
        return &al;
    return nullptr;
}

// The allocation whose mapping (guard pages and red zones included) holds p.
const Allocation* find_mapping(const void* p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (const auto& kv : g_allocations) {
        const Allocation& al = kv.second;
        if (a >= reinterpret_cast<uintptr_t>(al.map) && a < reinterpret_cast<uintptr_t>(al.map) + al.map_bytes) return &al;
    }
    return nullptr;
}

std::string describe_address(const void* p) {
    const Allocation* al = find_mapping(p);
    if (al == nullptr) return format("address %p is not in any emulated device allocation", p);
    intptr_t off = reinterpret_cast<const char*>(p) - al->user;
    if (off < 0) return format("%lld bytes before the start of a %zu-byte device allocation", -(long long)off, al->bytes);
    if (static_cast<size_t>(off) >= al->bytes)
        return format("%lld bytes past the end of a %zu-byte device allocation",
                      (long long)(off - static_cast<intptr_t>(al->bytes)) + 1, al->bytes);
    return format("offset %lld of a %zu-byte device allocation", (long long)off, al->bytes);
}

// Red zones intact? Returns a description of the first damage, or "".
std::string check_red_zones() {
    for (const auto& kv : g_allocations) {
        const Allocation& al = kv.second;
        for (const char* q = al.data_begin; q < al.user; ++q)
            if (static_cast<unsigned char>(*q) != kRedZone)
                return format("a write %lld bytes before the start of a %zu-byte device allocation",
                              (long long)(al.user - q), al.bytes);
        for (const char* q = al.user + al.bytes; q < al.data_end; ++q)
            if (static_cast<unsigned char>(*q) != kRedZone)
                return format("a write %lld bytes past the end of a %zu-byte device allocation",
                              (long long)(q - (al.user + al.bytes)) + 1, al.bytes);
    }
    return "";
}

void restore_red_zones() {
    for (const auto& kv : g_allocations) {
        const Allocation& al = kv.second;
        std::memset(al.data_begin, kRedZone, al.user - al.data_begin);
        std::memset(al.user + al.bytes, kRedZone, al.data_end - (al.user + al.bytes));
    }
}

// [p, p + bytes) inside one device allocation?
bool device_range(const void* p, size_t bytes, std::string* why) {
    const Allocation* al = find_allocation(p);
    if (al == nullptr) {
        if (why) *why = describe_address(p);
        return false;
    }
    size_t off = static_cast<size_t>(static_cast<const char*>(p) - al->user);
    if (off + bytes > al->bytes) {
        if (why)
            *why = format("%zu bytes at offset %zu run %zu bytes past the end of a %zu-byte device allocation", bytes,
                          off, off + bytes - al->bytes, al->bytes);
        return false;
    }
    return true;
}

// ---- fibers -------------------------------------------------------------------------------------------

enum class FiberState { Ready, WaitBarrier, WaitWarp, Done, Failed };

struct Fiber {
    ThreadState ts;
    void* sp = nullptr;
#if !defined(__x86_64__)
    ucontext_t uc;
#endif
    FiberState state = FiberState::Ready;
    int linear = 0, lane = 0, warp = 0;
    const char* wait_what = nullptr;
    const char* wait_file = nullptr;
    int wait_line = 0;
};

struct Stack {
    char* map = nullptr;
    size_t bytes = 0;  // usable, above the guard page
};

size_t stack_bytes() {
    static size_t bytes = [] {
        const char* env = std::getenv("CDAS_EMU_STACK_KB");
        size_t kb = env && *env ? std::strtoull(env, nullptr, 10) : 256;
        return std::max<size_t>(kb, 32) * 1024;
    }();
    return bytes;
}

std::vector<Stack> g_stacks;

char* stack_top(int i) {
    while (static_cast<int>(g_stacks.size()) <= i) {
        Stack s;
        s.bytes = stack_bytes();
        void* m = mmap(nullptr, s.bytes + g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            std::fprintf(stderr, "cuda-emu: cannot map a fiber stack\n");
            std::abort();
        }
        mprotect(m, g_page, PROT_NONE);  // overflow guard
        s.map = static_cast<char*>(m);
        g_stacks.push_back(s);
    }
    return g_stacks[i].map + g_page + g_stacks[i].bytes;
}

bool in_stack_guard(const void* p) {
    for (const Stack& s : g_stacks)
        if (p >= s.map && p < s.map + g_page) return true;
    return false;
}

}  // namespace
}  // namespace cdas_emu

#if defined(__x86_64__)
// void cdas_emu_switch(void** save_sp, void* to_sp): saves the callee-saved registers, MXCSR and
// the x87 control word on the current stack, stores the stack pointer, and resumes the other one.
extern "C" void cdas_emu_switch(void** save, void* to);
asm(R"(
    .text
    .p2align 4
    .type cdas_emu_switch,@function
cdas_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cdas_emu_switch, .-cdas_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");
#endif

namespace cdas_emu {
namespace {

struct WarpGroup {
    bool active = false;
    int kind = 0;
    unsigned mask = 0, arrived = 0;
    const char* what = nullptr;
    const char* file = nullptr;
    int line = 0;
    void* args[32] = {};
};

struct WarpState {
    unsigned exists = 0, exited = 0;
    std::vector<WarpGroup> groups;
};

struct SharedStatic {
    const void* site;
    size_t offset, bytes;
};

struct FunctionInfo {
    int max_dynamic = -1;  // cudaFuncAttributeMaxDynamicSharedMemorySize; -1 = not set
    size_t static_bytes = 0;
};
std::map<const void*, FunctionInfo> g_functions;

struct Block {
    const LaunchConfig* config = nullptr;
    void (*body)(void*) = nullptr;
    void* state = nullptr;
    Fiber* fibers = nullptr;
    int threads = 0, live = 0, exited = 0;
    // barrier
    int barrier_arrived = 0, barrier_reduce = 0, barrier_acc = 0, barrier_result = 0;
    const char* barrier_what = nullptr;
    const char* barrier_file = nullptr;
    int barrier_line = 0;
    std::vector<WarpState> warps;
    // shared memory
    char* shared = nullptr;
    size_t dynamic_bytes = 0, static_bytes = 0, shared_limit = 0;
    std::vector<SharedStatic> statics;
    bool failed = false;
    bool resource_failure = false;  // a launch error (too much shared memory), not a fault
    std::string message;
};

Block* g_block = nullptr;
Fiber* g_fiber = nullptr;
void* g_scheduler_sp = nullptr;
#if !defined(__x86_64__)
ucontext_t g_scheduler_uc;
#endif
std::vector<Fiber> g_fiber_pool;
std::vector<char> g_shared_arena;
volatile sig_atomic_t g_in_fiber = 0;
struct sigaction g_previous_segv, g_previous_bus;
bool g_handler_installed = false;

std::string where(const Fiber* f) {
    if (f == nullptr || g_block == nullptr) return "";
    const LaunchConfig& c = *g_block->config;
    return format("kernel %s (launched at %s:%d), block (%u,%u,%u), thread (%u,%u,%u)", c.name, base_name(c.file), c.line,
                  f->ts.block_idx.x, f->ts.block_idx.y, f->ts.block_idx.z, f->ts.thread_idx.x, f->ts.thread_idx.y,
                  f->ts.thread_idx.z);
}

void switch_to_scheduler(Fiber* f) {
#if defined(__x86_64__)
    cdas_emu_switch(&f->sp, g_scheduler_sp);
#else
    swapcontext(&f->uc, &g_scheduler_uc);
#endif
}

// Ends the running fiber's launch with a failure; never returns to the kernel.
[[noreturn]] void fail_fiber(const std::string& message, bool resource = false) {
    Fiber* f = g_fiber;
    if (!g_block->failed) {
        g_block->failed = true;
        g_block->resource_failure = resource;
        g_block->message = message + (f ? " [" + where(f) + "]" : "");
    }
    f->state = FiberState::Failed;
    switch_to_scheduler(f);
    std::abort();  // a failed fiber is never resumed
}

std::string lanes_text(unsigned mask) {
    std::string s;
    for (int l = 0; l < 32; ++l)
        if (mask & (1u << l)) s += (s.empty() ? "" : ",") + std::to_string(l);
    return "{" + s + "}";
}

void fiber_exit_checks(Fiber* f) {
    Block& b = *g_block;
    if (b.barrier_arrived > 0)
        fail_fiber(format("thread exited while %d thread(s) of the block wait at %s (%s:%d): a barrier reached by only part of the block",
                          b.barrier_arrived, b.barrier_what, base_name(b.barrier_file), b.barrier_line));
    for (const WarpGroup& g : b.warps[f->warp].groups)
        if (g.active && (g.mask & (1u << f->lane)))
            fail_fiber(format("lane %d exited while lanes %s of its warp wait for it at %s (%s:%d)", f->lane,
                              lanes_text(g.arrived).c_str(), g.what, base_name(g.file), g.line));
}

__attribute__((noinline)) void fiber_main() {
    Fiber* f = g_fiber;
    try {
        g_block->body(g_block->state);
    } catch (...) {
        fail_fiber("a C++ exception escaped the kernel");
    }
    f = g_fiber;
    Block& b = *g_block;
    f->state = FiberState::Done;
    --b.live;
    ++b.exited;
    b.warps[f->warp].exited |= 1u << f->lane;
    fiber_exit_checks(f);
    switch_to_scheduler(f);
    std::abort();
}

#if defined(__x86_64__)
extern "C" void cdas_emu_fiber_entry() { fiber_main(); }
#else
void fiber_entry_uc() { fiber_main(); }
#endif

void prepare_fiber(Fiber& f, int slot) {
    char* top = stack_top(slot);
#if defined(__x86_64__)
    uintptr_t t = reinterpret_cast<uintptr_t>(top) & ~uintptr_t(15);
    uint64_t* s = reinterpret_cast<uint64_t*>(t);
    s[-1] = 0;                                                         // fake return address of the entry
    s[-2] = reinterpret_cast<uint64_t>(&cdas_emu_fiber_entry);         // `ret` target
    for (int i = 3; i <= 8; ++i) s[-i] = 0;                            // rbp rbx r12 r13 r14 r15
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0" : "=m"(mxcsr));
    asm volatile("fnstcw %0" : "=m"(fpucw));
    uint64_t ctl = static_cast<uint64_t>(mxcsr) | (static_cast<uint64_t>(fpucw) << 32);
    s[-9] = ctl;
    f.sp = &s[-9];
#else
    getcontext(&f.uc);
    f.uc.uc_stack.ss_sp = top - stack_bytes();
    f.uc.uc_stack.ss_size = stack_bytes();
    f.uc.uc_link = nullptr;
    makecontext(&f.uc, fiber_entry_uc, 0);
#endif
}

void resume(Fiber* f) {
    g_fiber = f;
    g_current = &f->ts;
    g_in_fiber = 1;
#if defined(__x86_64__)
    cdas_emu_switch(&g_scheduler_sp, f->sp);
#else
    swapcontext(&g_scheduler_uc, &f->uc);
#endif
    g_in_fiber = 0;
    g_current = nullptr;
    g_fiber = nullptr;
}

void segv_handler(int sig, siginfo_t* info, void* uctx) {
    if (g_in_fiber && g_fiber != nullptr && g_block != nullptr) {
        g_in_fiber = 0;
        Fiber* f = g_fiber;
        const void* addr = info->si_addr;
        // A general-protection fault (an aligned vector instruction on a misaligned address, as a
        // 16-byte load through a float4 pointer that is not 16-byte aligned compiles to) reports
        // SI_KERNEL and no address: say so rather than "address (nil)".
        std::string what =
            info->si_code == SI_KERNEL && addr == nullptr
                ? std::string("misaligned vector access (general-protection fault: a 16-byte load or store through a "
                              "pointer that is not 16-byte aligned, the CUDA 'misaligned address' error)")
            : in_stack_guard(addr)
                ? format("stack overflow of an emulated thread (stack %zu KiB; raise CDAS_EMU_STACK_KB)", stack_bytes() / 1024)
                : format("illegal memory access: %s", describe_address(addr).c_str());
        if (!g_block->failed) {
            g_block->failed = true;
            g_block->message = what + " [" + where(f) + "]";
        }
        f->state = FiberState::Failed;
        // Leave the handler for the scheduler; SA_NODEFER keeps the signal unblocked.
#if defined(__x86_64__)
        void* dummy;
        cdas_emu_switch(&dummy, g_scheduler_sp);
#else
        setcontext(&g_scheduler_uc);
#endif
    }
    struct sigaction& prev = sig == SIGBUS ? g_previous_bus : g_previous_segv;
    if (prev.sa_flags & SA_SIGINFO) {
        if (prev.sa_sigaction) prev.sa_sigaction(sig, info, uctx);
        return;
    }
    if (prev.sa_handler == SIG_IGN) return;
    if (prev.sa_handler == SIG_DFL || prev.sa_handler == nullptr) {
        signal(sig, SIG_DFL);
        return;  // the faulting instruction runs again and takes the default action
    }
    prev.sa_handler(sig);
}

void install_handler() {
    if (g_handler_installed) return;
    g_handler_installed = true;
    static char alt[1 << 16];
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = segv_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_previous_segv);
    sigaction(SIGBUS, &sa, &g_previous_bus);
}

std::string deadlock_message(Block& b) {
    // Describe who waits where.
    std::string s = "deadlock: no thread of the block can proceed;";
    if (b.barrier_arrived > 0)
        s += format(" %d thread(s) wait at %s (%s:%d) (a barrier reached by only part of the block: %d exited, %d elsewhere);",
                    b.barrier_arrived, b.barrier_what, base_name(b.barrier_file), b.barrier_line, b.exited,
                    b.threads - b.exited - b.barrier_arrived);
    for (size_t w = 0; w < b.warps.size(); ++w)
        for (const WarpGroup& g : b.warps[w].groups)
            if (g.active)
                s += format(" warp %zu: lanes %s wait at %s (%s:%d) for lanes %s;", w, lanes_text(g.arrived).c_str(),
                            g.what, base_name(g.file), g.line, lanes_text(g.mask & ~g.arrived).c_str());
    return s;
}

uint64_t g_order_state = 0;

void shuffle_indices(std::vector<int>& v) {
    for (size_t i = v.size(); i > 1; --i) {
        size_t j = splitmix(g_order_state) % i;
        std::swap(v[i - 1], v[j]);
    }
}

// Runs one block to completion or failure.
void run_block(Block& b, uint3 block_idx) {
    const LaunchConfig& c = *b.config;
    const int n = b.threads;
    if (static_cast<int>(g_fiber_pool.size()) < n) g_fiber_pool.resize(n);
    b.fibers = g_fiber_pool.data();
    b.live = n;
    b.exited = 0;
    b.barrier_arrived = 0;
    b.failed = false;
    b.statics.clear();
    b.static_bytes = 0;
    const int warps = (n + 31) / 32;
    b.warps.assign(warps, WarpState());
    for (int w = 0; w < warps; ++w) {
        int lanes = std::min(32, n - w * 32);
        b.warps[w].exists = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u);
    }
    // shared memory: [dynamic][guard][statics...], all poisoned
    std::memset(b.shared, kSharedPoison, b.shared_limit + kSharedGuard);
    for (int i = 0; i < n; ++i) {
        Fiber& f = b.fibers[i];
        f.linear = i;
        f.lane = i % 32;
        f.warp = i / 32;
        f.state = FiberState::Ready;
        f.ts.block_idx = block_idx;
        f.ts.block_dim = c.block;
        f.ts.grid_dim = c.grid;
        f.ts.thread_idx = uint3{static_cast<unsigned>(i % c.block.x), static_cast<unsigned>((i / c.block.x) % c.block.y),
                                static_cast<unsigned>(i / (c.block.x * c.block.y))};
        prepare_fiber(f, i);
    }
    g_threads += static_cast<unsigned long long>(n);
    // Warp-greedy scheduling: a randomly chosen warp runs (its lanes in shuffled order) until
    // every one of its lanes waits or has exited, then another. A warp can thus run far ahead of
    // the others between two barriers, as on a GPU, so a missing barrier shows up both as a read
    // of shared memory not written yet (poison) and as a write over a value another warp has not
    // read yet.
    std::vector<int> lanes(32);
    std::vector<int> candidates;
    candidates.reserve(warps);
    while (b.live > 0 && !b.failed) {
        candidates.clear();
        for (int w = 0; w < warps; ++w)
            for (int l = 0; l < 32 && w * 32 + l < n; ++l)
                if (b.fibers[w * 32 + l].state == FiberState::Ready) {
                    candidates.push_back(w);
                    break;
                }
        if (candidates.empty()) {
            b.failed = true;
            b.message = deadlock_message(b) + format(" [kernel %s (launched at %s:%d), block (%u,%u,%u)]", c.name,
                                                     base_name(c.file), c.line, block_idx.x, block_idx.y, block_idx.z);
            break;
        }
        const int w = candidates[splitmix(g_order_state) % candidates.size()];
        const int count = std::min(32, n - w * 32);
        lanes.resize(count);
        for (int l = 0; l < count; ++l) lanes[l] = w * 32 + l;
        bool progress = true;
        while (progress && !b.failed) {
            progress = false;
            shuffle_indices(lanes);
            for (int i : lanes) {
                Fiber* f = &b.fibers[i];
                if (f->state != FiberState::Ready) continue;
                progress = true;
                resume(f);
                if (b.failed) break;
            }
        }
    }
    if (!b.failed) {
        for (size_t q = 0; q < kSharedGuard; ++q)
            if (static_cast<unsigned char>(b.shared[b.dynamic_bytes + q]) != kSharedPoison) {
                b.failed = true;
                b.message = format("shared memory written %zu bytes past the end of the %zu-byte dynamic area "
                                   "[kernel %s (launched at %s:%d), block (%u,%u,%u)]",
                                   q + 1, b.dynamic_bytes, c.name, base_name(c.file), c.line, block_idx.x, block_idx.y,
                                   block_idx.z);
                break;
            }
    }
}

void set_error(cudaError_t e) {
    if (g_last_error == cudaSuccess) g_last_error = e;
}

}  // namespace

// ---- streams: queued operations, run in an order only stream order and events constrain ---------------

namespace {

// Every stream's operations wait in a queue until something needs them (a synchronisation, a
// blocking copy, a freed allocation). The queues are then run in a seeded random order that
// keeps each stream's order and every event dependency and nothing else: work on two streams with
// no event between them really runs in either order, so a missing cudaStreamWaitEvent shows up as
// a wrong result, as it would on a GPU. The legacy default stream (NULL) waits for, and is waited
// for by, every blocking stream; streams created with cudaStreamNonBlocking do not synchronise
// with it. CDAS_EMU_ASYNC=0 runs every operation at once instead.
struct Queue;
struct Stream {
    int id;
};
struct Event {
    std::chrono::steady_clock::time_point t;
    bool recorded = false;
    Queue* queue = nullptr;  // where it was last recorded, and after how many operations
    uint64_t position = 0;
};
std::set<void*> g_streams, g_events;
std::map<const void*, size_t> g_host_allocations;  // pinned: base -> bytes

bool valid_stream(cudaStream_t s) {
    return s == nullptr || reinterpret_cast<uintptr_t>(s) <= 2 || g_streams.count(s) != 0;
}

bool pinned(const void* p, size_t bytes) {
    auto it = g_host_allocations.upper_bound(p);
    if (it == g_host_allocations.begin()) return false;
    --it;
    const char* base = static_cast<const char*>(it->first);
    return static_cast<const char*>(p) >= base && static_cast<const char*>(p) + bytes <= base + it->second;
}

struct Op {
    std::function<void()> run;
    std::vector<std::pair<Queue*, uint64_t>> deps;  // (queue, operations it must have run)
};
struct Queue {
    bool blocking = true;
    uint64_t enqueued = 0, executed = 0;
    std::deque<Op> ops;
};
std::map<const void*, Queue> g_queues;  // key: the stream handle; nullptr = the legacy default stream
int g_async = -1;

bool async_mode() {
    if (g_async < 0) {
        const char* env = std::getenv("CDAS_EMU_ASYNC");
        g_async = (env && *env && std::strcmp(env, "0") == 0) ? 0 : 1;
    }
    return g_async == 1;
}

const void* queue_key(cudaStream_t s) { return reinterpret_cast<uintptr_t>(s) <= 2 ? nullptr : s; }
Queue& queue_of(cudaStream_t s) { return g_queues[queue_key(s)]; }

void enqueue(cudaStream_t s, std::function<void()> fn, Queue* after = nullptr, uint64_t after_position = 0) {
    if (!async_mode()) {
        fn();
        return;
    }
    Queue& q = queue_of(s);
    Queue& legacy = g_queues[nullptr];
    Op op{std::move(fn), {}};
    if (after != nullptr) op.deps.emplace_back(after, after_position);
    if (&q == &legacy) {
        for (auto& kv : g_queues)
            if (&kv.second != &legacy && kv.second.blocking) op.deps.emplace_back(&kv.second, kv.second.enqueued);
    } else if (q.blocking) {
        op.deps.emplace_back(&legacy, legacy.enqueued);
    }
    q.ops.push_back(std::move(op));
    ++q.enqueued;
}

bool ready(const Op& op) {
    for (const auto& d : op.deps)
        if (d.first->executed < d.second) return false;
    return true;
}

void run_head(Queue& q) {
    Op op = std::move(q.ops.front());
    q.ops.pop_front();
    op.run();
    ++q.executed;
}

uint64_t g_queue_order = 0;

// What a synchronisation returns: a sticky fault, else an error of work that ran since it was
// queued (a launch refused when it ran, e.g. too much static shared memory), left for
// cudaGetLastError to clear.
cudaError_t sync_status() { return g_sticky != cudaSuccess ? g_sticky : g_last_error; }

// Runs one ready operation of any queue, chosen at random; false when nothing is pending.
bool run_any() {
    std::vector<Queue*> heads;
    bool pending = false;
    for (auto& kv : g_queues) {
        if (kv.second.ops.empty()) continue;
        pending = true;
        if (ready(kv.second.ops.front())) heads.push_back(&kv.second);
    }
    if (!pending) return false;
    if (heads.empty()) {
        report("deadlock between streams: every pending operation waits for an event that will never complete");
        std::abort();
    }
    if (g_queue_order == 0) g_queue_order = seed() ^ 0x5717ea3ull;
    run_head(*heads[splitmix(g_queue_order) % heads.size()]);
    return true;
}

void drain_all() {
    while (run_any()) {
    }
}

// Until the stream's queue is empty, running ready operations of every queue in random order (a
// GPU may run other streams' work first, or not at all before this stream is done).
void drain_stream(cudaStream_t s) {
    Queue& q = queue_of(s);
    while (!q.ops.empty()) run_any();
}

}  // namespace

// ---- launches -------------------------------------------------------------------------------------------

namespace {
void execute_launch(const LaunchConfig& c, void (*body)(void*), void* state);
}

void launch(const LaunchConfig& c, void (*body)(void*), void* state, void (*destroy)(void*)) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (g_block != nullptr) {
        report("a kernel launched from inside a kernel (dynamic parallelism is not emulated)");
        std::abort();
    }
    ++g_launches;
    struct Owner {  // frees the parameters whatever happens
        void (*destroy)(void*);
        void* state;
        ~Owner() {
            if (state) destroy(state);
        }
    } owner{destroy, state};
    if (g_sticky != cudaSuccess) return;
    if (!valid_stream(c.stream)) {
        report(format("launch of %s at %s:%d: unknown stream", c.name, base_name(c.file), c.line));
        set_error(cudaErrorInvalidResourceHandle);
        return;
    }
    const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
    if (c.block.x == 0 || c.block.y == 0 || c.block.z == 0 || threads > 1024 || c.block.z > 64 || c.grid.x == 0 ||
        c.grid.y == 0 || c.grid.z == 0 || c.grid.x > 0x7fffffffu || c.grid.y > 65535 || c.grid.z > 65535) {
        report(format("launch of %s at %s:%d: invalid configuration: grid (%u,%u,%u), block (%u,%u,%u)", c.name,
                      base_name(c.file), c.line, c.grid.x, c.grid.y, c.grid.z, c.block.x, c.block.y, c.block.z));
        set_error(cudaErrorInvalidConfiguration);
        return;
    }
    FunctionInfo& fi = g_functions[c.function];
    const size_t dynamic_limit = fi.max_dynamic >= 0 ? static_cast<size_t>(fi.max_dynamic) : kStaticSharedLimit;
    const size_t total_limit = fi.max_dynamic >= 0 ? kOptinSharedLimit : kStaticSharedLimit;
    if (c.shared_bytes > dynamic_limit || c.shared_bytes + fi.static_bytes > total_limit) {
        report(format("launch of %s at %s:%d: too much shared memory: %zu dynamic + %zu static bytes, the limit is %zu%s",
                      c.name, base_name(c.file), c.line, c.shared_bytes, fi.static_bytes,
                      c.shared_bytes > dynamic_limit ? dynamic_limit : total_limit,
                      fi.max_dynamic >= 0 ? "" : " (48 KiB without cudaFuncAttributeMaxDynamicSharedMemorySize)"));
        set_error(cudaErrorInvalidValue);
        return;
    }
    owner.state = nullptr;  // the queued operation owns the parameters now
    LaunchConfig copy = c;
    enqueue(c.stream, [copy, body, state, destroy] {
        execute_launch(copy, body, state);
        destroy(state);
    });
}

namespace {
void execute_launch(const LaunchConfig& c, void (*body)(void*), void* state) {
    if (g_sticky != cudaSuccess) return;  // a faulted context runs nothing more
    const unsigned long long threads = 1ull * c.block.x * c.block.y * c.block.z;
    FunctionInfo& fi = g_functions[c.function];
    const size_t total_limit = fi.max_dynamic >= 0 ? kOptinSharedLimit : kStaticSharedLimit;
    install_handler();
    if (g_order_state == 0) g_order_state = seed() ^ 0xb10cull;
    const size_t arena = kOptinSharedLimit + kSharedGuard + 256;
    if (g_shared_arena.size() < arena) g_shared_arena.assign(arena, 0);
    Block b;
    b.config = &c;
    b.body = body;
    b.state = state;
    b.threads = static_cast<int>(threads);
    b.shared = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(g_shared_arena.data()) + 127) & ~uintptr_t(127));
    b.dynamic_bytes = c.shared_bytes;
    b.shared_limit = total_limit;
    // Blocks in a seeded shuffled order (a GPU runs them in any order, or at once).
    const unsigned long long blocks = 1ull * c.grid.x * c.grid.y * c.grid.z;
    std::vector<unsigned long long> order(blocks);
    for (unsigned long long i = 0; i < blocks; ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[splitmix(g_order_state) % i]);
    g_block = &b;
    for (unsigned long long lin : order) {
        uint3 idx{static_cast<unsigned>(lin % c.grid.x), static_cast<unsigned>((lin / c.grid.x) % c.grid.y),
                  static_cast<unsigned>(lin / (1ull * c.grid.x * c.grid.y))};
        run_block(b, idx);
        if (b.failed) break;
    }
    g_block = nullptr;
    fi.static_bytes = std::max(fi.static_bytes, b.static_bytes);
    if (b.failed) {
        report(b.message);
        if (b.resource_failure) {
            set_error(cudaErrorInvalidValue);
        } else {
            g_sticky = b.message.find("illegal memory access") != std::string::npos ? cudaErrorIllegalAddress
                                                                                     : cudaErrorLaunchFailure;
        }
        return;
    }
    std::string damage = check_red_zones();
    if (!damage.empty()) {
        report(format("illegal memory access: %s [kernel %s (launched at %s:%d)]", damage.c_str(), c.name,
                      base_name(c.file), c.line));
        restore_red_zones();
        g_sticky = cudaErrorIllegalAddress;
    }
}
}  // namespace

void* shared_static(const void* site, size_t bytes, size_t align, const char* name) {
    Block& b = *g_block;
    for (const SharedStatic& s : b.statics)
        if (s.site == site) return b.shared + s.offset;
    size_t base = b.dynamic_bytes + kSharedGuard;
    size_t offset = (base + b.static_bytes + align - 1) / align * align;
    size_t used = offset + bytes - base;
    if (used > kStaticSharedLimit)
        fail_fiber(format("static shared memory of %zu bytes exceeds 48 KiB (variable %s)", used, name), true);
    if (used + b.dynamic_bytes > b.shared_limit)
        fail_fiber(format("too much shared memory: %zu dynamic + %zu static bytes (variable %s), the limit is %zu%s",
                          b.dynamic_bytes, used, name, b.shared_limit,
                          b.shared_limit == kStaticSharedLimit
                              ? " (48 KiB without cudaFuncAttributeMaxDynamicSharedMemorySize)"
                              : ""),
                   true);
    b.static_bytes = used;
    b.statics.push_back(SharedStatic{site, offset, bytes});
    return b.shared + offset;
}

void* shared_dynamic() { return g_block->shared; }

int block_barrier(int reduce, int predicate, const char* what, const char* file, int line) {
    Block& b = *g_block;
    Fiber* f = g_fiber;
    for (const WarpGroup& g : b.warps[f->warp].groups)
        if (g.active && (g.mask & (1u << f->lane)))
            fail_fiber(format("lane %d reached %s (%s:%d) while lanes %s of its warp wait for it at %s (%s:%d)", f->lane,
                              what, base_name(file), line, lanes_text(g.arrived).c_str(), g.what, base_name(g.file),
                              g.line));
    if (b.exited > 0)
        fail_fiber(format("%s (%s:%d) reached while %d thread(s) of the block have exited: a barrier reached by only "
                          "part of the block",
                          what, base_name(file), line, b.exited));
    if (b.barrier_arrived == 0) {
        b.barrier_what = what;
        b.barrier_file = file;
        b.barrier_line = line;
        b.barrier_reduce = reduce;
        b.barrier_acc = reduce == 2 ? 1 : 0;
    } else if (b.barrier_line != line || std::strcmp(b.barrier_file, file) != 0 || b.barrier_reduce != reduce) {
        fail_fiber(format("barrier divergence: this thread reached %s (%s:%d) while %d thread(s) wait at %s (%s:%d)", what,
                          base_name(file), line, b.barrier_arrived, b.barrier_what, base_name(b.barrier_file),
                          b.barrier_line));
    }
    switch (reduce) {
        case 1: b.barrier_acc |= predicate; break;
        case 2: b.barrier_acc &= predicate; break;
        case 3: b.barrier_acc += predicate; break;
        default: break;
    }
    if (++b.barrier_arrived == b.threads) {
        b.barrier_result = b.barrier_acc;
        b.barrier_arrived = 0;
        for (int i = 0; i < b.threads; ++i)
            if (b.fibers[i].state == FiberState::WaitBarrier) b.fibers[i].state = FiberState::Ready;
        return b.barrier_result;
    }
    f->state = FiberState::WaitBarrier;
    f->wait_what = what;
    f->wait_file = file;
    f->wait_line = line;
    switch_to_scheduler(f);
    return b.barrier_result;
}

void warp_collective(int kind, unsigned mask, void* arg, WarpCompleteFn complete, const char* what, const char* file,
                     int line) {
    Block& b = *g_block;
    Fiber* f = g_fiber;
    if (f == nullptr) {
        report(format("%s called outside a kernel", what));
        std::abort();
    }
    WarpState& w = b.warps[f->warp];
    const unsigned bit = 1u << f->lane;
    if (!(mask & bit))
        fail_fiber(format("%s (%s:%d): lane %d calls it with mask 0x%08x, which does not name it", what, base_name(file),
                          line, f->lane, mask));
    if (mask & ~w.exists)
        fail_fiber(format("%s (%s:%d): mask 0x%08x names lanes %s that do not exist in this warp", what, base_name(file),
                          line, mask, lanes_text(mask & ~w.exists).c_str()));
    if (mask & w.exited)
        fail_fiber(format("%s (%s:%d): lanes %s named in mask 0x%08x have exited", what, base_name(file), line,
                          lanes_text(mask & w.exited).c_str(), mask));
    WarpGroup* group = nullptr;
    for (WarpGroup& g : w.groups) {
        if (!g.active) continue;
        if (g.mask == mask) {
            group = &g;
        } else if (g.mask & mask) {
            fail_fiber(format("%s (%s:%d) with mask 0x%08x overlaps %s (%s:%d) with mask 0x%08x that lanes %s wait at",
                              what, base_name(file), line, mask, g.what, base_name(g.file), g.line, g.mask,
                              lanes_text(g.arrived).c_str()));
        }
    }
    if (group == nullptr) {
        for (WarpGroup& g : w.groups)
            if (!g.active) group = &g;
        if (group == nullptr) {
            w.groups.emplace_back();
            group = &w.groups.back();
        }
        group->active = true;
        group->kind = kind;
        group->mask = mask;
        group->arrived = 0;
        group->what = what;
        group->file = file;
        group->line = line;
        std::fill(std::begin(group->args), std::end(group->args), nullptr);
    } else if (group->kind != kind || group->line != line || std::strcmp(group->file, file) != 0) {
        fail_fiber(format("warp divergence: lane %d reached %s (%s:%d) while lanes %s wait at %s (%s:%d) with the same mask",
                          f->lane, what, base_name(file), line, lanes_text(group->arrived).c_str(), group->what,
                          base_name(group->file), group->line));
    }
    group->args[f->lane] = arg;
    group->arrived |= bit;
    if (group->arrived == mask) {
        complete(group->args, mask, what);
        group->active = false;
        for (int l = 0; l < 32; ++l)
            if ((mask & (1u << l)) && l != f->lane) {
                Fiber& other = b.fibers[f->warp * 32 + l];
                if (other.state == FiberState::WaitWarp) other.state = FiberState::Ready;
            }
        return;
    }
    f->state = FiberState::WaitWarp;
    f->wait_what = what;
    f->wait_file = file;
    f->wait_line = line;
    switch_to_scheduler(f);
}

unsigned lanes_alive() {
    const WarpState& w = g_block->warps[g_fiber->warp];
    return w.exists & ~w.exited;
}

void trap(const char* message, const char* file, int line) {
    if (g_fiber == nullptr) {
        report(format("%s at %s:%d outside a kernel", message, base_name(file), line));
        std::abort();
    }
    fail_fiber(format("%s at %s:%d", message, base_name(file), line));
}

// ---- shuffles and votes -------------------------------------------------------------------------------------

namespace {
constexpr uint64_t kUndefined = 0xffffffffffffffffull;  // NaN in every float width: reads of absent lanes
ShuffleArg* sarg(void* const* args, int lane) { return static_cast<ShuffleArg*>(args[lane]); }

template <class Source>
void shuffle_with(void* const* args, unsigned mask, Source source) {
    uint64_t results[32];
    for (int l = 0; l < 32; ++l) {
        if (!(mask & (1u << l))) continue;
        ShuffleArg* a = sarg(args, l);
        const int width = a->width;
        if (width <= 0 || width > 32 || (width & (width - 1)) != 0) fail_fiber(format("shuffle width %d is not a power of two up to 32", width));
        int src = source(l, a->operand, width);
        if (src < 0) {
            results[l] = a->value;
        } else if (src > 31 || !(mask & (1u << src))) {
            results[l] = kUndefined;
        } else {
            results[l] = sarg(args, src)->value;
        }
    }
    for (int l = 0; l < 32; ++l)
        if (mask & (1u << l)) sarg(args, l)->result = results[l];
}
}  // namespace

void shuffle_xor_complete(void* const* args, unsigned mask, const char*) {
    shuffle_with(args, mask, [](int l, int m, int w) {
        int src = l ^ m;
        return src >= (l / w + 1) * w ? -1 : src;  // later groups: own value
    });
}
void shuffle_idx_complete(void* const* args, unsigned mask, const char*) {
    shuffle_with(args, mask, [](int l, int s, int w) { return (l / w) * w + (((s % w) + w) % w); });
}
void shuffle_down_complete(void* const* args, unsigned mask, const char*) {
    shuffle_with(args, mask, [](int l, int d, int w) { return (l % w) + d >= w ? -1 : l + d; });
}
void shuffle_up_complete(void* const* args, unsigned mask, const char*) {
    shuffle_with(args, mask, [](int l, int d, int w) { return (l % w) - d < 0 ? -1 : l - d; });
}
void vote_complete(void* const* args, unsigned mask, const char*) {
    unsigned ballot = 0;
    for (int l = 0; l < 32; ++l)
        if ((mask & (1u << l)) && sarg(args, l)->value) ballot |= 1u << l;
    for (int l = 0; l < 32; ++l) {
        if (!(mask & (1u << l))) continue;
        ShuffleArg* a = sarg(args, l);
        a->result = a->operand == kBallot ? ballot : a->operand == kAny ? (ballot != 0) : (ballot == mask);
    }
}
void nothing_complete(void* const*, unsigned, const char*) {}

// ---- WMMA -----------------------------------------------------------------------------------------------------

namespace {
uint16_t g_wmma_maps[5][256];
uint64_t g_wmma_seed = 0;
bool g_wmma_ready = false;

float element_get(const void* base, int element, size_t i) {
    if (element == 0) return static_cast<const float*>(base)[i];
    unsigned short h = static_cast<const unsigned short*>(base)[i];
    return element == 1 ? f16_bits_to_f32(h) : bf16_bits_to_f32(h);
}
void element_copy(void* dst, size_t di, const void* src, size_t si, int element) {
    size_t sz = element == 0 ? 4 : 2;
    std::memcpy(static_cast<char*>(dst) + di * sz, static_cast<const char*>(src) + si * sz, sz);
}
WmmaArg* warg(void* const* args, int lane) { return static_cast<WmmaArg*>(args[lane]); }

void wmma_check_uniform(void* const* args, const char* what) {
    const WmmaArg* a0 = warg(args, 0);
    for (int l = 1; l < 32; ++l) {
        const WmmaArg* a = warg(args, l);
        if (a->memory != a0->memory || a->ldm != a0->ldm || a->layout != a0->layout)
            fail_fiber(format("%s: lanes disagree on the pointer, leading dimension or layout (lane 0: %p ldm %u, lane %d: %p ldm %u)",
                              what, a0->memory, a0->ldm, l, a->memory, a->ldm));
    }
    const size_t elem = a0->element == 0 ? 4 : 2;
    if (reinterpret_cast<uintptr_t>(a0->memory) % 32 != 0)
        fail_fiber(format("%s: pointer %p is not 256-bit aligned", what, a0->memory));
    if ((a0->ldm * elem) % 16 != 0)
        fail_fiber(format("%s: leading dimension %u is not a multiple of 16 bytes (%s elements)", what, a0->ldm,
                          elem == 4 ? "4 float" : "8 16-bit"));
}
}  // namespace

const uint16_t* wmma_mapping(int kind) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_wmma_ready || g_wmma_seed != seed()) {
        g_wmma_seed = seed();
        for (int k = 0; k < 5; ++k) {
            uint64_t s = g_wmma_seed * 7919 + 0x77aa + k;
            for (int i = 0; i < 256; ++i) g_wmma_maps[k][i] = static_cast<uint16_t>(i);
            for (int i = 255; i > 0; --i) std::swap(g_wmma_maps[k][i], g_wmma_maps[k][splitmix(s) % (i + 1)]);
        }
        g_wmma_ready = true;
    }
    return g_wmma_maps[kind];
}

void wmma_load_complete(void* const* args, unsigned, const char* what) {
    wmma_check_uniform(args, what);
    const WmmaArg* a0 = warg(args, 0);
    const uint16_t* map = wmma_mapping(a0->kind);
    for (int l = 0; l < 32; ++l)
        for (int i = 0; i < 8; ++i) {
            const int e = map[l * 8 + i], r = e / 16, c = e % 16;
            const size_t off = a0->layout == 0 ? size_t(r) * a0->ldm + c : size_t(c) * a0->ldm + r;
            element_copy(warg(args, l)->fragment, i, a0->memory, off, a0->element);
        }
}

void wmma_store_complete(void* const* args, unsigned, const char* what) {
    wmma_check_uniform(args, what);
    const WmmaArg* a0 = warg(args, 0);
    const uint16_t* map = wmma_mapping(a0->kind);
    for (int l = 0; l < 32; ++l)
        for (int i = 0; i < 8; ++i) {
            const int e = map[l * 8 + i], r = e / 16, c = e % 16;
            const size_t off = a0->layout == 0 ? size_t(r) * a0->ldm + c : size_t(c) * a0->ldm + r;
            element_copy(a0->memory, off, warg(args, l)->fragment, i, 0);
        }
}

void wmma_mma_complete(void* const* args, unsigned, const char*) {
    float A[256], B[256], C[256];
    const WmmaArg* a0 = warg(args, 0);
    const uint16_t* ma = wmma_mapping(a0->kind_a);
    const uint16_t* mb = wmma_mapping(a0->kind_b);
    const uint16_t* mc = wmma_mapping(4);
    for (int l = 0; l < 32; ++l) {
        const WmmaArg* a = warg(args, l);
        for (int i = 0; i < 8; ++i) {
            A[ma[l * 8 + i]] = element_get(a->other1, a0->element, i);
            B[mb[l * 8 + i]] = element_get(a->other2, a0->element, i);
            C[mc[l * 8 + i]] = static_cast<const float*>(a->other3)[i];
        }
    }
    float D[256];
    for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 16; ++c) {
            float acc = C[r * 16 + c];
            for (int k = 0; k < 16; ++k) acc += A[r * 16 + k] * B[k * 16 + c];
            D[r * 16 + c] = acc;
        }
    for (int l = 0; l < 32; ++l)
        for (int i = 0; i < 8; ++i) static_cast<float*>(warg(args, l)->fragment)[i] = D[mc[l * 8 + i]];
}

}  // namespace cdas_emu

// ---- runtime API ------------------------------------------------------------------------------------------------

using namespace cdas_emu;

namespace {


cudaError_t api_fail(cudaError_t e, const std::string& message) {
    report(message);
    set_error(e);
    return e;
}

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** ptr, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (ptr == nullptr) return api_fail(cudaErrorInvalidValue, "cudaMalloc: NULL result pointer");
    *ptr = nullptr;
    if (bytes == 0) return cudaSuccess;
    g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t data_pages = (bytes + 255 + g_page - 1) / g_page;
    const size_t map_bytes = (data_pages + 2) * g_page;
    void* m = mmap(nullptr, map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        set_error(cudaErrorMemoryAllocation);
        return cudaErrorMemoryAllocation;
    }
    Allocation al;
    al.map = static_cast<char*>(m);
    al.map_bytes = map_bytes;
    al.data_begin = al.map + g_page;
    al.data_end = al.map + (data_pages + 1) * g_page;
    mprotect(al.map, g_page, PROT_NONE);
    mprotect(al.data_end, g_page, PROT_NONE);
    al.user = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(al.data_end) - bytes) & ~uintptr_t(255));
    al.bytes = bytes;
    std::memset(al.data_begin, kRedZone, al.user - al.data_begin);
    std::memset(al.user, kDevicePoison, bytes);
    std::memset(al.user + bytes, kRedZone, al.data_end - (al.user + bytes));
    g_allocations[reinterpret_cast<uintptr_t>(al.user)] = al;
    *ptr = al.user;
    return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (ptr == nullptr) return cudaSuccess;
    auto it = g_allocations.find(reinterpret_cast<uintptr_t>(ptr));
    if (it == g_allocations.end())
        return api_fail(cudaErrorInvalidValue, format("cudaFree(%p): not the start of a device allocation", ptr));
    drain_all();  // cudaFree waits for the device
    std::string damage = check_red_zones();
    if (!damage.empty()) report("at cudaFree: " + damage);
    munmap(it->second.map, it->second.map_bytes);
    g_allocations.erase(it);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (ptr == nullptr) return api_fail(cudaErrorInvalidValue, "cudaMallocHost: NULL result pointer");
    *ptr = std::aligned_alloc(256, std::max<size_t>((bytes + 255) & ~size_t(255), 256));
    if (*ptr == nullptr) return api_fail(cudaErrorMemoryAllocation, "cudaMallocHost: out of host memory");
    g_host_allocations[*ptr] = std::max<size_t>((bytes + 255) & ~size_t(255), 256);
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void* ptr) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (ptr == nullptr) return cudaSuccess;
    if (!g_host_allocations.count(ptr)) return api_fail(cudaErrorInvalidValue, "cudaFreeHost: not a pinned allocation");
    drain_all();
    g_host_allocations.erase(ptr);
    std::free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (g_sticky != cudaSuccess) return g_sticky;
    if (!valid_stream(stream)) return api_fail(cudaErrorInvalidResourceHandle, "cudaMemcpy: unknown stream");
    if (bytes == 0) return cudaSuccess;
    bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (kind == cudaMemcpyDefault) {
        dst_device = find_allocation(dst) != nullptr;
        src_device = find_allocation(src) != nullptr;
    } else if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault) {
        return api_fail(cudaErrorInvalidMemcpyDirection, "cudaMemcpy: invalid direction");
    }
    std::string why;
    if (dst_device && !device_range(dst, bytes, &why)) return api_fail(cudaErrorInvalidValue, "cudaMemcpy destination: " + why);
    if (src_device && !device_range(src, bytes, &why)) return api_fail(cudaErrorInvalidValue, "cudaMemcpy source: " + why);
    enqueue(stream, [dst, src, bytes] {
        if (g_sticky == cudaSuccess) std::memmove(dst, src, bytes);
    });
    // With pageable host memory the call returns only once the copy is done, as CUDA's does.
    if ((!dst_device && !pinned(dst, bytes)) || (!src_device && !pinned(src, bytes))) drain_stream(stream);
    return g_sticky;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
    drain_stream(nullptr);  // the legacy stream: after every blocking stream's earlier work
    return e != cudaSuccess ? e : g_sticky;
}

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (g_sticky != cudaSuccess) return g_sticky;
    if (!valid_stream(stream)) return api_fail(cudaErrorInvalidResourceHandle, "cudaMemset: unknown stream");
    if (bytes == 0) return cudaSuccess;
    std::string why;
    if (!device_range(ptr, bytes, &why)) return api_fail(cudaErrorInvalidValue, "cudaMemset: " + why);
    enqueue(stream, [ptr, value, bytes] {
        if (g_sticky == cudaSuccess) std::memset(ptr, value, bytes);
    });
    return cudaSuccess;
}

cudaError_t cudaMemset(void* ptr, int value, size_t bytes) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    cudaError_t e = cudaMemsetAsync(ptr, value, bytes, nullptr);
    drain_stream(nullptr);
    return e != cudaSuccess ? e : g_sticky;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (stream == nullptr) return api_fail(cudaErrorInvalidValue, "cudaStreamCreate: NULL result pointer");
    *stream = reinterpret_cast<cudaStream_t>(new Stream{static_cast<int>(g_streams.size()) + 3});
    g_streams.insert(*stream);
    queue_of(*stream).blocking = (flags & cudaStreamNonBlocking) == 0;
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_streams.count(stream)) return api_fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: unknown stream");
    drain_stream(stream);  // its work still completes; the (empty) queue stays for events that name it
    g_streams.erase(stream);
    delete reinterpret_cast<Stream*>(stream);
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!valid_stream(stream)) return api_fail(cudaErrorInvalidResourceHandle, "cudaStreamSynchronize: unknown stream");
    drain_stream(stream);
    return sync_status();
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!valid_stream(stream) || !g_events.count(event))
        return api_fail(cudaErrorInvalidResourceHandle, "cudaStreamWaitEvent: unknown stream or event");
    Event* e = reinterpret_cast<Event*>(event);
    if (e->queue != nullptr) enqueue(stream, [] {}, e->queue, e->position);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    drain_all();
    return sync_status();
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (event == nullptr) return api_fail(cudaErrorInvalidValue, "cudaEventCreate: NULL result pointer");
    *event = reinterpret_cast<cudaEvent_t>(new Event());
    g_events.insert(*event);
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_events.count(event)) return api_fail(cudaErrorInvalidResourceHandle, "cudaEventDestroy: unknown event");
    drain_all();  // a queued record still refers to it
    g_events.erase(event);
    delete reinterpret_cast<Event*>(event);
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_events.count(event) || !valid_stream(stream))
        return api_fail(cudaErrorInvalidResourceHandle, "cudaEventRecord: unknown event or stream");
    Event* e = reinterpret_cast<Event*>(event);
    e->recorded = false;
    enqueue(stream, [e] {
        e->t = std::chrono::steady_clock::now();
        e->recorded = true;
    });
    if (async_mode()) {
        e->queue = &queue_of(stream);
        e->position = e->queue->enqueued;
    }
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_events.count(event)) return api_fail(cudaErrorInvalidResourceHandle, "cudaEventSynchronize: unknown event");
    drain_all();
    return sync_status();
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (ms == nullptr || !g_events.count(start) || !g_events.count(end))
        return api_fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: unknown event");
    Event* a = reinterpret_cast<Event*>(start);
    Event* b = reinterpret_cast<Event*>(end);
    if (!a->recorded || !b->recorded) return api_fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: event not recorded");
    *ms = std::chrono::duration<float, std::milli>(b->t - a->t).count();
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    if (device == nullptr) return cudaErrorInvalidValue;
    *device = 0;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (device != 0) return api_fail(cudaErrorInvalidDevice, format("cudaSetDevice(%d): the emulation has one device", device));
    return cudaSuccess;
}

cudaError_t cudaGetDeviceCount(int* count) {
    if (count == nullptr) return cudaErrorInvalidValue;
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device) {
    if (value == nullptr || device != 0) return cudaErrorInvalidValue;
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock: *value = 1024; break;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = static_cast<int>(kStaticSharedLimit); break;
        case cudaDevAttrWarpSize: *value = 32; break;
        case cudaDevAttrMultiProcessorCount: *value = kSmCount; break;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
        case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kOptinSharedLimit); break;
        default: return cudaErrorInvalidValue;
    }
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device) {
    if (prop == nullptr || device != 0) return cudaErrorInvalidValue;
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "cdas CUDA emulation on the CPU (sm_90 limits)");
    prop->totalGlobalMem = size_t(16) << 30;
    prop->sharedMemPerBlock = kStaticSharedLimit;
    prop->sharedMemPerBlockOptin = kOptinSharedLimit;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = 1024;
    prop->multiProcessorCount = kSmCount;
    prop->major = 9;
    prop->minor = 0;
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    if (free_bytes) *free_bytes = size_t(16) << 30;
    if (total_bytes) *total_bytes = size_t(16) << 30;
    return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (g_sticky != cudaSuccess) return g_sticky;
    cudaError_t e = g_last_error;
    g_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    return g_sticky != cudaSuccess ? g_sticky : g_last_error;
}

const char* cudaGetErrorName(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInitializationError: return "cudaErrorInitializationError";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
        case cudaErrorNoDevice: return "cudaErrorNoDevice";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady: return "cudaErrorNotReady";
        case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
        case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
        case cudaErrorAssert: return "cudaErrorAssert";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorNotSupported: return "cudaErrorNotSupported";
        default: return "cudaErrorUnknown";
    }
}

const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        default: return cudaGetErrorName(e);
    }
}

cudaError_t cdas_emu_func_set_attribute(const void* func, enum cudaFuncAttribute attr, int value) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        FunctionInfo& fi = g_functions[func];
        if (value < 0 || static_cast<size_t>(value) + fi.static_bytes > kOptinSharedLimit)
            return api_fail(cudaErrorInvalidValue,
                            format("cudaFuncSetAttribute: %d bytes of dynamic shared memory exceed the %zu-byte opt-in limit",
                                   value, kOptinSharedLimit));
        fi.max_dynamic = value;
        return cudaSuccess;
    }
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
    return api_fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute not emulated");
}

void cdas_emu_reset(void) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    drain_all();
    g_sticky = cudaSuccess;
    g_last_error = cudaSuccess;
    g_fault.clear();
}
const char* cdas_emu_last_fault(void) { return g_fault.c_str(); }
unsigned long long cdas_emu_launch_count(void) { return g_launches; }
unsigned long long cdas_emu_thread_count(void) { return g_threads; }
void cdas_emu_set_seed(unsigned long long s) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    g_seed = s;
    g_seed_set = true;
    g_order_state = s ^ 0xb10cull;
}
unsigned long long cdas_emu_seed(void) { return seed(); }

}  // extern "C"

// ---- cuBLAS stand-in -------------------------------------------------------------------------------------------

struct cublasContext {
    cudaStream_t stream = nullptr;
    cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
    cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {
std::set<cublasHandle_t> g_blas;

cublasStatus_t blas_fail(cublasStatus_t st, const std::string& message) {
    report(message);
    return st;
}

size_t type_size(cudaDataType t) {
    switch (t) {
        case CUDA_R_32F: return 4;
        case CUDA_R_16F:
        case CUDA_R_16BF: return 2;
        default: return 0;
    }
}

float load_as_float(const void* p, cudaDataType t, size_t i) {
    switch (t) {
        case CUDA_R_32F: return static_cast<const float*>(p)[i];
        case CUDA_R_16F: return f16_bits_to_f32(static_cast<const unsigned short*>(p)[i]);
        default: return bf16_bits_to_f32(static_cast<const unsigned short*>(p)[i]);
    }
}

void store_from_float(void* p, cudaDataType t, size_t i, float v) {
    switch (t) {
        case CUDA_R_32F: static_cast<float*>(p)[i] = v; break;
        case CUDA_R_16F: static_cast<unsigned short*>(p)[i] = f32_to_f16_bits(v); break;
        default: static_cast<unsigned short*>(p)[i] = f32_to_bf16_bits(v); break;
    }
}

// Bytes a column-major operand of `rows` x `cols` (stored) with leading dimension ld spans.
size_t extent(int rows, int cols, int ld, size_t elem) {
    if (rows <= 0 || cols <= 0) return 0;
    return (static_cast<size_t>(cols - 1) * static_cast<size_t>(ld) + static_cast<size_t>(rows)) * elem;
}
}  // namespace

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *handle = new cublasContext();
    g_blas.insert(*handle);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_blas.erase(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_stream(stream)) return blas_fail(CUBLAS_STATUS_INVALID_VALUE, "cublasSetStream: unknown stream");
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *stream = handle->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->math = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
    handle->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t* mode) {
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    *mode = handle->pointer_mode;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void*, size_t) {
    return g_blas.count(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

const char* cublasGetStatusString(cublasStatus_t st) {
    switch (st) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
        case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
        case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
        case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
        default: return "CUBLAS_STATUS_UNKNOWN";
    }
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
    std::lock_guard<std::recursive_mutex> lock(g_mutex);
    if (!g_blas.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    auto op_ok = [](cublasOperation_t o) { return o == CUBLAS_OP_N || o == CUBLAS_OP_T || o == CUBLAS_OP_C; };
    if (!op_ok(transa) || !op_ok(transb) || m < 0 || n < 0 || k < 0)
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, format("cublasGemmEx: invalid op or negative size (m %d n %d k %d)", m, n, k));
    const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
    const int a_rows = ta ? k : m, a_cols = ta ? m : k;
    const int b_rows = tb ? n : k, b_cols = tb ? k : n;
    if (lda < std::max(1, a_rows))
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, format("cublasGemmEx: lda %d < max(1, %d)", lda, a_rows));
    if (ldb < std::max(1, b_rows))
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, format("cublasGemmEx: ldb %d < max(1, %d)", ldb, b_rows));
    if (ldc < std::max(1, m))
        return blas_fail(CUBLAS_STATUS_INVALID_VALUE, format("cublasGemmEx: ldc %d < max(1, %d)", ldc, m));
    const bool in16 = (Atype == CUDA_R_16F || Atype == CUDA_R_16BF);
    const bool types_ok = Atype == Btype && type_size(Atype) != 0 && (Ctype == CUDA_R_32F || Ctype == Atype) &&
                          (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC ||
                           (!in16 && (compute == CUBLAS_COMPUTE_32F_FAST_TF32 || compute == CUBLAS_COMPUTE_32F_FAST_16F ||
                                      compute == CUBLAS_COMPUTE_32F_FAST_16BF)));
    if (!types_ok)
        return blas_fail(CUBLAS_STATUS_NOT_SUPPORTED,
                         format("cublasGemmEx: unsupported types A %d B %d C %d compute %d", Atype, Btype, Ctype, compute));
    if (g_sticky != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    if (alpha == nullptr || beta == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
    std::string why;
    if (handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE &&
        (!device_range(alpha, 4, &why) || !device_range(beta, 4, &why)))
        return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, "cublasGemmEx: device pointer mode, alpha/beta: " + why);
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const size_t ea = type_size(Atype), ec = type_size(Ctype);
    if (k > 0 && !device_range(A, extent(a_rows, a_cols, lda, ea), &why))
        return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, format("cublasGemmEx: operand A (%s%d x %d, lda %d): %s",
                                                                ta ? "transposed, stored " : "", a_rows, a_cols, lda, why.c_str()));
    if (k > 0 && !device_range(B, extent(b_rows, b_cols, ldb, ea), &why))
        return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED, format("cublasGemmEx: operand B (%s%d x %d, ldb %d): %s",
                                                                tb ? "transposed, stored " : "", b_rows, b_cols, ldb, why.c_str()));
    if (!device_range(C, extent(m, n, ldc, ec), &why))
        return blas_fail(CUBLAS_STATUS_EXECUTION_FAILED,
                         format("cublasGemmEx: operand C (%d x %d, ldc %d): %s", m, n, ldc, why.c_str()));
    // Host pointer mode: alpha and beta are read now, as cuBLAS reads them before returning; device
    // pointer mode: when the GEMM runs, in stream order.
    const bool device_scalars = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
    const float host_al = device_scalars ? 0.0f : *static_cast<const float*>(alpha);
    const float host_be = device_scalars ? 0.0f : *static_cast<const float*>(beta);
    enqueue(handle->stream, [=] {
        if (g_sticky != cudaSuccess) return;
        const float al = device_scalars ? *static_cast<const float*>(alpha) : host_al;
        const float be = device_scalars ? *static_cast<const float*>(beta) : host_be;
        // op(A) as m x k row-major, op(B) as n x k row-major (so each C element is a contiguous dot).
        std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(n) * k);
        for (int i = 0; i < m; ++i)
            for (int p = 0; p < k; ++p)
                a[size_t(i) * k + p] = load_as_float(A, Atype, ta ? size_t(p) + size_t(i) * lda : size_t(i) + size_t(p) * lda);
        for (int j = 0; j < n; ++j)
            for (int p = 0; p < k; ++p)
                b[size_t(j) * k + p] = load_as_float(B, Btype, tb ? size_t(j) + size_t(p) * ldb : size_t(p) + size_t(j) * ldb);
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
                const float* ar = &a[size_t(i) * k];
                const float* br = &b[size_t(j) * k];
                float acc = 0.0f;
                for (int p = 0; p < k; ++p) acc += ar[p] * br[p];
                const size_t ci = size_t(i) + size_t(j) * ldc;
                float v = al * acc;
                if (be != 0.0f) v += be * load_as_float(C, Ctype, ci);  // beta == 0: C is not read
                store_from_float(C, Ctype, ci, v);
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

}  // extern "C"
