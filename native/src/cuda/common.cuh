/*
 * Shared pieces of the CUDA backend: the per-context state, error reporting into the caller's
 * buffer (no exception ever leaves the backend table), dtype load/store helpers with fp32
 * arithmetic, deterministic block reductions, the reusable workspace and the device-side checks
 * of the inputs (NaN/infinity, example indices).
 */
#ifndef CDAS_CUDA_COMMON_CUH
#define CDAS_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "cuda/cuda_backend.h"

// The three spellings that differ between nvcc and the CPU emulation (native/src/cuda/emu): a
// kernel launch, a static __shared__ variable and the dynamic shared-memory array. Under nvcc they
// are the plain CUDA syntax; under the emulation (CDAS_CUDA_EMULATION, defined by emu's
// cuda_runtime.h) cuda_emu.h gives them per-block meaning on the CPU.
#ifndef CDAS_CUDA_EMULATION
// CDAS_LAUNCH(grid, block, shared_bytes, stream, kernel)(arguments...)
#define CDAS_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
// CDAS_SHARED(float, scratch, [32]) declares `__shared__ float scratch[32]`; dims may be empty.
#define CDAS_SHARED(type, name, dims) __shared__ type name dims
// CDAS_DYNAMIC_SHARED(char, smem) declares the block's dynamic shared memory, 128-byte aligned.
#define CDAS_DYNAMIC_SHARED(type, name) extern __shared__ __align__(128) type name[]
#endif

struct cdas_cuda_state {
    int device = 0;
    cudaStream_t stream = nullptr;  // the caller's stream (not owned); NULL = legacy default
    cudaEvent_t stream_switch = nullptr; // orders the old stream's work before the new one's (set_stream)
    bool check_inputs = false;      // cdas_context_options.check_inputs: scan inputs before each call (syncs)
    int* device_error = nullptr;    // device: sticky kDeviceError* bits set by kernels, read by synchronize
    int* device_error_host = nullptr; // pinned copy of it
    cublasHandle_t blas = nullptr;
    void* workspace = nullptr;      // grows on demand, reused between calls
    size_t workspace_bytes = 0;
    int64_t peak_bytes = 0;         // high-water mark of everything the state holds
    int* check_flags = nullptr;     // device: one int per checked input
    int* check_flags_host = nullptr; // pinned copy read back after the checks
    int sm_count = 1;
    int shared_optin = 48 * 1024;   // cudaDevAttrMaxSharedMemoryPerBlockOptin: dynamic shared memory with opt-in
    // The LM-head path's second stream (owned, non-blocking, created on first use) and its events:
    // the row kernel of one chunk runs there while the next chunk's GEMMs run on `stream`.
    cudaStream_t aux = nullptr;
    cudaEvent_t aux_events[8] = {};
};

namespace cdas_cuda {

constexpr int kMaxCheckedInputs = 8;

// Bits of cdas_cuda_state::device_error.
constexpr int kDeviceErrorExampleIndex = 1;  // a row's example index was outside [0, examples)

// Formats a one-line message into error[0..len).
void set_error(char* error, size_t len, const char* fmt, ...) __attribute__((format(printf, 3, 4)));

// Maps a CUDA runtime error to a status and a message naming the failed step.
cdas_status cuda_failure(cudaError_t err, const char* what, char* error, size_t len);
cdas_status cublas_failure(cublasStatus_t st, const char* what, char* error, size_t len);

#define CDAS_CUDA_CHECK(expr, what)                                                         \
    do {                                                                                    \
        cudaError_t cdas_err_ = (expr);                                                     \
        if (cdas_err_ != cudaSuccess) return ::cdas_cuda::cuda_failure(cdas_err_, what, error, error_len); \
    } while (0)

#define CDAS_CUBLAS_CHECK(expr, what)                                                       \
    do {                                                                                    \
        cublasStatus_t cdas_st_ = (expr);                                                   \
        if (cdas_st_ != CUBLAS_STATUS_SUCCESS) return ::cdas_cuda::cublas_failure(cdas_st_, what, error, error_len); \
    } while (0)

#define CDAS_RETURN_IF_ERROR(...)                   \
    do {                                            \
        cdas_status cdas_s_ = (__VA_ARGS__);        \
        if (cdas_s_ != CDAS_STATUS_OK) return cdas_s_; \
    } while (0)

// Makes the state's device current for the lifetime of the guard and restores the previous one.
class DeviceGuard {
  public:
    explicit DeviceGuard(int device) {
        if (cudaGetDevice(&previous_) != cudaSuccess) previous_ = -1;
        ok_ = cudaSetDevice(device) == cudaSuccess;
    }
    ~DeviceGuard() {
        if (previous_ >= 0) cudaSetDevice(previous_);
    }
    bool ok() const { return ok_; }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

  private:
    int previous_ = -1;
    bool ok_ = false;
};

// Returns a workspace of at least `bytes` (256-byte aligned), growing the state's buffer when
// needed. Growing synchronises the stream first: work queued earlier may still use the old one.
cdas_status workspace_get(cdas_cuda_state* s, size_t bytes, void** out, char* error, size_t error_len);

// Carves aligned sub-buffers out of one workspace allocation.
class WorkspaceLayout {
  public:
    template <typename T>
    size_t add(size_t count) {
        size_t offset = (bytes_ + 255) & ~size_t(255);
        bytes_ = offset + count * sizeof(T);
        return offset;
    }
    size_t bytes() const { return (bytes_ + 255) & ~size_t(255); }

  private:
    size_t bytes_ = 0;
};

template <typename T>
inline T* at(void* base, size_t offset) {
    return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

// One input to check on the device before a kernel runs.
struct CheckedInput {
    const char* name;
    int32_t dtype;    // cdas_dtype
    const void* data; // may be NULL (skipped)
    int64_t count;
};

// Only with cdas_context_options.check_inputs set (the callers skip it otherwise):
// scans every input for NaN/infinity (and, when example_index is given, indices outside
// [0, examples)) on the state's stream, reads the flags back once and turns the first hit into
// CDAS_STATUS_NON_FINITE (or INVALID_ARGUMENT for an index) naming the argument.
cdas_status check_inputs(cdas_cuda_state* s, const CheckedInput* inputs, int count,
                         const int32_t* example_index, int64_t rows, int64_t examples,
                         char* error, size_t error_len);

// ---- device helpers ----------------------------------------------------------------------

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Deterministic sum over the block (fixed tree); every thread gets the result. `scratch` holds
// at least 32 floats; the block size is a multiple of 32.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();  // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : 0.0f;
    return warp_sum(t);
}

// log(exp(a) + exp(b)) without overflow; -inf when both are -inf.
__device__ __forceinline__ float log_add_exp(float a, float b) {
    float m = fmaxf(a, b);
    if (m == -INFINITY) return -INFINITY;
    return m + log1pf(expf(-fabsf(a - b)));
}

inline int ceil_div_int(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace cdas_cuda

// The operations, one per .cu file; the backend table (backend.cu) points at these.
cdas_status cdas_cuda_dii_forward(
    cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
    void* h_out, float* source_values_out, char* error, size_t error_len);

cdas_status cdas_cuda_dii_backward(
    cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values, char* error, size_t error_len);

cdas_status cdas_cuda_lm_head_jsd(
    cdas_cuda_state* state, int32_t schedule, int32_t chunk_rows,
    int32_t dtype, int64_t rows, int64_t dim, int64_t vocab,
    const void* x_student, const void* x_teacher, const void* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out, char* error, size_t error_len);

#endif  // CDAS_CUDA_COMMON_CUH
