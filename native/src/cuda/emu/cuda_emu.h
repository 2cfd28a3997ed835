/*
 * cdas CUDA emulation: the CUDA execution model on the CPU, so that the project's own .cu kernel
 * sources (native/src/cuda/ .cu files) compile as plain C++ and run in CI without a GPU, the way
 * Triton's interpreter runs Triton kernels. Nothing here is a second copy of a kernel: the .cu
 * files are compiled as they are, through this header (reached via the shim headers
 * cuda_runtime.h, cublas_v2.h, cuda_bf16.h, cuda_fp16.h and mma.h in emu/include/).
 *
 * What is emulated, and how strictly (docs/cuda-emulation.md has the full list):
 *   - grids and blocks: every CUDA thread of a block is a CPU fiber with its own stack (locals =
 *     registers); blocks run one after another in a seeded shuffled order, the fibers of a block
 *     in a seeded shuffled order between synchronisation points;
 *   - __syncthreads is a real barrier; reaching it with part of the block (others exited or
 *     waiting elsewhere) fails the launch with a message naming the line;
 *   - warp shuffles, votes and __syncwarp are lock-step collectives: every lane named in the mask
 *     must arrive at the same operation, or the launch fails;
 *   - shared memory per block (static CDAS_SHARED and dynamic CDAS_DYNAMIC_SHARED), poisoned with
 *     0xff (NaN) at block start, 48 KiB without opt-in, the opt-in limit of an H100/H200 with
 *     cudaFuncSetAttribute, guard bytes after the dynamic area checked at block end;
 *   - bf16/f16 with the hardware's round-to-nearest-even conversions, bit for bit;
 *   - WMMA 16x16x16 fragments whose element-to-lane mapping is a seeded permutation unlike any
 *     real GPU's, so code that touches fragment elements by position gets wrong answers;
 *   - cuBLAS GemmEx: column-major semantics, ops, leading dimensions (rejected as cuBLAS rejects
 *     them), alpha/beta in host or device pointer mode, data/compute types; operand extents are
 *     checked against their device allocations;
 *   - device memory: guard pages and canary red zones around every cudaMalloc, poisoned with
 *     0xff; an out-of-bounds read or write into a guard page or a canary fails the launch
 *     (sticky error, as on a GPU), with the kernel, block and thread named.
 * Launches run synchronously on the calling host thread (one device, serialised by a mutex).
 */
#ifndef CDAS_CUDA_EMU_H
#define CDAS_CUDA_EMU_H

#define CDAS_CUDA_EMULATION 1

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define CDAS_EMU_API __attribute__((visibility("default")))

// ---- qualifiers --------------------------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __constant__

// ---- vector types --------------------------------------------------------------------------------
struct uint3 { unsigned int x, y, z; };
struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned int x, y; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
inline float2 make_float2(float x, float y) { return float2{x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }

// ---- 16-bit floating point: storage plus the hardware's conversions ---------------------------------
struct __half { unsigned short __x; };
struct __nv_bfloat16 { unsigned short __x; };
typedef __half half;
typedef __nv_bfloat16 nv_bfloat16;

namespace cdas_emu {
// Bit-exact round-to-nearest-even conversions (cvt.rn.f16.f32 / cvt.rn.bf16.f32): subnormals,
// overflow to infinity, NaN to the canonical 0x7fff.
inline unsigned short f32_to_f16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint32_t sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    if (u > 0x7f800000u) return 0x7fffu;
    if (u >= 0x47800000u) return static_cast<unsigned short>(sign | 0x7c00u);  // >= 65536 (and inf)
    const uint32_t e = u >> 23;
    if (e >= 113) {  // normal half
        uint32_t h = ((e - 112) << 10) | ((u & 0x7fffffu) >> 13);
        const uint32_t rest = u & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry may reach infinity: correct
        return static_cast<unsigned short>(sign | h);
    }
    if (e < 102) return static_cast<unsigned short>(sign);  // below 2^-25: rounds to zero
    const uint32_t m = (u & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t q = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (q & 1u))) ++q;
    return static_cast<unsigned short>(sign | q);
}
inline float f16_bits_to_f32(unsigned short h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t u;
    if (e == 0) {
        if (m == 0) {
            u = sign;
        } else {  // subnormal: normalise
            int shift = 0;
            uint32_t mm = m;
            while (!(mm & 0x400u)) {
                mm <<= 1;
                ++shift;
            }
            u = sign | ((113u - shift) << 23) | ((mm & 0x3ffu) << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
inline unsigned short f32_to_bf16_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<unsigned short>(u >> 16);
}
inline float bf16_bits_to_f32(unsigned short h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
}  // namespace cdas_emu

inline __half __float2half_rn(float f) { return __half{cdas_emu::f32_to_f16_bits(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return cdas_emu::f16_bits_to_f32(h.__x); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __nv_bfloat16{cdas_emu::f32_to_bf16_bits(f)}; }
inline __nv_bfloat16 __float2bfloat16(float f) { return __float2bfloat16_rn(f); }
inline float __bfloat162float(__nv_bfloat16 h) { return cdas_emu::bf16_bits_to_f32(h.__x); }

// ---- device math that CUDA has and the C library spells differently ---------------------------------
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
template <class A, class B>
inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <class A, class B>
inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

// ---- CUDA runtime API (the subset the project uses) -----------------------------------------------------
#define CUDART_VERSION 13000
typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInitializationError = 3,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInvalidDevicePointer = 17,
    cudaErrorInvalidMemcpyDirection = 21,
    cudaErrorNoDevice = 100,
    cudaErrorInvalidDevice = 101,
    cudaErrorInvalidResourceHandle = 400,
    cudaErrorNotReady = 600,
    cudaErrorIllegalAddress = 700,
    cudaErrorLaunchOutOfResources = 701,
    cudaErrorAssert = 710,
    cudaErrorLaunchFailure = 719,
    cudaErrorNotSupported = 801,
    cudaErrorUnknown = 999
} cudaError_t;
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaDeviceAttr {
    cudaDevAttrMaxThreadsPerBlock = 1,
    cudaDevAttrMaxSharedMemoryPerBlock = 8,
    cudaDevAttrWarpSize = 10,
    cudaDevAttrMultiProcessorCount = 16,
    cudaDevAttrComputeCapabilityMajor = 75,
    cudaDevAttrComputeCapabilityMinor = 76,
    cudaDevAttrMaxSharedMemoryPerBlockOptin = 97
};
enum cudaFuncAttribute {
    cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
    cudaFuncAttributePreferredSharedMemoryCarveout = 9
};
#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
struct cudaDeviceProp {
    char name[256];
    size_t totalGlobalMem;
    size_t sharedMemPerBlock;
    size_t sharedMemPerBlockOptin;
    int warpSize;
    int maxThreadsPerBlock;
    int multiProcessorCount;
    int major;
    int minor;
};

extern "C" {
CDAS_EMU_API cudaError_t cudaMalloc(void** ptr, size_t bytes);
CDAS_EMU_API cudaError_t cudaFree(void* ptr);
CDAS_EMU_API cudaError_t cudaMallocHost(void** ptr, size_t bytes);
CDAS_EMU_API cudaError_t cudaFreeHost(void* ptr);
CDAS_EMU_API cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind);
CDAS_EMU_API cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind,
                                         cudaStream_t stream);
CDAS_EMU_API cudaError_t cudaMemset(void* ptr, int value, size_t bytes);
CDAS_EMU_API cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes, cudaStream_t stream);
CDAS_EMU_API cudaError_t cudaStreamCreate(cudaStream_t* stream);
CDAS_EMU_API cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
CDAS_EMU_API cudaError_t cudaStreamDestroy(cudaStream_t stream);
CDAS_EMU_API cudaError_t cudaStreamSynchronize(cudaStream_t stream);
CDAS_EMU_API cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags);
CDAS_EMU_API cudaError_t cudaDeviceSynchronize(void);
CDAS_EMU_API cudaError_t cudaEventCreate(cudaEvent_t* event);
CDAS_EMU_API cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
CDAS_EMU_API cudaError_t cudaEventDestroy(cudaEvent_t event);
CDAS_EMU_API cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
CDAS_EMU_API cudaError_t cudaEventSynchronize(cudaEvent_t event);
CDAS_EMU_API cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
CDAS_EMU_API cudaError_t cudaGetDevice(int* device);
CDAS_EMU_API cudaError_t cudaSetDevice(int device);
CDAS_EMU_API cudaError_t cudaGetDeviceCount(int* count);
CDAS_EMU_API cudaError_t cudaDeviceGetAttribute(int* value, enum cudaDeviceAttr attr, int device);
CDAS_EMU_API cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp* prop, int device);
CDAS_EMU_API cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes);
CDAS_EMU_API cudaError_t cudaGetLastError(void);
CDAS_EMU_API cudaError_t cudaPeekAtLastError(void);
CDAS_EMU_API const char* cudaGetErrorString(cudaError_t error);
CDAS_EMU_API const char* cudaGetErrorName(cudaError_t error);
CDAS_EMU_API cudaError_t cdas_emu_func_set_attribute(const void* func, enum cudaFuncAttribute attr, int value);

/* Test hooks of the emulation (not CUDA API). */
CDAS_EMU_API void cdas_emu_reset(void);                 /* clears a sticky error and the last fault */
CDAS_EMU_API const char* cdas_emu_last_fault(void);     /* the last launch failure's message, "" if none */
CDAS_EMU_API unsigned long long cdas_emu_launch_count(void);
CDAS_EMU_API unsigned long long cdas_emu_thread_count(void);
CDAS_EMU_API void cdas_emu_set_seed(unsigned long long seed); /* block/thread order and WMMA mapping */
CDAS_EMU_API unsigned long long cdas_emu_seed(void);
}

template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) { return cudaMalloc(reinterpret_cast<void**>(ptr), bytes); }
template <class T>
inline cudaError_t cudaMallocHost(T** ptr, size_t bytes) { return cudaMallocHost(reinterpret_cast<void**>(ptr), bytes); }
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind) {
    return cudaMemcpyAsync(dst, src, bytes, kind, nullptr);
}
inline cudaError_t cudaMemsetAsync(void* ptr, int value, size_t bytes) { return cudaMemsetAsync(ptr, value, bytes, nullptr); }
inline cudaError_t cudaEventRecord(cudaEvent_t event) { return cudaEventRecord(event, nullptr); }
template <class F>
inline cudaError_t cudaFuncSetAttribute(F* func, enum cudaFuncAttribute attr, int value) {
    return cdas_emu_func_set_attribute(reinterpret_cast<const void*>(func), attr, value);
}

// ---- the execution model ---------------------------------------------------------------------------------
namespace cdas_emu {

struct ThreadState {
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};
// The fiber now running (launches are serialised: one emulated device, one host thread at a time).
CDAS_EMU_API extern ThreadState* g_current;

struct LaunchConfig {
    dim3 grid, block;
    size_t shared_bytes;
    cudaStream_t stream;
    const void* function;
    const char* name;
    const char* file;
    int line;
};

// Runs body(state) once per CUDA thread of the grid; errors become cudaGetLastError/sticky errors.
CDAS_EMU_API void launch(const LaunchConfig& config, void (*body)(void*), void* state);

template <class... P>
struct Launcher {
    typedef std::tuple<typename std::decay<P>::type...> Params;
    struct State {
        void (*kernel)(P...);
        Params* params;
    };
    LaunchConfig config;
    void (*kernel)(P...);
    template <class... A>
    void operator()(A&&... args) const {
        static_assert(sizeof...(A) == sizeof...(P), "kernel launched with the wrong number of arguments");
        // Parameters are converted and copied once at launch, as CUDA copies them into the
        // launch's parameter space; each thread then gets its own copies through the call.
        Params params(std::forward<A>(args)...);
        State state{kernel, &params};
        launch(config, &Launcher::run_thread, &state);
    }
    static void run_thread(void* raw) {
        State* st = static_cast<State*>(raw);
        call(st->kernel, *st->params, std::index_sequence_for<P...>{});
    }
    template <size_t... I>
    static void call(void (*k)(P...), Params& t, std::index_sequence<I...>) {
        k(std::get<I>(t)...);
    }
};

template <class... P>
inline Launcher<P...> make_launcher(dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t stream, const char* name,
                                    const char* file, int line, void (*kernel)(P...)) {
    return Launcher<P...>{LaunchConfig{grid, block, shared_bytes, stream, reinterpret_cast<const void*>(kernel), name,
                                       file, line},
                          kernel};
}

// Shared memory of the running block.
CDAS_EMU_API void* shared_static(const void* site, size_t bytes, size_t align, const char* name);
CDAS_EMU_API void* shared_dynamic();

// Block barrier; reduce: 0 plain, 1 or, 2 and, 3 count. Returns the reduction.
CDAS_EMU_API int block_barrier(int reduce, int predicate, const char* what, const char* file, int line);

// Warp collectives. Every lane named in `mask` calls with its own `arg`; when the last one
// arrives, complete(args, mask, ctx) runs once with args[lane] = each lane's arg (nullptr for the
// other lanes); then every lane returns. A lane that is not named in its own mask, lanes that
// exited, or lanes waiting at a different operation fail the launch.
typedef void (*WarpCompleteFn)(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void warp_collective(int kind, unsigned mask, void* arg, WarpCompleteFn complete, const char* what,
                                  const char* file, int line);
CDAS_EMU_API unsigned lanes_alive();
// Fails the running launch with a message (as a device-side trap would).
[[noreturn]] CDAS_EMU_API void trap(const char* message, const char* file, int line);

enum WarpKind { kShflXor = 1, kShfl, kShflDown, kShflUp, kBallot, kAny, kAll, kSyncWarp, kWmmaLoad, kWmmaStore, kWmmaMma };

struct ShuffleArg {
    uint64_t value;
    int operand;
    int width;
    uint64_t result;
};
CDAS_EMU_API void shuffle_xor_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void shuffle_idx_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void shuffle_down_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void shuffle_up_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void vote_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void nothing_complete(void* const* args, unsigned mask, const char* what);

template <class T>
inline T shuffle(int kind, WarpCompleteFn complete, const char* what, unsigned mask, T value, int operand,
                 const char* file, int line, int width = 32) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "shuffled values are at most 8 bytes");
    ShuffleArg a{0, operand, width, 0};
    std::memcpy(&a.value, &value, sizeof(T));
    warp_collective(kind, mask, &a, complete, what, file, line);
    T r;
    std::memcpy(&r, &a.result, sizeof(T));
    return r;
}
inline unsigned vote(int kind, unsigned mask, int predicate, const char* what, const char* file, int line) {
    ShuffleArg a{static_cast<uint64_t>(predicate != 0), kind, 32, 0};
    warp_collective(kind, mask, &a, &vote_complete, what, file, line);
    return static_cast<unsigned>(a.result);
}

}  // namespace cdas_emu

// The spellings of common.cuh (plain CUDA under nvcc).
#define CDAS_LAUNCH(grid, block, smem, stream, ...) \
    ::cdas_emu::make_launcher(grid, block, smem, stream, #__VA_ARGS__, __FILE__, __LINE__, __VA_ARGS__)
#define CDAS_SHARED(type, name, dims)                                                                    \
    static const char cdas_emu_site_##name = 0;                                                          \
    type(&name) dims = *static_cast<type(*) dims>(                                                       \
        ::cdas_emu::shared_static(&cdas_emu_site_##name, sizeof(type dims), alignof(type), #name))
#define CDAS_DYNAMIC_SHARED(type, name) type* name = static_cast<type*>(::cdas_emu::shared_dynamic())

#define threadIdx (::cdas_emu::g_current->thread_idx)
#define blockIdx (::cdas_emu::g_current->block_idx)
#define blockDim (::cdas_emu::g_current->block_dim)
#define gridDim (::cdas_emu::g_current->grid_dim)
constexpr int warpSize = 32;

#define __syncthreads() ::cdas_emu::block_barrier(0, 1, "__syncthreads", __FILE__, __LINE__)
#define __syncthreads_or(p) ::cdas_emu::block_barrier(1, (p) ? 1 : 0, "__syncthreads_or", __FILE__, __LINE__)
#define __syncthreads_and(p) ::cdas_emu::block_barrier(2, (p) ? 1 : 0, "__syncthreads_and", __FILE__, __LINE__)
#define __syncthreads_count(p) ::cdas_emu::block_barrier(3, (p) ? 1 : 0, "__syncthreads_count", __FILE__, __LINE__)
#define __syncwarp(...) ::cdas_emu::syncwarp(__FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_xor_sync(mask, v, lane_mask, ...)                                                                \
    ::cdas_emu::shuffle(::cdas_emu::kShflXor, &::cdas_emu::shuffle_xor_complete, "__shfl_xor_sync", mask, v,   \
                        lane_mask, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_sync(mask, v, src, ...)                                                                    \
    ::cdas_emu::shuffle(::cdas_emu::kShfl, &::cdas_emu::shuffle_idx_complete, "__shfl_sync", mask, v, src, \
                        __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_down_sync(mask, v, delta, ...)                                                                   \
    ::cdas_emu::shuffle(::cdas_emu::kShflDown, &::cdas_emu::shuffle_down_complete, "__shfl_down_sync", mask, v, \
                        delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __shfl_up_sync(mask, v, delta, ...)                                                                \
    ::cdas_emu::shuffle(::cdas_emu::kShflUp, &::cdas_emu::shuffle_up_complete, "__shfl_up_sync", mask, v, \
                        delta, __FILE__, __LINE__, ##__VA_ARGS__)
#define __ballot_sync(mask, p) ::cdas_emu::vote(::cdas_emu::kBallot, mask, p, "__ballot_sync", __FILE__, __LINE__)
#define __any_sync(mask, p) (::cdas_emu::vote(::cdas_emu::kAny, mask, p, "__any_sync", __FILE__, __LINE__) != 0)
#define __all_sync(mask, p) (::cdas_emu::vote(::cdas_emu::kAll, mask, p, "__all_sync", __FILE__, __LINE__) != 0)
#define __activemask() (::cdas_emu::lanes_alive())
#define __trap() ::cdas_emu::trap("__trap()", __FILE__, __LINE__)

namespace cdas_emu {
inline void syncwarp(const char* file, int line, unsigned mask = 0xffffffffu) {
    warp_collective(kSyncWarp, mask, nullptr, &nothing_complete, "__syncwarp", file, line);
}
}  // namespace cdas_emu

inline void __threadfence() {}
inline void __threadfence_block() {}
template <class T>
inline T __ldg(const T* p) { return *p; }

// ---- atomics (fibers interleave only at synchronisation points; still done atomically) ---------------
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline float atomicAdd(float* p, float v) {
    float old = *p, desired;
    do {
        desired = old + v;
    } while (!__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return old;
}
inline int atomicMax(int* p, int v) {
    int old = *p;
    while (old < v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline int atomicMin(int* p, int v) {
    int old = *p;
    while (old > v && !__atomic_compare_exchange_n(p, &old, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
    return old;
}
inline int atomicExch(int* p, int v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicExch(unsigned* p, unsigned v) { return __atomic_exchange_n(p, v, __ATOMIC_RELAXED); }
inline int atomicOr(int* p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline int atomicCAS(int* p, int compare, int v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;
}
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) {
    __atomic_compare_exchange_n(p, &compare, v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    return compare;
}

#endif  // CDAS_CUDA_EMU_H
