/*
 * LM head (+ soft-cap) + Jensen-Shannon divergence over the vocabulary, forward and backward
 * (cdas.h: cdas_lm_head_jsd; the CPU twin in native/src/cpu is the spec this must match: same
 * loss, same per-row values, same gradient, same masking and grad_scale meaning).
 *
 *   u = x W^T, z = c tanh(u / c) (soft-cap, c > 0) or z = u,  Q = softmax(z_s), P = softmax(z_t)
 *   log M = logaddexp(log P, log Q) - ln 2,   r = log Q - log M
 *   JSD_t = (sum_j P_j (log P_j - log M_j) + sum_j Q_j r_j) / 2
 *   dJSD/dz_s = Q (r - S) / 2 with S = sum_j Q_j r_j,   dz/du = 1 - (z / c)^2 under soft-cap
 *   dL/dx_s = grad_scale / n_rows * (dJSD/du) W            (n_rows: rows with mask != 0)
 *
 * One schedule (cdas_jsd_schedule AUTO and CHUNKED both name it), keeping fp32 logits, fp32
 * accumulation and row-wise log-sum-exps, and never holding the T x V logits:
 *
 *   token chunks of chunk_rows rows (automatic: the workspace formula at chunk_workspace_bytes,
 *   at most 1 GiB). The chunk's student and teacher rows are stacked and one cuBLAS GEMM writes
 *   both sets of fp32 logits (bf16/f16 inputs, fp32 output and compute); one row kernel (16-byte
 *   loads, exp2f) makes three passes over each pair of rows: both log-sum-exps (online), the row
 *   loss and S, and the unscaled Q (r - S) c' written in place (f32) or as bf16/f16 beside it (the
 *   dx GEMM's input type); cuBLAS computes dx = alpha dz W with alpha = grad_scale / 2 / n read
 *   from device memory (n is counted on the device; the scale is applied in fp32, never to the
 *   16-bit dz, which would underflow fp16 at large n). The row kernel of chunk i runs on a second
 *   stream while chunk i + 1's GEMM runs (double-buffered logits and dz; see run_chunked for the
 *   schedule and a roofline estimate). Three head products (2TdV flops each).
 *
 * Why no schedule that keeps the logits out of global memory (the arithmetic; H100 SXM figures,
 * ~660 TFLOP/s reachable bf16 GEMM, 989 peak, 3.35 TB/s; T=8192, d=4096, V=128256, 2TdV = 8.6
 * TFLOP):
 *   - the loss needs S = sum_j Q_j r_j, which needs both log-sum-exps first, and dL/dz needs S:
 *     without the logits stored, each of the three row passes recomputes both logit blocks, so
 *     2 (lse) + 2 (loss, S) + 2 (dz) + 1 (dx) = 7 head products, 60 TFLOP: 61 ms at the card's
 *     peak, 91 ms at the reachable rate, against this schedule's 25.8 TFLOP (39 ms). Accumulating
 *     dx in the second pass as (A - S B) saves one pass (6 products, 52 TFLOP, 78 ms) and cancels
 *     in 16 bits near saturation. The former FUSED schedule (64 x 64 WMMA tiles, both forms) was
 *     therefore removed, with its CPU mirror.
 *   - an epilogue-fused GEMM that writes each logits tile's (max, sum) instead of the tile saves
 *     the traffic of the row kernel (37.8 GB, 11 ms) but needs the logits again for the loss and
 *     dz: at least 2 (tile stats) + 2 (loss, S and dz from recomputed tiles with the stats, dz as
 *     an epilogue) + 1 (dx) = 5 head products, 43 TFLOP, 65 ms. The 11 ms it saves are already
 *     hidden behind the GEMMs on the second stream (the row kernel takes 11 ms of the GEMMs' 39 at
 *     this shape and 23 of 44 at d=2304, V=256000), so it cannot win while the GEMMs are
 *     compute-bound; it would only pay off if the row kernel were the longer of the two streams.
 *   - memory: the automatic chunk keeps the workspace within 1 GiB; at this shape, bf16 with a
 *     gradient, it is 384 rows and 0.99 GB (chunk_workspace_bytes), inside the 1 GB target.
 *
 * Determinism: every reduction (row sums, the loss over rows) runs in a fixed
 * order with no float atomics; cuBLAS is deterministic on a given GPU and stream.
 */
#include <algorithm>
#include <cmath>

#include "cuda/common.cuh"

namespace cdas_cuda {
namespace {

constexpr float kLn2 = 0.69314718055994530942f;
constexpr int kRowThreads = 512;
constexpr size_t kChunkedWorkspaceBudget = size_t(1) << 30;  // automatic chunk_rows target

__device__ __forceinline__ float softcap_apply(float u, float cap) { return cap > 0.0f ? cap * tanhf(u / cap) : u; }
__device__ __forceinline__ float softcap_slope(float z, float cap) {
    if (cap <= 0.0f) return 1.0f;
    float t = z / cap;
    return 1.0f - t * t;
}

// Online log-sum-exp in base 2: elements in log2 units, value m + log2(l) (exp2f).
__device__ __forceinline__ void lse_add(float& m, float& l, float x) {
    if (x > m) {
        l = l * exp2f(m - x) + 1.0f;
        m = x;
    } else {
        l += exp2f(x - m);
    }
}
__device__ __forceinline__ void lse_merge(float& m, float& l, float m2, float l2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        l = l2;
        return;
    }
    const float mx = fmaxf(m, m2);
    l = l * exp2f(m - mx) + l2 * exp2f(m2 - mx);
    m = mx;
}

// Counts the rows with mask != 0. With `scalars` given, also writes the dx GEMM's device-side
// alpha = grad_scale / 2 / n (0 when no row counts) and beta = 0 into scalars[0..1], so the
// 1/n scale is applied in fp32 by cuBLAS and never folded into a 16-bit dL/dz.
__global__ void count_rows_kernel(int64_t rows, const uint8_t* __restrict__ mask, int* __restrict__ count,
                                  float grad_scale, float* __restrict__ scalars) {
    CDAS_SHARED(int, total, );
    if (threadIdx.x == 0) total = 0;
    __syncthreads();
    int local = 0;
    for (int64_t t = threadIdx.x; t < rows; t += blockDim.x) local += (mask == nullptr || mask[t] != 0) ? 1 : 0;
    atomicAdd(&total, local);  // integer: exact in any order
    __syncthreads();
    if (threadIdx.x == 0) {
        *count = total;
        if (scalars != nullptr) {
            scalars[0] = total > 0 ? 0.5f * grad_scale / static_cast<float>(total) : 0.0f;
            scalars[1] = 0.0f;
        }
    }
}

// loss = sum_t row_loss[t] / n (0 when no row counts), in a fixed order.
__global__ void loss_kernel(int64_t rows, const float* __restrict__ row_loss, const int* __restrict__ count,
                            float* __restrict__ loss_out) {
    CDAS_SHARED(float, scratch, [32]);
    float partial = 0.0f;
    for (int64_t t = threadIdx.x; t < rows; t += blockDim.x) partial += row_loss[t];
    float total = block_sum(partial, scratch);
    if (threadIdx.x == 0) *loss_out = *count > 0 ? total / static_cast<float>(*count) : 0.0f;
}

// ---- CHUNKED -------------------------------------------------------------------------------------

__device__ __forceinline__ void block_lse2(float& m, float& l, float* scratch /* 64 floats */) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) lse_merge(m, l, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, l, o));
    __syncthreads();
    if (lane == 0) {
        scratch[warp] = m;
        scratch[32 + warp] = l;
    }
    __syncthreads();
    m = lane < warps ? scratch[lane] : -INFINITY;
    l = lane < warps ? scratch[32 + lane] : 0.0f;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) lse_merge(m, l, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, l, o));
}

constexpr float kLog2e = 1.44269504088896340736f;

// log2 M - where M = (P + Q) / 2 - from a2 = log2 Q and b2 = log2 P: max + log2(1 + 2^-|a2 - b2|) - 1.
__device__ __forceinline__ float log2_mid(float a2, float b2) {
    const float mx = fmaxf(a2, b2);
    if (mx == -INFINITY) return -INFINITY;
    return mx + log1pf(exp2f(-fabsf(a2 - b2))) * kLog2e - 1.0f;
}

// Reads kN logits from a row: one 16-byte load (kN = 4) or one element (kN = 1).
template <int kN>
__device__ __forceinline__ void load_logits(const float* row, int64_t u, float* x) {
    if constexpr (kN == 4) {
        const float4 v = *reinterpret_cast<const float4*>(row + 4 * u);
        x[0] = v.x;
        x[1] = v.y;
        x[2] = v.z;
        x[3] = v.w;
    } else {
        x[0] = row[u];
    }
}
template <typename G, int kN>
__device__ __forceinline__ void store_dz(G* row, int64_t u, const float* x) {
#pragma unroll
    for (int q = 0; q < kN; ++q) row[kN * u + q] = from_float<G>(x[q]);
}

// One block per row of the chunk (blockDim.x a multiple of 32, at most kRowThreads). The chunk's
// logits are stacked: student row `row` at z[row], teacher row at z[n + row] (fp32, raw u). Three
// passes over the two rows, with 16-byte loads when V % 4 == 0 and base-2 exponentials
// (exp2f): (1) both log-sum-exps, online; (2) the row's JSD and S = sum_j Q_j r_j; (3) dz (nullable)
// = the UNSCALED 2 dJSD/du = Q (r - S) c' (0 on masked rows). The factor grad_scale / 2 / n is the
// dx GEMM's fp32 alpha, so a 16-bit dz keeps its O(1/V) magnitude (O(1/(nV)) underflowed fp16).
// The soft-cap is recomputed in each pass (never stored): the kernel is memory-bound, tanh is not.
// With G = float, dz may be the student row itself (each element is read, then written, by one thread).
template <typename G, int kN>
__global__ void __launch_bounds__(kRowThreads) jsd_rows_kernel(
    int64_t vocab, int64_t n, float softcap, const uint8_t* __restrict__ mask, const float* z, G* dz,
    float* __restrict__ row_loss) {
    CDAS_SHARED(float, scratch, [64]);
    const int64_t row = blockIdx.x;
    const float* s = z + row * vocab;
    const float* t = z + (n + row) * vocab;
    G* d = dz != nullptr ? dz + row * vocab : nullptr;
    const int64_t units = vocab / kN;
    if (mask != nullptr && mask[row] == 0) {
        if (threadIdx.x == 0) row_loss[row] = 0.0f;
        if (d != nullptr)
            for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) d[j] = from_float<G>(0.0f);
        return;
    }
    // (1) log2-sum-exp of both rows (values scaled to log2 units as they are read)
    float ms = -INFINITY, ls = 0.0f, mt = -INFINITY, lt = 0.0f;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
        float xs[kN], xt[kN];
        load_logits<kN>(s, u, xs);
        load_logits<kN>(t, u, xt);
#pragma unroll
        for (int q = 0; q < kN; ++q) {
            lse_add(ms, ls, softcap_apply(xs[q], softcap) * kLog2e);
            lse_add(mt, lt, softcap_apply(xt[q], softcap) * kLog2e);
        }
    }
    block_lse2(ms, ls, scratch);
    block_lse2(mt, lt, scratch);
    const float lse2_s = ms + log2f(ls), lse2_t = mt + log2f(lt);

    // (2) JSD and S, in bits (converted to nats at the end)
    float jsd = 0.0f, sum_qr = 0.0f;
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
        float xs[kN], xt[kN];
        load_logits<kN>(s, u, xs);
        load_logits<kN>(t, u, xt);
#pragma unroll
        for (int q = 0; q < kN; ++q) {
            const float a2 = softcap_apply(xs[q], softcap) * kLog2e - lse2_s;  // log2 Q
            const float b2 = softcap_apply(xt[q], softcap) * kLog2e - lse2_t;  // log2 P
            const float lm2 = log2_mid(a2, b2);
            const float qv = exp2f(a2), pv = exp2f(b2);
            const float qr = qv * (a2 - lm2);
            jsd += pv * (b2 - lm2) + qr;
            sum_qr += qr;
        }
    }
    jsd = block_sum(jsd, scratch) * kLn2;
    sum_qr = block_sum(sum_qr, scratch);  // S in bits
    if (threadIdx.x == 0) row_loss[row] = jsd < 0.0f ? 0.0f : 0.5f * jsd;  // JSD >= 0 (rounding); NaN stays NaN
    if (d == nullptr) return;
    // (3) dz = Q (r - S) c', r - S = ((a2 - lm2) - S2) ln 2
    for (int64_t u = threadIdx.x; u < units; u += blockDim.x) {
        float xs[kN], xt[kN], out[kN];
        load_logits<kN>(s, u, xs);
        load_logits<kN>(t, u, xt);
#pragma unroll
        for (int q = 0; q < kN; ++q) {
            const float zc = softcap_apply(xs[q], softcap);
            const float a2 = zc * kLog2e - lse2_s;
            const float b2 = softcap_apply(xt[q], softcap) * kLog2e - lse2_t;
            out[q] = exp2f(a2) * (((a2 - log2_mid(a2, b2)) - sum_qr) * kLn2) * softcap_slope(zc, softcap);
        }
        store_dz<G, kN>(d, u, out);
    }
}

struct GemmTypes {
    cudaDataType_t input;
    cublasComputeType_t compute;
};

GemmTypes gemm_types(int32_t dtype) {
    switch (dtype) {
        case CDAS_DTYPE_BF16: return {CUDA_R_16BF, CUBLAS_COMPUTE_32F};
        case CDAS_DTYPE_F16: return {CUDA_R_16F, CUBLAS_COMPUTE_32F};
        default: return {CUDA_R_32F, CUBLAS_COMPUTE_32F};
    }
}

size_t dtype_size(int32_t dtype) { return dtype == CDAS_DTYPE_F32 ? 4 : 2; }

// Z[n x V] (row-major, fp32) = X[n x d] W^T. Column-major view: Z^T (V x n) = op_T(W^T as d x V) X^T.
cdas_status logits_gemm(cdas_cuda_state* s, int32_t dtype, int n, int dim, int vocab, const void* x, const void* head,
                        float* z, char* error, size_t error_len) {
    const GemmTypes g = gemm_types(dtype);
    const float one = 1.0f, zero = 0.0f;
    CDAS_CUBLAS_CHECK(cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, vocab, n, dim, &one, head, g.input, dim, x,
                                   g.input, dim, &zero, z, CUDA_R_32F, vocab, g.compute, CUBLAS_GEMM_DEFAULT),
                      "cublasGemmEx(logits = x W^T)");
    return CDAS_STATUS_OK;
}

// dx[n x d] (row-major, fp32) = alpha dz[n x V] W with alpha = scalars[0] and beta = scalars[1]
// (= 0) read by cuBLAS from DEVICE memory (count_rows_kernel writes them): the scale depends on the
// masked row count, which only the device knows, and reading it back would synchronise.
// Column-major: dx^T (d x n) = (W^T as d x V) dz^T (V x n).
cdas_status grad_gemm(cdas_cuda_state* s, int32_t dtype, int n, int dim, int vocab, const void* dz, const void* head,
                      const float* scalars, float* dx, char* error, size_t error_len) {
    const GemmTypes g = gemm_types(dtype);
    CDAS_CUBLAS_CHECK(cublasSetPointerMode(s->blas, CUBLAS_POINTER_MODE_DEVICE), "cublasSetPointerMode(DEVICE)");
    cublasStatus_t st = cublasGemmEx(s->blas, CUBLAS_OP_N, CUBLAS_OP_N, dim, n, vocab, scalars, head, g.input, dim, dz,
                                     g.input, vocab, scalars + 1, dx, CUDA_R_32F, dim, g.compute, CUBLAS_GEMM_DEFAULT);
    // Every other call on the handle passes host scalars: restore the mode even after a failure.
    cublasStatus_t restore = cublasSetPointerMode(s->blas, CUBLAS_POINTER_MODE_HOST);
    CDAS_CUBLAS_CHECK(st, "cublasGemmEx(dx = alpha dz W)");
    CDAS_CUBLAS_CHECK(restore, "cublasSetPointerMode(HOST)");
    return CDAS_STATUS_OK;
}

// Workspace of the production path for chunks of n rows, in bytes (es = 2 for bf16/f16, 4 for f32):
//   stack   2 n d es        the chunk's student and teacher rows, stacked for one logits GEMM
//   Z       2 x 2 n V 4     fp32 logits [student rows; teacher rows], double-buffered
//   dz      2 x n V es      the 16-bit dL/dz of bf16/f16 with a gradient, double-buffered (f32: in Z)
// plus O(T) for the row losses. The automatic n is the largest multiple of 64 with that sum
// at most kChunkedWorkspaceBudget (1 GiB): at T = 8192, d = 4096, V = 128256, bf16 with a
// gradient, 2 581 504 bytes a row, n = 384, 0.99 GB.
size_t chunk_workspace_bytes(int32_t dtype, int64_t n, int64_t dim, int64_t vocab, bool grad) {
    const size_t es = dtype == CDAS_DTYPE_F32 ? 4 : 2;
    const size_t dz = (grad && dtype != CDAS_DTYPE_F32) ? 2 * es : 0;
    return static_cast<size_t>(n) * (2 * dim * es + static_cast<size_t>(vocab) * (16 + dz));
}

int64_t automatic_chunk_rows(int32_t dtype, int64_t rows, int64_t dim, int64_t vocab, bool grad) {
    const size_t per_row = std::max<size_t>(chunk_workspace_bytes(dtype, 1, dim, vocab, grad), 1);
    int64_t c = static_cast<int64_t>(kChunkedWorkspaceBudget / per_row);
    if (c >= 64) c -= c % 64;  // whole GEMM tiles
    return std::max<int64_t>(1, std::min(c, rows));
}

// The second stream and the events of the two-stream schedule, created on first use.
cdas_status ensure_aux_stream(cdas_cuda_state* s, char* error, size_t error_len) {
    if (s->aux == nullptr)
        CDAS_CUDA_CHECK(cudaStreamCreateWithFlags(&s->aux, cudaStreamNonBlocking), "cudaStreamCreate(second stream)");
    for (cudaEvent_t& e : s->aux_events)
        if (e == nullptr) CDAS_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    return CDAS_STATUS_OK;
}

template <int kN>
cdas_status launch_rows(cudaStream_t stream, int32_t dtype, bool grad, int n, int threads, int64_t vocab, float softcap,
                        const uint8_t* mask, float* z, void* dz16, float* row_loss, char* error, size_t error_len) {
    if (!grad || dtype == CDAS_DTYPE_F32) {
        CDAS_LAUNCH(n, threads, 0, stream, jsd_rows_kernel<float, kN>)(vocab, n, softcap, mask, z, grad ? z : nullptr,
                                                                       row_loss);
    } else if (dtype == CDAS_DTYPE_BF16) {
        CDAS_LAUNCH(n, threads, 0, stream, jsd_rows_kernel<__nv_bfloat16, kN>)(
            vocab, n, softcap, mask, z, static_cast<__nv_bfloat16*>(dz16), row_loss);
    } else {
        CDAS_LAUNCH(n, threads, 0, stream, jsd_rows_kernel<__half, kN>)(vocab, n, softcap, mask, z,
                                                                        static_cast<__half*>(dz16), row_loss);
    }
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching jsd_rows_kernel");
    return CDAS_STATUS_OK;
}

// The production path (AUTO and CHUNKED). Per chunk i of n rows, with A the caller's stream and B
// the state's second stream:
//   A: copy the chunk's student and teacher rows into `stack`; logits Z[i % 2] = stack W^T, one
//      GEMM of 2n rows (cuBLAS "TN": W is [V x d] row-major = d x V column-major, read as op T;
//      both operands K-major, the layout cuBLASLt's tensor-core kernels prefer), fp32 output;
//   B: the row kernel of chunk i (reads Z[i % 2], writes dz[i % 2] and the row losses);
//   A: after chunk i + 1's logits GEMM, dx of chunk i = alpha dz W ("NN": W as d x V column-major,
//      dz^T as V x n; alpha = grad_scale / 2 / n from device memory).
// So the row kernel of chunk i runs on B while chunk i + 1's GEMM runs on A. Events order the
// reuse of the two buffers (the GEMM of chunk i + 2 waits for chunk i's row kernel; chunk i + 2's
// row kernel waits for chunk i's dx GEMM), and A waits for B before the final loss: the call is
// complete when the caller's stream is, and the host never waits.
//
// Roofline (estimates, not measurements; H100 SXM: ~660 TFLOP/s reachable bf16 GEMM, 3.35 TB/s):
//   GEMMs: 3 x 2TdV flops. Row kernel: 8V written by the GEMM and read 3 times per row pair
//   (student + teacher) = 32V bytes, dz written and read 2V + 2V: about 36V bytes a row.
//   T=8192 d=4096 V=128256:  25.8 TFLOP -> 39 ms; 37.8 GB -> 11 ms on B, overlapped -> about 40 ms.
//   T=1024 d=4096 V=128256:   3.2 TFLOP ->  4.9 ms;  4.7 GB -> 1.4 ms overlapped -> about 5 ms.
//   T=8192 d=2304 V=256000:  29.0 TFLOP -> 44 ms; 75.5 GB -> 23 ms overlapped -> about 45 ms.
//   T=1024 d=2304 V=256000:   3.6 TFLOP ->  5.5 ms;  9.4 GB -> 2.8 ms overlapped -> about 6 ms.
// (The schedules this one was chosen over, and their arithmetic, are in the header comment.)
cdas_status run_chunked(cdas_cuda_state* s, int32_t chunk_rows, int32_t dtype, int64_t rows, int64_t dim,
                        int64_t vocab, const void* x_student, const void* x_teacher, const void* head, float softcap,
                        const uint8_t* mask, float grad_scale, float* loss_out, float* row_loss_out,
                        float* grad_student_out, char* error, size_t error_len) {
    const bool grad = grad_student_out != nullptr;
    const int64_t chunk = chunk_rows > 0 ? std::min<int64_t>(chunk_rows, rows)
                                         : automatic_chunk_rows(dtype, rows, dim, vocab, grad);
    const bool separate_dz = grad && dtype != CDAS_DTYPE_F32;
    const size_t xsize = dtype_size(dtype);
    WorkspaceLayout layout;
    size_t stack_off = layout.add<char>(2 * chunk * dim * xsize);
    size_t z_off[2], dz_off[2];
    for (int b = 0; b < 2; ++b) z_off[b] = layout.add<float>(2 * chunk * vocab);
    for (int b = 0; b < 2; ++b) dz_off[b] = layout.add<uint16_t>(separate_dz ? chunk * vocab : 1);
    size_t row_loss_off = layout.add<float>(row_loss_out == nullptr ? rows : 1);
    size_t count_off = layout.add<int>(1);
    size_t scalars_off = layout.add<float>(2);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    CDAS_RETURN_IF_ERROR(ensure_aux_stream(s, error, error_len));
    char* stack = at<char>(ws, stack_off);
    float* z[2] = {at<float>(ws, z_off[0]), at<float>(ws, z_off[1])};
    void* dz16[2] = {at<void>(ws, dz_off[0]), at<void>(ws, dz_off[1])};
    float* row_loss = row_loss_out != nullptr ? row_loss_out : at<float>(ws, row_loss_off);
    int* count = at<int>(ws, count_off);
    float* scalars = at<float>(ws, scalars_off);  // dx GEMM alpha, beta
    // One warp per 32 vocabulary entries up to kRowThreads: small vocabularies do not idle 512 threads.
    const int row_threads = static_cast<int>(std::min<int64_t>(kRowThreads, std::max<int64_t>(32, (vocab + 31) / 32 * 32)));
    cudaStream_t A = s->stream, B = s->aux;
    cudaEvent_t* ev = s->aux_events;  // 0: start, 1-2: logits done, 3-4: rows done, 5-6: dx done, 7: end

    CDAS_LAUNCH(1, 1024, 0, A, count_rows_kernel)(rows, mask, count, grad_scale, grad ? scalars : nullptr);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching count_rows_kernel");
    CDAS_CUDA_CHECK(cudaEventRecord(ev[0], A), "cudaEventRecord(start)");
    CDAS_CUDA_CHECK(cudaStreamWaitEvent(B, ev[0], 0), "cudaStreamWaitEvent(start)");
    auto dx_gemm = [&](int64_t c0, int n, int b) -> cdas_status {
        CDAS_CUDA_CHECK(cudaStreamWaitEvent(A, ev[3 + b], 0), "cudaStreamWaitEvent(rows done)");
        const void* dz = separate_dz ? dz16[b] : static_cast<const void*>(z[b]);
        CDAS_RETURN_IF_ERROR(grad_gemm(s, dtype, n, static_cast<int>(dim), static_cast<int>(vocab), dz, head, scalars,
                                       grad_student_out + c0 * dim, error, error_len));
        CDAS_CUDA_CHECK(cudaEventRecord(ev[5 + b], A), "cudaEventRecord(dx done)");
        return CDAS_STATUS_OK;
    };
    int64_t prev_c0 = 0;
    int prev_n = 0;
    int64_t i = 0;
    for (int64_t c0 = 0; c0 < rows; c0 += chunk, ++i) {
        const int n = static_cast<int>(std::min(chunk, rows - c0));
        const int b = static_cast<int>(i % 2);
        if (i >= 2) CDAS_CUDA_CHECK(cudaStreamWaitEvent(A, ev[3 + b], 0), "cudaStreamWaitEvent(rows done)");
        CDAS_CUDA_CHECK(cudaMemcpyAsync(stack, static_cast<const char*>(x_student) + c0 * dim * xsize, n * dim * xsize,
                                        cudaMemcpyDeviceToDevice, A),
                        "stacking the student rows");
        CDAS_CUDA_CHECK(cudaMemcpyAsync(stack + n * dim * xsize, static_cast<const char*>(x_teacher) + c0 * dim * xsize,
                                        n * dim * xsize, cudaMemcpyDeviceToDevice, A),
                        "stacking the teacher rows");
        CDAS_RETURN_IF_ERROR(logits_gemm(s, dtype, 2 * n, static_cast<int>(dim), static_cast<int>(vocab), stack, head,
                                         z[b], error, error_len));
        CDAS_CUDA_CHECK(cudaEventRecord(ev[1 + b], A), "cudaEventRecord(logits done)");
        CDAS_CUDA_CHECK(cudaStreamWaitEvent(B, ev[1 + b], 0), "cudaStreamWaitEvent(logits done)");
        if (separate_dz && i >= 2) CDAS_CUDA_CHECK(cudaStreamWaitEvent(B, ev[5 + b], 0), "cudaStreamWaitEvent(dx done)");
        const uint8_t* m = mask != nullptr ? mask + c0 : nullptr;
        if (vocab % 4 == 0)
            CDAS_RETURN_IF_ERROR(launch_rows<4>(B, dtype, grad, n, row_threads, vocab, softcap, m, z[b], dz16[b],
                                                row_loss + c0, error, error_len));
        else
            CDAS_RETURN_IF_ERROR(launch_rows<1>(B, dtype, grad, n, row_threads, vocab, softcap, m, z[b], dz16[b],
                                                row_loss + c0, error, error_len));
        CDAS_CUDA_CHECK(cudaEventRecord(ev[3 + b], B), "cudaEventRecord(rows done)");
        if (grad && i >= 1) CDAS_RETURN_IF_ERROR(dx_gemm(prev_c0, prev_n, static_cast<int>((i - 1) % 2)));
        prev_c0 = c0;
        prev_n = n;
    }
    if (grad && i >= 1) CDAS_RETURN_IF_ERROR(dx_gemm(prev_c0, prev_n, static_cast<int>((i - 1) % 2)));
    CDAS_CUDA_CHECK(cudaEventRecord(ev[7], B), "cudaEventRecord(end)");
    CDAS_CUDA_CHECK(cudaStreamWaitEvent(A, ev[7], 0), "cudaStreamWaitEvent(end)");
    CDAS_LAUNCH(1, 1024, 0, A, loss_kernel)(rows, row_loss, count, loss_out);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching loss_kernel");
    return CDAS_STATUS_OK;
}

}  // namespace
}  // namespace cdas_cuda

using namespace cdas_cuda;

cdas_status cdas_cuda_lm_head_jsd(
    cdas_cuda_state* s, int32_t schedule, int32_t chunk_rows,
    int32_t dtype, int64_t rows, int64_t dim, int64_t vocab,
    const void* x_student, const void* x_teacher, const void* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out, char* error, size_t error_len) {
    if (dtype != CDAS_DTYPE_F32 && dtype != CDAS_DTYPE_BF16 && dtype != CDAS_DTYPE_F16) {
        set_error(error, error_len, "lm_head_jsd: unsupported dtype %d", dtype);
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (dim > INT32_MAX || vocab > INT32_MAX || rows > INT32_MAX) {
        set_error(error, error_len, "lm_head_jsd: rows, dim and vocab must each fit in 32 bits for cuBLAS");
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (!std::isfinite(softcap) || !std::isfinite(grad_scale)) {
        set_error(error, error_len, "lm_head_jsd: %s is not finite", std::isfinite(softcap) ? "grad_scale" : "softcap");
        return CDAS_STATUS_NON_FINITE;
    }
    if (schedule != CDAS_JSD_SCHEDULE_AUTO && schedule != CDAS_JSD_SCHEDULE_CHUNKED) {
        set_error(error, error_len, "lm_head_jsd: unknown schedule %d", schedule);
        return CDAS_STATUS_INVALID_ARGUMENT;
    }
    if (s->check_inputs) {  // opt-in: the scan reads every input again and waits for its result
        const CheckedInput inputs[] = {
            {"x_student", dtype, x_student, rows * dim},
            {"x_teacher", dtype, x_teacher, rows * dim},
            {"head", dtype, head, vocab * dim},
        };
        CDAS_RETURN_IF_ERROR(check_inputs(s, inputs, 3, nullptr, rows, 0, error, error_len));
    }
    return run_chunked(s, chunk_rows, dtype, rows, dim, vocab, x_student, x_teacher, head, softcap, mask, grad_scale,
                       loss_out, row_loss_out, grad_student_out, error, error_len);
}
