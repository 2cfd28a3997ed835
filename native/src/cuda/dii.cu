/*
 * DII, the rank-r distributed interchange intervention, forward and backward on the GPU
 * (cdas.h: cdas_dii_forward / cdas_dii_backward; the CPU twins in native/src/cpu are the spec
 * this must match: same math, same masking, same meaning of every nullable output).
 *
 *   forward   h'_t = h_t + W^T (a_e - W h_t)                       (rows with mask != 0)
 *   backward  dL/dh_t = g_t - W^T W g_t
 *             dL/da_e = sum_{t in e} W g_t
 *             dL/dW   = sum_t (a_e - W h_t) g_t^T - (W g_t) h_t^T  +  sum_e (dL/da_e) s_e^T
 *
 * The last term is the source path a_e = W s_e folded per example: sum_t (W g_t) s_e^T =
 * sum_e (sum_{t in e} W g_t) s_e^T, so the row pass never touches s.
 *
 * What is fused and why: the operation is memory-bound (docs/method.md section 2), so each kernel
 * makes one pass over its rows: the forward reads h once and writes h' once; the backward reads
 * h and g once (the second touch of a row comes from L1), writes dL/dh and accumulates its
 * rows' share of dL/dW in one go. All arithmetic is fp32 whatever the storage dtype.
 *
 * Determinism: dL/dW is reduced without float atomics. Every block owns a fixed number of rows
 * (kRowsPerBlock, independent of the GPU) and accumulates into its own [r x d] partial (shared
 * memory when it fits, else its slice of the workspace); a second kernel sums the partials in
 * block order. dL/da_e is a fixed-order block reduction over the rows. Repeating a call gives
 * bitwise identical results.
 */
#include <algorithm>

#include "cuda/common.cuh"

namespace cdas_cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kRowsPerBlock = 32;
constexpr size_t kSharedAccumulatorBytes = 40 * 1024;
// Shared memory a block may use without opting in (cudaFuncSetAttribute): static + dynamic.
constexpr size_t kSharedLimitBytes = 48 * 1024;
// The static `scratch` of dii_forward_kernel and dii_backward_rows_kernel (CDAS_SHARED(float,
// scratch, [32]), block_sum's 32 floats); counted with the dynamic part against the limit.
constexpr size_t kStaticScratchBytes = 32 * sizeof(float);
// Largest ranks whose dynamic shared memory (forward: rank floats; backward: 2 x rank floats, plus
// the [rank x dim] accumulator only when that fits too) fits beside the static scratch.
constexpr int64_t kMaxForwardRank = static_cast<int64_t>((kSharedLimitBytes - kStaticScratchBytes) / sizeof(float));
constexpr int64_t kMaxBackwardRank =
    static_cast<int64_t>((kSharedLimitBytes - kStaticScratchBytes) / (2 * sizeof(float)));

// A row whose example index is outside [0, examples) is never used to index anything: the kernel
// sets this bit in the state's device error word (read back by synchronize), writes NaN to the
// row's outputs and leaves it out of every reduction.
__device__ __forceinline__ bool bad_example(int64_t e, int64_t examples, int* error_flag) {
    if (e >= 0 && e < examples) return false;
    if (threadIdx.x == 0) atomicOr(error_flag, kDeviceErrorExampleIndex);
    return true;
}

// a_e = W s_e (source given) or the given values; also copied to source_values_out.
template <typename T>
__global__ void dii_clamp_values_kernel(int64_t dim, int64_t rank, const float* __restrict__ directions,
                                        const T* __restrict__ source, const float* __restrict__ values,
                                        float* __restrict__ a, float* __restrict__ a_out) {
    CDAS_SHARED(float, scratch, [32]);
    const int64_t e = blockIdx.x;
    for (int64_t i = 0; i < rank; ++i) {
        float v;
        if (source != nullptr) {
            float partial = 0.0f;
            for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
                partial += directions[i * dim + j] * to_float(source[e * dim + j]);
            v = block_sum(partial, scratch);
        } else {
            v = values[e * rank + i];
        }
        if (threadIdx.x == 0) {
            a[e * rank + i] = v;
            if (a_out != nullptr) a_out[e * rank + i] = v;
        }
    }
}

// One block per row. h_out may alias h: each thread reads an element before it writes it, and
// the projection is complete (block_sum's barrier) before any write.
template <typename T>
__global__ void dii_forward_kernel(int64_t dim, int64_t rank, int64_t examples, const T* h,
                                   const float* __restrict__ directions, const float* __restrict__ a,
                                   const int32_t* __restrict__ example_index, const uint8_t* __restrict__ mask,
                                   T* h_out, int* __restrict__ error_flag) {
    CDAS_DYNAMIC_SHARED(float, coeff);  // [rank]: a_e - W h_t
    CDAS_SHARED(float, scratch, [32]);
    const int64_t t = blockIdx.x;
    const T* row = h + t * dim;
    T* out = h_out + t * dim;
    // Every row's index is checked, masked or not (as the CPU path validates them all).
    const int64_t e = example_index != nullptr ? example_index[t] : 0;
    if (bad_example(e, examples, error_flag)) {  // the same branch for the whole block
        for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[j] = from_float<T>(NAN);
        return;
    }
    if (mask != nullptr && mask[t] == 0) {
        if (out != row)
            for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) out[j] = row[j];
        return;
    }
    for (int64_t i = 0; i < rank; ++i) {
        float partial = 0.0f;
        for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) partial += directions[i * dim + j] * to_float(row[j]);
        float p = block_sum(partial, scratch);
        if (threadIdx.x == 0) coeff[i] = a[e * rank + i] - p;
    }
    __syncthreads();
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
        float v = to_float(row[j]);
        for (int64_t i = 0; i < rank; ++i) v += directions[i * dim + j] * coeff[i];
        out[j] = from_float<T>(v);
    }
}

// Rows [blockIdx.x * kRowsPerBlock, ...): dL/dh, W g_t per row (for dL/da) and the block's
// partial of dL/dW (without the source term). grad_out may alias grad_h (same read-then-write
// discipline as the forward).
template <typename T>
__global__ void dii_backward_rows_kernel(int64_t rows, int64_t dim, int64_t rank, int64_t examples, const T* h,
                                         const float* __restrict__ directions, const float* __restrict__ a,
                                         const int32_t* __restrict__ example_index, const uint8_t* __restrict__ mask,
                                         const T* grad_out, T* grad_h, float* __restrict__ wg,
                                         float* __restrict__ partials, int shared_accumulator,
                                         int* __restrict__ error_flag) {
    CDAS_DYNAMIC_SHARED(float, smem);  // [2 * rank] coefficients, then [rank x dim] accumulator if shared
    CDAS_SHARED(float, scratch, [32]);
    float* coeff = smem;        // a_e - W h_t
    float* proj = smem + rank;  // W g_t
    float* acc = shared_accumulator ? smem + 2 * rank : partials + blockIdx.x * rank * dim;
    const bool want_dw = partials != nullptr;
    if (want_dw)
        for (int64_t k = threadIdx.x; k < rank * dim; k += blockDim.x) acc[k] = 0.0f;  // own elements only

    const int64_t first = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock;
    const int64_t last = min(rows, first + kRowsPerBlock);
    for (int64_t t = first; t < last; ++t) {
        const T* hr = h + t * dim;
        const T* gr = grad_out + t * dim;
        T* dh = grad_h != nullptr ? grad_h + t * dim : nullptr;
        const int64_t e = example_index != nullptr ? example_index[t] : 0;
        if (bad_example(e, examples, error_flag)) {  // uniform over the block: no barrier is skipped by part of it
            if (dh != nullptr)
                for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dh[j] = from_float<T>(NAN);
            if (wg != nullptr && threadIdx.x == 0)
                for (int64_t i = 0; i < rank; ++i) wg[t * rank + i] = NAN;  // no example sums this row
            continue;
        }
        if (mask != nullptr && mask[t] == 0) {
            if (dh != nullptr && dh != gr)
                for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) dh[j] = gr[j];
            if (wg != nullptr && threadIdx.x == 0)
                for (int64_t i = 0; i < rank; ++i) wg[t * rank + i] = 0.0f;
            continue;
        }
        for (int64_t i = 0; i < rank; ++i) {
            float ph = 0.0f, pg = 0.0f;
            for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
                float w = directions[i * dim + j];
                ph += w * to_float(hr[j]);
                pg += w * to_float(gr[j]);
            }
            ph = block_sum(ph, scratch);
            pg = block_sum(pg, scratch);
            if (threadIdx.x == 0) {
                coeff[i] = a[e * rank + i] - ph;
                proj[i] = pg;
                if (wg != nullptr) wg[t * rank + i] = pg;
            }
        }
        __syncthreads();
        for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
            const float gv = to_float(gr[j]);
            const float hv = to_float(hr[j]);
            if (dh != nullptr) {
                float v = gv;
                for (int64_t i = 0; i < rank; ++i) v -= directions[i * dim + j] * proj[i];
                dh[j] = from_float<T>(v);
            }
            if (want_dw)
                for (int64_t i = 0; i < rank; ++i) acc[i * dim + j] += coeff[i] * gv - proj[i] * hv;
        }
        __syncthreads();  // coeff/proj are rewritten by the next row
    }
    if (want_dw && shared_accumulator) {
        float* out = partials + blockIdx.x * rank * dim;
        for (int64_t k = threadIdx.x; k < rank * dim; k += blockDim.x) out[k] = acc[k];
    }
}

// dL/da_e[i] = sum over rows of example e of (W g_t)[i]: one block per (e, i), fixed order.
__global__ void dii_grad_values_kernel(int64_t rows, int64_t rank, const int32_t* __restrict__ example_index,
                                       const uint8_t* __restrict__ mask, const float* __restrict__ wg,
                                       float* __restrict__ grad_a, float* __restrict__ grad_values) {
    CDAS_SHARED(float, scratch, [32]);
    const int64_t e = blockIdx.x / rank, i = blockIdx.x % rank;
    float partial = 0.0f;
    for (int64_t t = threadIdx.x; t < rows; t += blockDim.x) {
        const int64_t et = example_index != nullptr ? example_index[t] : 0;
        if (et == e && (mask == nullptr || mask[t] != 0)) partial += wg[t * rank + i];
    }
    float total = block_sum(partial, scratch);
    if (threadIdx.x == 0) {
        grad_a[blockIdx.x] = total;
        if (grad_values != nullptr) grad_values[blockIdx.x] = total;
    }
}

// Second stage: dL/dW = sum of the block partials in block order, plus sum_e (dL/da_e) s_e^T.
template <typename T>
__global__ void dii_grad_directions_kernel(int64_t dim, int64_t rank, int64_t blocks, int64_t examples,
                                           const float* __restrict__ partials, const float* __restrict__ grad_a,
                                           const T* __restrict__ source, float* __restrict__ grad_directions) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (k >= rank * dim) return;
    const int64_t i = k / dim, j = k % dim;
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) sum += partials[b * rank * dim + k];
    if (source != nullptr)
        for (int64_t e = 0; e < examples; ++e) sum += grad_a[e * rank + i] * to_float(source[e * dim + j]);
    grad_directions[k] = sum;
}

template <typename T>
cdas_status forward_typed(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
                          const void* h, const float* directions, const void* source, const float* values,
                          const int32_t* example_index, const uint8_t* mask, void* h_out, float* source_values_out,
                          char* error, size_t error_len) {
    WorkspaceLayout layout;
    size_t a_off = layout.add<float>(examples * rank);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float* a = at<float>(ws, a_off);
    CDAS_LAUNCH(static_cast<unsigned>(examples), kThreads, 0, s->stream, dii_clamp_values_kernel<T>)(
        dim, rank, directions, static_cast<const T*>(source), values, a, source_values_out);
    CDAS_LAUNCH(static_cast<unsigned>(rows), kThreads, rank * sizeof(float), s->stream, dii_forward_kernel<T>)(
        dim, rank, examples, static_cast<const T*>(h), directions, a, example_index, mask, static_cast<T*>(h_out),
        s->device_error);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the DII forward kernels");
    return CDAS_STATUS_OK;
}

template <typename T>
cdas_status backward_typed(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
                           const void* h, const float* directions, const void* source, const float* values,
                           const int32_t* example_index, const uint8_t* mask, const void* grad_out, void* grad_h,
                           float* grad_directions, float* grad_values, char* error, size_t error_len) {
    const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
    const bool want_dw = grad_directions != nullptr;
    const bool want_wg = grad_values != nullptr || (want_dw && source != nullptr);
    WorkspaceLayout layout;
    size_t a_off = layout.add<float>(examples * rank);
    size_t grad_a_off = layout.add<float>(examples * rank);
    size_t wg_off = layout.add<float>(want_wg ? rows * rank : 1);
    size_t partial_off = layout.add<float>(want_dw ? blocks * rank * dim : 1);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float* a = at<float>(ws, a_off);
    float* grad_a = at<float>(ws, grad_a_off);
    float* wg = want_wg ? at<float>(ws, wg_off) : nullptr;
    float* partials = want_dw ? at<float>(ws, partial_off) : nullptr;

    CDAS_LAUNCH(static_cast<unsigned>(examples), kThreads, 0, s->stream, dii_clamp_values_kernel<T>)(
        dim, rank, directions, static_cast<const T*>(source), values, a, nullptr);
    // rank <= kMaxBackwardRank (checked before anything was queued): the coefficients always fit
    // beside the static scratch; the accumulator goes to shared memory only when it fits as well.
    const size_t coeff_bytes = 2 * static_cast<size_t>(rank) * sizeof(float);
    const size_t acc_bytes = static_cast<size_t>(rank * dim) * sizeof(float);
    const int shared_acc = want_dw && acc_bytes <= kSharedAccumulatorBytes &&
                           kStaticScratchBytes + coeff_bytes + acc_bytes <= kSharedLimitBytes;
    const size_t smem = coeff_bytes + (shared_acc ? acc_bytes : 0);
    CDAS_LAUNCH(static_cast<unsigned>(blocks), kThreads, smem, s->stream, dii_backward_rows_kernel<T>)(
        rows, dim, rank, examples, static_cast<const T*>(h), directions, a, example_index, mask,
        static_cast<const T*>(grad_out), static_cast<T*>(grad_h), wg, partials, shared_acc, s->device_error);
    if (want_wg)
        CDAS_LAUNCH(static_cast<unsigned>(examples * rank), kThreads, 0, s->stream, dii_grad_values_kernel)(
            rows, rank, example_index, mask, wg, grad_a, grad_values);
    if (want_dw) {
        const int64_t n = rank * dim;
        CDAS_LAUNCH(static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0, s->stream, dii_grad_directions_kernel<T>)(
            dim, rank, blocks, examples, partials, grad_a, static_cast<const T*>(source), grad_directions);
    }
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the DII backward kernels");
    return CDAS_STATUS_OK;
}

cdas_status check_dii_inputs(cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank,
                             int64_t examples, const void* h, const float* directions, const void* source,
                             const float* values, const int32_t* example_index, const void* grad_out, char* error,
                             size_t error_len) {
    if (dtype != CDAS_DTYPE_F32 && dtype != CDAS_DTYPE_BF16 && dtype != CDAS_DTYPE_F16) {
        set_error(error, error_len, "dii: unsupported dtype %d", dtype);
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (rows > INT32_MAX || examples * rank > INT32_MAX || rank * dim > INT32_MAX * int64_t(kThreads)) {
        set_error(error, error_len, "dii: shape too large for the CUDA kernels (rows %lld, examples x rank %lld)",
                  static_cast<long long>(rows), static_cast<long long>(examples * rank));
        return CDAS_STATUS_UNSUPPORTED;
    }
    const bool backward = grad_out != nullptr;
    const int64_t max_rank = backward ? kMaxBackwardRank : kMaxForwardRank;
    if (rank > max_rank) {
        set_error(error, error_len,
                  "%s: rank %lld is too large for the CUDA kernel (at most %lld: %lld bytes of per-rank shared memory "
                  "beside %d static must fit in 48 KiB)",
                  backward ? "dii_backward" : "dii_forward", static_cast<long long>(rank),
                  static_cast<long long>(max_rank),
                  static_cast<long long>(rank * (backward ? 2 : 1) * static_cast<int64_t>(sizeof(float))),
                  static_cast<int>(kStaticScratchBytes));
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (!s->check_inputs) return CDAS_STATUS_OK;  // bad example indices still raise the device error flag
    const CheckedInput inputs[] = {
        {"h", dtype, h, rows * dim},
        {"directions", CDAS_DTYPE_F32, directions, rank * dim},
        {"source", dtype, source, examples * dim},
        {"values", CDAS_DTYPE_F32, values, examples * rank},
        {"grad_out", dtype, grad_out, rows * dim},
    };
    return check_inputs(s, inputs, 5, example_index, rows, examples, error, error_len);
}

}  // namespace
}  // namespace cdas_cuda

using namespace cdas_cuda;

cdas_status cdas_cuda_dii_forward(
    cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask,
    void* h_out, float* source_values_out, char* error, size_t error_len) {
    CDAS_RETURN_IF_ERROR(check_dii_inputs(s, dtype, rows, dim, rank, examples, h, directions, source, values,
                                          example_index, nullptr, error, error_len));
    switch (dtype) {
        case CDAS_DTYPE_F32:
            return forward_typed<float>(s, rows, dim, rank, examples, h, directions, source, values, example_index,
                                        mask, h_out, source_values_out, error, error_len);
        case CDAS_DTYPE_BF16:
            return forward_typed<__nv_bfloat16>(s, rows, dim, rank, examples, h, directions, source, values,
                                                example_index, mask, h_out, source_values_out, error, error_len);
        default:
            return forward_typed<__half>(s, rows, dim, rank, examples, h, directions, source, values, example_index,
                                         mask, h_out, source_values_out, error, error_len);
    }
}

cdas_status cdas_cuda_dii_backward(
    cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values, char* error, size_t error_len) {
    CDAS_RETURN_IF_ERROR(check_dii_inputs(s, dtype, rows, dim, rank, examples, h, directions, source, values,
                                          example_index, grad_out, error, error_len));
    switch (dtype) {
        case CDAS_DTYPE_F32:
            return backward_typed<float>(s, rows, dim, rank, examples, h, directions, source, values, example_index,
                                         mask, grad_out, grad_h, grad_directions, grad_values, error, error_len);
        case CDAS_DTYPE_BF16:
            return backward_typed<__nv_bfloat16>(s, rows, dim, rank, examples, h, directions, source, values,
                                                 example_index, mask, grad_out, grad_h, grad_directions, grad_values,
                                                 error, error_len);
        default:
            return backward_typed<__half>(s, rows, dim, rank, examples, h, directions, source, values, example_index,
                                          mask, grad_out, grad_h, grad_directions, grad_values, error, error_len);
    }
}
