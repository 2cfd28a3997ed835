/*
 * libcdas_cuda.so's one exported symbol, cdas_cuda_backend_get(), and what every operation
 * shares: the per-context state (device, the caller's stream, a cuBLAS handle, a reusable
 * workspace with its high-water mark), error messages and the device-side input checks.
 *
 * libcdas validates the arguments before calling in; everything here still turns every failure
 * into a status plus a one-line message and never lets an exception out of a table function.
 */
#include <cstdarg>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <new>

#include "cuda/common.cuh"

namespace cdas_cuda {

void set_error(char* error, size_t len, const char* fmt, ...) {
    if (error == nullptr || len == 0) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(error, len, fmt, args);
    va_end(args);
}

cdas_status cuda_failure(cudaError_t err, const char* what, char* error, size_t len) {
    cudaGetLastError();  // clear a non-sticky error so the next call starts clean
    set_error(error, len, "cuda: %s failed: %s (%s)", what, cudaGetErrorString(err), cudaGetErrorName(err));
    return err == cudaErrorMemoryAllocation ? CDAS_STATUS_OUT_OF_MEMORY : CDAS_STATUS_DEVICE_ERROR;
}

cdas_status cublas_failure(cublasStatus_t st, const char* what, char* error, size_t len) {
    set_error(error, len, "cublas: %s failed: %s (%d)", what, cublasGetStatusString(st), static_cast<int>(st));
    return st == CUBLAS_STATUS_ALLOC_FAILED ? CDAS_STATUS_OUT_OF_MEMORY : CDAS_STATUS_DEVICE_ERROR;
}

static void note_peak(cdas_cuda_state* s) {
    int64_t held = static_cast<int64_t>(s->workspace_bytes);
    if (held > s->peak_bytes) s->peak_bytes = held;
}

cdas_status workspace_get(cdas_cuda_state* s, size_t bytes, void** out, char* error, size_t error_len) {
    if (bytes == 0) bytes = 256;
    if (bytes > s->workspace_bytes) {
        if (s->workspace != nullptr) {
            CDAS_CUDA_CHECK(cudaStreamSynchronize(s->stream), "synchronising before growing the workspace");
            CDAS_CUDA_CHECK(cudaFree(s->workspace), "cudaFree(workspace)");
            s->workspace = nullptr;
            s->workspace_bytes = 0;
        }
        size_t rounded = (bytes + (size_t(1) << 20) - 1) & ~((size_t(1) << 20) - 1);  // whole MiB
        cudaError_t err = cudaMalloc(&s->workspace, rounded);
        if (err != cudaSuccess) {
            s->workspace = nullptr;
            cudaGetLastError();
            set_error(error, error_len, "cuda: cannot allocate a %.1f MiB workspace: %s",
                      static_cast<double>(rounded) / (1 << 20), cudaGetErrorString(err));
            return err == cudaErrorMemoryAllocation ? CDAS_STATUS_OUT_OF_MEMORY : CDAS_STATUS_DEVICE_ERROR;
        }
        s->workspace_bytes = rounded;
        note_peak(s);
    }
    *out = s->workspace;
    return CDAS_STATUS_OK;
}

// ---- device-side input checks ----------------------------------------------------------------

// Non-finite <=> all exponent bits set; checked on the raw bits so no value is converted.
template <typename Bits, Bits kExponent>
__global__ void non_finite_kernel(const Bits* __restrict__ data, int64_t count, int* __restrict__ flag) {
    int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    bool bad = false;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
        bad |= (data[i] & kExponent) == kExponent;
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;  // every writer writes 1: no race on the value
}

// The same on 16-byte vectors, for aligned buffers (the common case: cudaMalloc'd tensors).
template <typename Bits, Bits kExponent>
__global__ void non_finite_vec_kernel(const uint4* __restrict__ data, int64_t vectors, int* __restrict__ flag) {
    constexpr int kPer = 16 / sizeof(Bits);
    int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    bool bad = false;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < vectors; i += stride) {
        uint4 v = data[i];
        const Bits* b = reinterpret_cast<const Bits*>(&v);
#pragma unroll
        for (int k = 0; k < kPer; ++k) bad |= (b[k] & kExponent) == kExponent;
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

__global__ void example_index_kernel(const int32_t* __restrict__ index, int64_t rows, int64_t examples,
                                     int* __restrict__ flag) {
    int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
    bool bad = false;
    for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < rows; i += stride) {
        int32_t e = index[i];
        bad |= e < 0 || e >= examples;
    }
    if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

template <typename Bits, Bits kExponent>
static void launch_non_finite(const void* data, int64_t count, int* flag, int sm_count, cudaStream_t stream) {
    const int threads = 256;
    const int64_t max_blocks = static_cast<int64_t>(sm_count) * 8;
    uintptr_t addr = reinterpret_cast<uintptr_t>(data);
    constexpr int64_t kPer = 16 / sizeof(Bits);
    int64_t vectors = (addr % 16 == 0) ? count / kPer : 0;
    if (vectors > 0) {
        int blocks = static_cast<int>(std::min<int64_t>(max_blocks, (vectors + threads - 1) / threads));
        CDAS_LAUNCH(blocks, threads, 0, stream, non_finite_vec_kernel<Bits, kExponent>)(
            static_cast<const uint4*>(data), vectors, flag);
    }
    int64_t done = vectors * kPer, rest = count - done;
    if (rest > 0) {
        int blocks = static_cast<int>(std::min<int64_t>(max_blocks, (rest + threads - 1) / threads));
        CDAS_LAUNCH(blocks, threads, 0, stream, non_finite_kernel<Bits, kExponent>)(
            static_cast<const Bits*>(data) + done, rest, flag);
    }
}

static const char* dtype_name(int32_t dtype) {
    switch (dtype) {
        case CDAS_DTYPE_F32: return "f32";
        case CDAS_DTYPE_BF16: return "bf16";
        case CDAS_DTYPE_F16: return "f16";
        default: return "?";
    }
}

cdas_status check_inputs(cdas_cuda_state* s, const CheckedInput* inputs, int count,
                         const int32_t* example_index, int64_t rows, int64_t examples,
                         char* error, size_t error_len) {
    if (count > kMaxCheckedInputs - 1) {
        set_error(error, error_len, "cuda: internal: too many inputs to check (%d)", count);
        return CDAS_STATUS_INTERNAL;
    }
    CDAS_CUDA_CHECK(cudaMemsetAsync(s->check_flags, 0, sizeof(int) * kMaxCheckedInputs, s->stream),
                    "clearing the input-check flags");
    for (int i = 0; i < count; ++i) {
        const CheckedInput& in = inputs[i];
        if (in.data == nullptr || in.count <= 0) continue;
        int* flag = s->check_flags + i;
        switch (in.dtype) {
            case CDAS_DTYPE_F32:
                launch_non_finite<uint32_t, 0x7F800000u>(in.data, in.count, flag, s->sm_count, s->stream);
                break;
            case CDAS_DTYPE_BF16:
                launch_non_finite<uint16_t, 0x7F80>(in.data, in.count, flag, s->sm_count, s->stream);
                break;
            case CDAS_DTYPE_F16:
                launch_non_finite<uint16_t, 0x7C00>(in.data, in.count, flag, s->sm_count, s->stream);
                break;
            default:
                set_error(error, error_len, "%s: unsupported dtype %d", in.name, in.dtype);
                return CDAS_STATUS_UNSUPPORTED;
        }
    }
    int index_slot = kMaxCheckedInputs - 1;
    if (example_index != nullptr && rows > 0) {
        int blocks = static_cast<int>(std::min<int64_t>(s->sm_count * 4, (rows + 255) / 256));
        CDAS_LAUNCH(blocks, 256, 0, s->stream, example_index_kernel)(example_index, rows, examples, s->check_flags + index_slot);
    }
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the input checks");
    CDAS_CUDA_CHECK(cudaMemcpyAsync(s->check_flags_host, s->check_flags, sizeof(int) * kMaxCheckedInputs,
                                    cudaMemcpyDeviceToHost, s->stream),
                    "reading back the input-check flags");
    CDAS_CUDA_CHECK(cudaStreamSynchronize(s->stream), "running the input checks");
    for (int i = 0; i < count; ++i) {
        if (s->check_flags_host[i] != 0) {
            set_error(error, error_len, "%s: NaN or infinity in the input (%s, %lld elements, checked on the device)",
                      inputs[i].name, dtype_name(inputs[i].dtype), static_cast<long long>(inputs[i].count));
            return CDAS_STATUS_NON_FINITE;
        }
    }
    if (s->check_flags_host[index_slot] != 0) {
        set_error(error, error_len, "example_index: a row's example index is outside [0, %lld)",
                  static_cast<long long>(examples));
        return CDAS_STATUS_INVALID_ARGUMENT;
    }
    return CDAS_STATUS_OK;
}

}  // namespace cdas_cuda

using namespace cdas_cuda;

// ---- the table ---------------------------------------------------------------------------------

static int32_t backend_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return n;
}

static void state_release(cdas_cuda_state* s) {
    if (s == nullptr) return;
    DeviceGuard guard(s->device);
    if (s->stream != nullptr || s->workspace != nullptr) cudaStreamSynchronize(s->stream);
    if (s->aux != nullptr) cudaStreamSynchronize(s->aux);  // it may still read the workspace
    if (s->blas != nullptr) cublasDestroy(s->blas);
    if (s->workspace != nullptr) cudaFree(s->workspace);
    if (s->check_flags != nullptr) cudaFree(s->check_flags);
    if (s->check_flags_host != nullptr) cudaFreeHost(s->check_flags_host);
    if (s->device_error != nullptr) cudaFree(s->device_error);
    if (s->device_error_host != nullptr) cudaFreeHost(s->device_error_host);
    if (s->stream_switch != nullptr) cudaEventDestroy(s->stream_switch);
    if (s->aux != nullptr) cudaStreamDestroy(s->aux);
    for (cudaEvent_t& e : s->aux_events)
        if (e != nullptr) cudaEventDestroy(e);
    cudaGetLastError();
    delete s;
}

static cdas_status backend_state_create(int32_t device_index, void* stream, int32_t check_inputs,
                                        cdas_cuda_state** out, char* error, size_t error_len) {
    try {
        if (out == nullptr) {
            set_error(error, error_len, "state_create: state is NULL");
            return CDAS_STATUS_INVALID_ARGUMENT;
        }
        *out = nullptr;
        int n = backend_device_count();
        if (device_index < 0 || device_index >= n) {
            set_error(error, error_len, "cuda: device %d does not exist (%d CUDA device%s visible)", device_index, n,
                      n == 1 ? "" : "s");
            return n == 0 ? CDAS_STATUS_UNSUPPORTED : CDAS_STATUS_INVALID_ARGUMENT;
        }
        DeviceGuard guard(device_index);
        if (!guard.ok()) {
            set_error(error, error_len, "cuda: cannot make device %d current", device_index);
            return CDAS_STATUS_DEVICE_ERROR;
        }
        cdas_cuda_state* s = new (std::nothrow) cdas_cuda_state();
        if (s == nullptr) {
            set_error(error, error_len, "cuda: out of host memory for the context state");
            return CDAS_STATUS_OUT_OF_MEMORY;
        }
        s->device = device_index;
        s->stream = static_cast<cudaStream_t>(stream);
        s->check_inputs = check_inputs != 0;
        cdas_status st = CDAS_STATUS_OK;
        auto fail = [&](cdas_status status) {
            state_release(s);
            return status;
        };
        cudaError_t err = cudaDeviceGetAttribute(&s->sm_count, cudaDevAttrMultiProcessorCount, device_index);
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaDeviceGetAttribute(SM count)", error, error_len));
        err = cudaDeviceGetAttribute(&s->shared_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_index);
        if (err != cudaSuccess)
            return fail(cuda_failure(err, "cudaDeviceGetAttribute(shared memory per block, opt-in)", error, error_len));
        err = cudaMalloc(&s->check_flags, sizeof(int) * kMaxCheckedInputs);
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaMalloc(check flags)", error, error_len));
        err = cudaMallocHost(&s->check_flags_host, sizeof(int) * kMaxCheckedInputs);
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaMallocHost(check flags)", error, error_len));
        err = cudaMalloc(&s->device_error, sizeof(int));
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaMalloc(device error flag)", error, error_len));
        err = cudaMemset(s->device_error, 0, sizeof(int));  // once, before the state is used on any stream
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaMemset(device error flag)", error, error_len));
        err = cudaMallocHost(&s->device_error_host, sizeof(int));
        if (err != cudaSuccess) return fail(cuda_failure(err, "cudaMallocHost(device error flag)", error, error_len));
        err = cudaEventCreate(&s->stream_switch);
        if (err != cudaSuccess) {
            s->stream_switch = nullptr;
            return fail(cuda_failure(err, "cudaEventCreate", error, error_len));
        }
        cublasStatus_t bst = cublasCreate(&s->blas);
        if (bst != CUBLAS_STATUS_SUCCESS) {
            s->blas = nullptr;
            return fail(cublas_failure(bst, "cublasCreate", error, error_len));
        }
        bst = cublasSetStream(s->blas, s->stream);
        if (bst != CUBLAS_STATUS_SUCCESS) return fail(cublas_failure(bst, "cublasSetStream", error, error_len));
        // Default math with CUBLAS_COMPUTE_32F everywhere: fp32 GEMMs stay fp32 (TF32 is opt-in and
        // not asked for), bf16/f16 GEMMs run on tensor cores with fp32 accumulation.
        bst = cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH);
        if (bst != CUBLAS_STATUS_SUCCESS) return fail(cublas_failure(bst, "cublasSetMathMode", error, error_len));
        s->peak_bytes = 0;
        *out = s;
        return st;
    } catch (...) {
        set_error(error, error_len, "cuda: internal error while creating the context state");
        return CDAS_STATUS_INTERNAL;
    }
}

static void backend_state_destroy(cdas_cuda_state* s) {
    try {
        state_release(s);
    } catch (...) {
    }
}

static int64_t backend_peak_workspace_bytes(const cdas_cuda_state* s) { return s == nullptr ? 0 : s->peak_bytes; }

static cdas_status backend_synchronize(cdas_cuda_state* s, char* error, size_t error_len) {
    try {
        DeviceGuard guard(s->device);
        CDAS_CUDA_CHECK(cudaMemcpyAsync(s->device_error_host, s->device_error, sizeof(int), cudaMemcpyDeviceToHost,
                                        s->stream),
                        "reading back the device error flag");
        CDAS_CUDA_CHECK(cudaStreamSynchronize(s->stream), "cudaStreamSynchronize");
        const int bits = *s->device_error_host;
        if (bits != 0) {
            CDAS_CUDA_CHECK(cudaMemsetAsync(s->device_error, 0, sizeof(int), s->stream), "clearing the device error flag");
            if (bits & kDeviceErrorExampleIndex) {
                set_error(error, error_len,
                          "example_index: a call since the last synchronize had a row whose example index is outside "
                          "[0, examples); that call's outputs are invalid (NaN on those rows)");
                return CDAS_STATUS_INVALID_ARGUMENT;
            }
            set_error(error, error_len, "cuda: internal: unknown device error bits 0x%x", bits);
            return CDAS_STATUS_INTERNAL;
        }
        return CDAS_STATUS_OK;
    } catch (...) {
        set_error(error, error_len, "cuda: internal error in synchronize");
        return CDAS_STATUS_INTERNAL;
    }
}

static cdas_status backend_set_stream(cdas_cuda_state* s, void* stream, char* error, size_t error_len) {
    try {
        cudaStream_t next = static_cast<cudaStream_t>(stream);
        if (next == s->stream) return CDAS_STATUS_OK;
        DeviceGuard guard(s->device);
        if (!guard.ok()) {
            set_error(error, error_len, "cuda: cannot make device %d current", s->device);
            return CDAS_STATUS_DEVICE_ERROR;
        }
        // Work queued on the old stream may still read or write the workspace: the new stream
        // waits for it on the device (no host synchronisation).
        CDAS_CUDA_CHECK(cudaEventRecord(s->stream_switch, s->stream), "cudaEventRecord(old stream)");
        CDAS_CUDA_CHECK(cudaStreamWaitEvent(next, s->stream_switch, 0), "cudaStreamWaitEvent(new stream)");
        CDAS_CUBLAS_CHECK(cublasSetStream(s->blas, next), "cublasSetStream");
        s->stream = next;
        return CDAS_STATUS_OK;
    } catch (...) {
        set_error(error, error_len, "cuda: internal error in set_stream");
        return CDAS_STATUS_INTERNAL;
    }
}

// Every operation runs with the state's device current and behind a catch-all.
#define CDAS_BACKEND_ENTRY(state, body)                                                        \
    try {                                                                                      \
        DeviceGuard guard((state)->device);                                                    \
        if (!guard.ok()) {                                                                     \
            set_error(error, error_len, "cuda: cannot make device %d current", (state)->device); \
            return CDAS_STATUS_DEVICE_ERROR;                                                   \
        }                                                                                      \
        body;                                                                                  \
    } catch (const std::bad_alloc&) {                                                          \
        set_error(error, error_len, "cuda: out of host memory");                               \
        return CDAS_STATUS_OUT_OF_MEMORY;                                                      \
    } catch (...) {                                                                            \
        set_error(error, error_len, "cuda: internal error");                                   \
        return CDAS_STATUS_INTERNAL;                                                           \
    }

static cdas_status backend_dii_forward(
    cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, void* h_out, float* source_values_out,
    char* error, size_t error_len) {
    CDAS_BACKEND_ENTRY(state, return cdas_cuda_dii_forward(state, dtype, rows, dim, rank, examples, sets, h, directions,
                                                           source, values, example_index, example_set, mask, h_out,
                                                           source_values_out, error, error_len))
}

static cdas_status backend_dii_backward(
    cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out, void* grad_h,
    float* grad_directions, float* grad_values, char* error, size_t error_len) {
    CDAS_BACKEND_ENTRY(state, return cdas_cuda_dii_backward(state, dtype, rows, dim, rank, examples, sets, h, directions,
                                                            source, values, example_index, example_set, mask, grad_out, grad_h,
                                                            grad_directions, grad_values, error, error_len))
}

static cdas_status backend_lm_head_jsd(
    cdas_cuda_state* state, int32_t schedule, int32_t chunk_rows, int32_t dtype, int64_t rows, int64_t dim,
    int64_t vocab, const void* x_student, const void* x_teacher, const void* head, float softcap,
    const uint8_t* mask, float grad_scale, float* loss_out, float* row_loss_out, float* grad_student_out,
    char* error, size_t error_len) {
    CDAS_BACKEND_ENTRY(state, return cdas_cuda_lm_head_jsd(state, schedule, chunk_rows, dtype, rows, dim, vocab,
                                                           x_student, x_teacher, head, softcap, mask, grad_scale,
                                                           loss_out, row_loss_out, grad_student_out, error,
                                                           error_len))
}

static cdas_status backend_memory_info(int32_t device_index, int64_t* free_bytes, int64_t* total_bytes, char* error,
                                       size_t error_len) {
    const int n = backend_device_count();
    if (device_index < 0 || device_index >= n) {
        set_error(error, error_len, "cuda: device %d does not exist (%d CUDA device%s visible)", device_index, n,
                  n == 1 ? "" : "s");
        return n == 0 ? CDAS_STATUS_UNSUPPORTED : CDAS_STATUS_INVALID_ARGUMENT;
    }
    DeviceGuard guard(device_index);
    size_t free_now = 0, total = 0;
    if (!guard.ok() || cudaMemGetInfo(&free_now, &total) != cudaSuccess) {
        cudaGetLastError();
        set_error(error, error_len, "cuda: cannot read the free memory of device %d", device_index);
        return CDAS_STATUS_DEVICE_ERROR;
    }
    *free_bytes = int64_t(free_now);
    *total_bytes = int64_t(total);
    return CDAS_STATUS_OK;
}

static const cdas_cuda_backend kBackend = {
    CDAS_CUDA_BACKEND_ABI_VERSION,
    backend_device_count,
    backend_state_create,
    backend_state_destroy,
    backend_peak_workspace_bytes,
    backend_synchronize,
    backend_dii_forward,
    backend_dii_backward,
    backend_lm_head_jsd,
    backend_set_stream,
    backend_memory_info,
};

extern "C" __attribute__((visibility("default"))) const cdas_cuda_backend* cdas_cuda_backend_get(void) {
    return &kBackend;
}
