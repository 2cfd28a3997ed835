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
 * Two schedules (cdas_jsd_schedule), both keeping fp32 logits, fp32 accumulation and row-wise
 * log-sum-exps, and both never holding the T x V logits:
 *
 * CHUNKED (AUTO): token chunks of chunk_rows rows. cuBLAS writes the chunk's student and teacher
 *   logits (bf16/f16 inputs, fp32 output and compute) into an fp32 workspace; one fused kernel per
 *   row then makes three passes over the two rows: both log-sum-exps (online), the row loss and
 *   S, and the unscaled Q (r - S) c' written in place (or as bf16/f16 beside it, for the dx GEMM's
 *   input type); cuBLAS computes dx = alpha dz W with alpha = grad_scale / 2 / n read from device
 *   memory (n is counted on the device; the scale is applied in fp32, never to the 16-bit dz, which
 *   would underflow fp16 at large n). Three head products; workspace O(chunk_rows x V).
 *
 * FUSED: vocabulary tiles of 64 x 64 logits computed with tensor-core WMMA tiles (bf16/f16 in,
 *   fp32 accumulate) straight into shared memory, never into global memory. Pass 1 keeps running
 *   (max, sum) pairs per row for both distributions; pass 2 recomputes the tiles and accumulates
 *   the row loss and S; with a gradient, pass 3 recomputes them once more and accumulates
 *   G = sum_j Q_j (r_j - S) c_j W_j with the coefficient rounded to 16 bits as a whole, so that
 *   dx = grad_scale / 2 / n * G has no cancellation (the former two-accumulator form
 *   (A - S B) / 2 lost 2-3% in bf16 near JSD saturation). Seven head products with a gradient,
 *   four without. fp32 inputs are not supported by this schedule (UNSUPPORTED; CHUNKED handles
 *   them).
 *
 * Determinism: every reduction (row sums, split partials, the loss over rows) runs in a fixed
 * order with no float atomics; cuBLAS is deterministic on a given GPU and stream.
 */
#include <mma.h>

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

// Online log-sum-exp state: value m + log(l).
__device__ __forceinline__ void lse_add(float& m, float& l, float x) {
    if (x > m) {
        l = l * expf(m - x) + 1.0f;
        m = x;
    } else {
        l += expf(x - m);
    }
}
__device__ __forceinline__ void lse_merge(float& m, float& l, float m2, float l2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) {
        m = m2;
        l = l2;
        return;
    }
    float mx = fmaxf(m, m2);
    l = l * expf(m - mx) + l2 * expf(m2 - mx);
    m = mx;
}

// Deterministic block-wide merge of (m, l); every thread gets the result.
__device__ __forceinline__ void block_lse(float& m, float& l, float* scratch /* 64 floats */) {
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

// One block per row of the chunk (blockDim.x a multiple of 32, at most kRowThreads). zs/zt hold
// the raw fp32 logits u; dz (nullable) receives the UNSCALED 2 dJSD/du = Q (r - S) c' (0 on masked
// rows): the factor grad_scale / 2 / n is the dx GEMM's fp32 alpha, so a 16-bit dz keeps its
// magnitude (O(1/V), not O(1/(nV)), which underflowed fp16 at large n). With G = float dz may be
// zs itself (each element is read, then written, by the same thread).
template <typename G>
__global__ void __launch_bounds__(kRowThreads) jsd_rows_kernel(
    int64_t vocab, float softcap, const uint8_t* __restrict__ mask, const float* zs, const float* __restrict__ zt,
    G* dz, float* __restrict__ row_loss) {
    CDAS_SHARED(float, scratch, [64]);
    const int64_t row = blockIdx.x;
    const float* s = zs + row * vocab;
    const float* t = zt + row * vocab;
    G* d = dz != nullptr ? dz + row * vocab : nullptr;
    if (mask != nullptr && mask[row] == 0) {
        if (threadIdx.x == 0) row_loss[row] = 0.0f;
        if (d != nullptr)
            for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) d[j] = from_float<G>(0.0f);
        return;
    }
    float ms = -INFINITY, ls = 0.0f, mt = -INFINITY, lt = 0.0f;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
        lse_add(ms, ls, softcap_apply(s[j], softcap));
        lse_add(mt, lt, softcap_apply(t[j], softcap));
    }
    block_lse(ms, ls, scratch);
    block_lse(mt, lt, scratch);
    const float lse_s = ms + logf(ls), lse_t = mt + logf(lt);

    float jsd = 0.0f, sum_qr = 0.0f;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
        float a = softcap_apply(s[j], softcap) - lse_s;
        float b = softcap_apply(t[j], softcap) - lse_t;
        float lm = log_add_exp(a, b) - kLn2;
        float q = expf(a), p = expf(b);
        float qr = q * (a - lm);
        jsd += p * (b - lm) + qr;
        sum_qr += qr;
    }
    jsd = block_sum(jsd, scratch);
    sum_qr = block_sum(sum_qr, scratch);
    if (threadIdx.x == 0) row_loss[row] = fmaxf(0.0f, 0.5f * jsd);  // JSD >= 0 (rounding near identical rows)
    if (d == nullptr) return;
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) {
        float z = softcap_apply(s[j], softcap);
        float a = z - lse_s;
        float b = softcap_apply(t[j], softcap) - lse_t;
        float lm = log_add_exp(a, b) - kLn2;
        float q = expf(a);
        d[j] = from_float<G>(q * ((a - lm) - sum_qr) * softcap_slope(z, softcap));
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

int64_t automatic_chunk_rows(int32_t dtype, int64_t rows, int64_t vocab, bool grad) {
    const size_t per_row = static_cast<size_t>(vocab) * (8 + ((grad && dtype != CDAS_DTYPE_F32) ? 2 : 0));
    int64_t c = static_cast<int64_t>(kChunkedWorkspaceBudget / std::max<size_t>(per_row, 1));
    if (c >= 64) c -= c % 64;  // whole GEMM tiles
    return std::max<int64_t>(1, std::min(c, rows));
}

cdas_status run_chunked(cdas_cuda_state* s, int32_t chunk_rows, int32_t dtype, int64_t rows, int64_t dim,
                        int64_t vocab, const void* x_student, const void* x_teacher, const void* head, float softcap,
                        const uint8_t* mask, float grad_scale, float* loss_out, float* row_loss_out,
                        float* grad_student_out, char* error, size_t error_len) {
    const bool grad = grad_student_out != nullptr;
    const int64_t chunk = chunk_rows > 0 ? std::min<int64_t>(chunk_rows, rows)
                                         : automatic_chunk_rows(dtype, rows, vocab, grad);
    const bool separate_dz = grad && dtype != CDAS_DTYPE_F32;
    WorkspaceLayout layout;
    size_t zs_off = layout.add<float>(chunk * vocab);
    size_t zt_off = layout.add<float>(chunk * vocab);
    size_t dz_off = layout.add<uint16_t>(separate_dz ? chunk * vocab : 1);
    size_t row_loss_off = layout.add<float>(row_loss_out == nullptr ? rows : 1);
    size_t count_off = layout.add<int>(1);
    size_t scalars_off = layout.add<float>(2);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float* zs = at<float>(ws, zs_off);
    float* zt = at<float>(ws, zt_off);
    void* dz16 = at<void>(ws, dz_off);
    float* row_loss = row_loss_out != nullptr ? row_loss_out : at<float>(ws, row_loss_off);
    int* count = at<int>(ws, count_off);
    float* scalars = at<float>(ws, scalars_off);  // dx GEMM alpha, beta
    const size_t xsize = dtype_size(dtype);
    // One warp per 32 vocabulary entries up to kRowThreads: small vocabularies do not idle 512 threads.
    const int row_threads = static_cast<int>(std::min<int64_t>(kRowThreads, std::max<int64_t>(32, (vocab + 31) / 32 * 32)));

    CDAS_LAUNCH(1, 1024, 0, s->stream, count_rows_kernel)(rows, mask, count, grad_scale, grad ? scalars : nullptr);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching count_rows_kernel");
    for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
        const int n = static_cast<int>(std::min(chunk, rows - c0));
        const char* xs = static_cast<const char*>(x_student) + c0 * dim * xsize;
        const char* xt = static_cast<const char*>(x_teacher) + c0 * dim * xsize;
        CDAS_RETURN_IF_ERROR(logits_gemm(s, dtype, n, static_cast<int>(dim), static_cast<int>(vocab), xs, head, zs,
                                         error, error_len));
        CDAS_RETURN_IF_ERROR(logits_gemm(s, dtype, n, static_cast<int>(dim), static_cast<int>(vocab), xt, head, zt,
                                         error, error_len));
        const uint8_t* m = mask != nullptr ? mask + c0 : nullptr;
        if (!grad || dtype == CDAS_DTYPE_F32) {
            CDAS_LAUNCH(n, row_threads, 0, s->stream, jsd_rows_kernel<float>)(vocab, softcap, m, zs, zt,
                                                                              grad ? zs : nullptr, row_loss + c0);
        } else if (dtype == CDAS_DTYPE_BF16) {
            CDAS_LAUNCH(n, row_threads, 0, s->stream, jsd_rows_kernel<__nv_bfloat16>)(
                vocab, softcap, m, zs, zt, static_cast<__nv_bfloat16*>(dz16), row_loss + c0);
        } else {
            CDAS_LAUNCH(n, row_threads, 0, s->stream, jsd_rows_kernel<__half>)(
                vocab, softcap, m, zs, zt, static_cast<__half*>(dz16), row_loss + c0);
        }
        CDAS_CUDA_CHECK(cudaGetLastError(), "launching jsd_rows_kernel");
        if (grad) {
            const void* dz = dtype == CDAS_DTYPE_F32 ? static_cast<const void*>(zs) : dz16;
            CDAS_RETURN_IF_ERROR(grad_gemm(s, dtype, n, static_cast<int>(dim), static_cast<int>(vocab), dz, head,
                                           scalars, grad_student_out + c0 * dim, error, error_len));
        }
    }
    CDAS_LAUNCH(1, 1024, 0, s->stream, loss_kernel)(rows, row_loss, count, loss_out);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching loss_kernel");
    return CDAS_STATUS_OK;
}

// ---- FUSED ---------------------------------------------------------------------------------------

namespace wmma = nvcuda::wmma;

constexpr int kBM = 64;   // token rows per block
constexpr int kBN = 64;   // vocabulary columns per tile
constexpr int kBK = 32;   // hidden dimension per step of the logits product
constexpr int kDC = 64;   // hidden columns per step of the A/B products
constexpr int kFusedThreads = 256;  // 8 warps
constexpr int kInLd = kBK + 8;      // shared-memory leading dimensions (16-bit: multiple of 8)
constexpr int kZLd = kBN + 4;       // fp32: multiple of 4
constexpr int kCoefLd = kBN + 8;
constexpr int kWcLd = kDC + 8;

struct FusedShared {
    // byte offsets into dynamic shared memory
    static constexpr size_t xs = 0;
    static constexpr size_t xt = xs + size_t(kBM) * kInLd * 2;
    static constexpr size_t w = xt + size_t(kBM) * kInLd * 2;
    static constexpr size_t zs = w + size_t(kBN) * kInLd * 2;
    static constexpr size_t zt = zs + size_t(kBM) * kZLd * 4;
    static constexpr size_t pass1_bytes = zt + size_t(kBM) * kZLd * 4;
    static constexpr size_t coef = pass1_bytes;  // pass 3: the tile's dL/dz coefficients (16-bit)
    static constexpr size_t wc = coef + size_t(kBM) * kCoefLd * 2;
    static constexpr size_t pass3_bytes = wc + size_t(kBN) * kWcLd * 2;
};

// Loads a [rows_tile x 32] slice (columns k0..k0+32) of a row-major [n x dim] matrix into shared
// memory, zero outside the matrix. 16-byte vectors when every row start is 16-byte aligned.
template <typename T>
__device__ __forceinline__ void load_tile_k(T* dst, const T* __restrict__ src, int64_t first_row, int64_t n,
                                            int64_t dim, int64_t k0, bool vec) {
    if (vec) {
        // 64 rows x 32 columns = 256 vectors of 8: one per thread.
        const int r = threadIdx.x >> 2, c = (threadIdx.x & 3) * 8;
        const int64_t gr = first_row + r, gc = k0 + c;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (gr < n && gc < dim) v = *reinterpret_cast<const uint4*>(src + gr * dim + gc);  // dim % 8 == 0
        *reinterpret_cast<uint4*>(dst + r * kInLd + c) = v;
    } else {
        for (int e = threadIdx.x; e < kBM * kBK; e += blockDim.x) {
            const int r = e / kBK, c = e % kBK;
            const int64_t gr = first_row + r, gc = k0 + c;
            dst[r * kInLd + c] = (gr < n && gc < dim) ? src[gr * dim + gc] : from_float<T>(0.0f);
        }
    }
}

// The block's 64 x 64 student and teacher logit tiles for vocabulary columns v0.., soft-capped,
// into shared memory (fp32); columns past the vocabulary are -inf.
template <typename T>
__device__ void logit_tiles(char* smem, const T* __restrict__ xs, const T* __restrict__ xt, const T* __restrict__ head,
                            int64_t rows, int64_t dim, int64_t vocab, int64_t row0, int64_t v0, float softcap,
                            bool vec) {
    T* sxs = reinterpret_cast<T*>(smem + FusedShared::xs);
    T* sxt = reinterpret_cast<T*>(smem + FusedShared::xt);
    T* sw = reinterpret_cast<T*>(smem + FusedShared::w);
    float* zs = reinterpret_cast<float*>(smem + FusedShared::zs);
    float* zt = reinterpret_cast<float*>(smem + FusedShared::zt);
    const int warp = threadIdx.x >> 5;
    const int wr = warp >> 1, wc = warp & 1;  // 4 x 2 warps, each 16 rows x 32 columns
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc_s[2], acc_t[2];
#pragma unroll
    for (int f = 0; f < 2; ++f) {
        wmma::fill_fragment(acc_s[f], 0.0f);
        wmma::fill_fragment(acc_t[f], 0.0f);
    }
    for (int64_t k0 = 0; k0 < dim; k0 += kBK) {
        load_tile_k(sxs, xs, row0, rows, dim, k0, vec);
        load_tile_k(sxt, xt, row0, rows, dim, k0, vec);
        load_tile_k(sw, head, v0, vocab, dim, k0, vec);
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < kBK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a_s, a_t;
            wmma::load_matrix_sync(a_s, sxs + (wr * 16) * kInLd + kk, kInLd);
            wmma::load_matrix_sync(a_t, sxt + (wr * 16) * kInLd + kk, kInLd);
#pragma unroll
            for (int f = 0; f < 2; ++f) {
                // W^T tile (k x v) is column-major in sw[v][k].
                wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
                wmma::load_matrix_sync(b, sw + (wc * 32 + f * 16) * kInLd + kk, kInLd);
                wmma::mma_sync(acc_s[f], a_s, b, acc_s[f]);
                wmma::mma_sync(acc_t[f], a_t, b, acc_t[f]);
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int f = 0; f < 2; ++f) {
        wmma::store_matrix_sync(zs + (wr * 16) * kZLd + wc * 32 + f * 16, acc_s[f], kZLd, wmma::mem_row_major);
        wmma::store_matrix_sync(zt + (wr * 16) * kZLd + wc * 32 + f * 16, acc_t[f], kZLd, wmma::mem_row_major);
    }
    __syncthreads();
    for (int e = threadIdx.x; e < kBM * kBN; e += blockDim.x) {
        const int r = e / kBN, c = e % kBN;
        const bool inside = v0 + c < vocab;
        zs[r * kZLd + c] = inside ? softcap_apply(zs[r * kZLd + c], softcap) : -INFINITY;
        zt[r * kZLd + c] = inside ? softcap_apply(zt[r * kZLd + c], softcap) : -INFINITY;
    }
    __syncthreads();
}

struct FusedGrid {
    int64_t row_tiles, vocab_tiles, splits, tiles_per_split, rows_pad, dim_pad;
};

// Pass 1: per (row tile, vocabulary split) the running (max, sum) of both distributions.
// stats[split][row] = (m_s, l_s, m_t, l_t).
template <typename T>
__global__ void __launch_bounds__(kFusedThreads) fused_stats_kernel(
    FusedGrid g, int64_t rows, int64_t dim, int64_t vocab, const T* __restrict__ xs, const T* __restrict__ xt,
    const T* __restrict__ head, float softcap, int vec, float4* __restrict__ stats) {
    CDAS_DYNAMIC_SHARED(char, smem);
    const float* zs = reinterpret_cast<const float*>(smem + FusedShared::zs);
    const float* zt = reinterpret_cast<const float*>(smem + FusedShared::zt);
    const int64_t row0 = blockIdx.x * kBM;
    const int64_t split = blockIdx.y;
    const int64_t vt_begin = split * g.tiles_per_split;
    const int64_t vt_end = min(g.vocab_tiles, vt_begin + g.tiles_per_split);
    const int r = threadIdx.x >> 2, c0 = (threadIdx.x & 3) * 16;  // 4 threads per row, 16 columns each
    float ms = -INFINITY, ls = 0.0f, mt = -INFINITY, lt = 0.0f;
    for (int64_t vt = vt_begin; vt < vt_end; ++vt) {
        logit_tiles<T>(smem, xs, xt, head, rows, dim, vocab, row0, vt * kBN, softcap, vec != 0);
        for (int c = c0; c < c0 + 16; ++c) {
            float a = zs[r * kZLd + c], b = zt[r * kZLd + c];
            if (a != -INFINITY) lse_add(ms, ls, a);
            if (b != -INFINITY) lse_add(mt, lt, b);
        }
        __syncthreads();  // the next tile overwrites zs/zt
    }
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
        lse_merge(ms, ls, __shfl_xor_sync(0xffffffffu, ms, o), __shfl_xor_sync(0xffffffffu, ls, o));
        lse_merge(mt, lt, __shfl_xor_sync(0xffffffffu, mt, o), __shfl_xor_sync(0xffffffffu, lt, o));
    }
    if ((threadIdx.x & 3) == 0 && row0 + r < rows) stats[split * rows + row0 + r] = make_float4(ms, ls, mt, lt);
}

// Both log-sum-exps per row, merging the splits in order.
__global__ void fused_lse_kernel(int64_t rows, int64_t splits, const float4* __restrict__ stats,
                                 float2* __restrict__ lse) {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= rows) return;
    float ms = -INFINITY, ls = 0.0f, mt = -INFINITY, lt = 0.0f;
    for (int64_t sp = 0; sp < splits; ++sp) {
        float4 v = stats[sp * rows + t];
        lse_merge(ms, ls, v.x, v.y);
        lse_merge(mt, lt, v.z, v.w);
    }
    lse[t] = make_float2(ms + logf(ls), mt + logf(lt));
}

// Pass 2: recompute the tiles; per row and split the partial JSD sum and S = sum_j Q_j r_j.
template <typename T>
__global__ void __launch_bounds__(kFusedThreads) fused_loss_kernel(
    FusedGrid g, int64_t rows, int64_t dim, int64_t vocab, const T* __restrict__ xs, const T* __restrict__ xt,
    const T* __restrict__ head, float softcap, const uint8_t* __restrict__ mask, int vec,
    const float2* __restrict__ lse, float2* __restrict__ row_partials) {
    CDAS_DYNAMIC_SHARED(char, smem);
    const float* zs = reinterpret_cast<const float*>(smem + FusedShared::zs);
    const float* zt = reinterpret_cast<const float*>(smem + FusedShared::zt);
    const int64_t row0 = blockIdx.x * kBM;
    const int64_t split = blockIdx.y;
    const int64_t vt_begin = split * g.tiles_per_split;
    const int64_t vt_end = min(g.vocab_tiles, vt_begin + g.tiles_per_split);
    const int r = threadIdx.x >> 2, c0 = (threadIdx.x & 3) * 16;
    const int64_t row = row0 + r;
    const bool active = row < rows && (mask == nullptr || mask[row] != 0);
    const float2 row_lse = row < rows ? lse[row] : make_float2(0.0f, 0.0f);
    float jsd = 0.0f, sum_qr = 0.0f;
    for (int64_t vt = vt_begin; vt < vt_end; ++vt) {
        logit_tiles<T>(smem, xs, xt, head, rows, dim, vocab, row0, vt * kBN, softcap, vec != 0);
        for (int c = c0; c < c0 + 16; ++c) {
            const float z = zs[r * kZLd + c];
            if (active && z != -INFINITY) {
                float a = z - row_lse.x;
                float b = zt[r * kZLd + c] - row_lse.y;
                float lm = log_add_exp(a, b) - kLn2;
                float q = expf(a), p = expf(b);
                float qr = q * (a - lm);
                jsd += p * (b - lm) + qr;
                sum_qr += qr;
            }
        }
        __syncthreads();  // the next tile overwrites zs/zt
    }
#pragma unroll
    for (int o = 1; o < 4; o <<= 1) {
        jsd += __shfl_xor_sync(0xffffffffu, jsd, o);
        sum_qr += __shfl_xor_sync(0xffffffffu, sum_qr, o);
    }
    if ((threadIdx.x & 3) == 0 && row < rows) row_partials[split * rows + row] = make_float2(jsd, sum_qr);
}

// Per row: the loss and S, summing the splits in order.
__global__ void fused_rows_kernel(int64_t rows, int64_t splits, const uint8_t* __restrict__ mask,
                                  const float2* __restrict__ row_partials, float* __restrict__ row_loss,
                                  float* __restrict__ row_s) {
    const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (t >= rows) return;
    float jsd = 0.0f, s = 0.0f;
    for (int64_t sp = 0; sp < splits; ++sp) {
        float2 v = row_partials[sp * rows + t];
        jsd += v.x;
        s += v.y;
    }
    const bool active = mask == nullptr || mask[t] != 0;
    row_loss[t] = active ? fmaxf(0.0f, 0.5f * jsd) : 0.0f;  // JSD >= 0 (rounding near identical rows)
    row_s[t] = s;
}

// Pass 3 (gradient only): recompute the tiles once more and, with S known, accumulate the split's
// G = sum_j Q_j (r_j - S) c'_j W_j ([rows_pad x dim_pad] fp32, zeroed before) with WMMA. The
// coefficient Q_j (r_j - S) c'_j is formed in fp32 and rounded to 16 bits as a whole, so nothing
// cancels after the rounding (the former A - S B form lost 2-3% near saturation in bf16), and it
// is unscaled (the 1/n of the mean is applied in fp32 at the end), so fp16 does not underflow.
template <typename T>
__global__ void __launch_bounds__(kFusedThreads) fused_grad_kernel(
    FusedGrid g, int64_t rows, int64_t dim, int64_t vocab, const T* __restrict__ xs, const T* __restrict__ xt,
    const T* __restrict__ head, float softcap, const uint8_t* __restrict__ mask, int vec,
    const float2* __restrict__ lse, const float* __restrict__ row_s, float* __restrict__ acc) {
    CDAS_DYNAMIC_SHARED(char, smem);
    const float* zs = reinterpret_cast<const float*>(smem + FusedShared::zs);
    const float* zt = reinterpret_cast<const float*>(smem + FusedShared::zt);
    T* coef = reinterpret_cast<T*>(smem + FusedShared::coef);
    T* wc = reinterpret_cast<T*>(smem + FusedShared::wc);
    const int64_t row0 = blockIdx.x * kBM;
    const int64_t split = blockIdx.y;
    const int64_t vt_begin = split * g.tiles_per_split;
    const int64_t vt_end = min(g.vocab_tiles, vt_begin + g.tiles_per_split);
    const int r = threadIdx.x >> 2, c0 = (threadIdx.x & 3) * 16;
    const int64_t row = row0 + r;
    const bool active = row < rows && (mask == nullptr || mask[row] != 0);
    const float2 row_lse = row < rows ? lse[row] : make_float2(0.0f, 0.0f);
    const float s_row = row < rows ? row_s[row] : 0.0f;
    float* split_acc = acc + split * g.rows_pad * g.dim_pad;
    const int warp = threadIdx.x >> 5;

    for (int64_t vt = vt_begin; vt < vt_end; ++vt) {
        const int64_t v0 = vt * kBN;
        logit_tiles<T>(smem, xs, xt, head, rows, dim, vocab, row0, v0, softcap, vec != 0);
        for (int c = c0; c < c0 + 16; ++c) {
            float gz = 0.0f;
            const float z = zs[r * kZLd + c];
            if (active && z != -INFINITY) {
                float a = z - row_lse.x;
                float b = zt[r * kZLd + c] - row_lse.y;
                float lm = log_add_exp(a, b) - kLn2;
                gz = expf(a) * ((a - lm) - s_row) * softcap_slope(z, softcap);
            }
            coef[r * kCoefLd + c] = from_float<T>(gz);
        }
        const int sr = warp >> 1;  // 16-row strip
        for (int64_t d0 = 0; d0 < g.dim_pad; d0 += kDC) {
            __syncthreads();  // coefficients written / previous W chunk consumed
            for (int e = threadIdx.x; e < kBN * kDC; e += blockDim.x) {
                const int n = e / kDC, k = e % kDC;
                const int64_t gv = v0 + n, gk = d0 + k;
                wc[n * kWcLd + k] = (gv < vocab && gk < dim) ? head[gv * dim + gk] : from_float<T>(0.0f);
            }
            __syncthreads();
#pragma unroll
            for (int f = 0; f < 2; ++f) {
                const int sc = (warp & 1) * 2 + f;  // 16-column strip of the 64-column chunk
                float* ga = split_acc + (row0 + sr * 16) * g.dim_pad + d0 + sc * 16;
                wmma::fragment<wmma::accumulator, 16, 16, 16, float> fa;
                wmma::load_matrix_sync(fa, ga, g.dim_pad, wmma::mem_row_major);
#pragma unroll
                for (int kk = 0; kk < kBN; kk += 16) {
                    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> qa;
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> w;
                    wmma::load_matrix_sync(qa, coef + (sr * 16) * kCoefLd + kk, kCoefLd);
                    wmma::load_matrix_sync(w, wc + kk * kWcLd + sc * 16, kWcLd);
                    wmma::mma_sync(fa, qa, w, fa);
                }
                wmma::store_matrix_sync(ga, fa, g.dim_pad, wmma::mem_row_major);
            }
        }
        __syncthreads();  // the next tile overwrites zs/zt and the coefficients
    }
}

// Per row: dx = grad_scale / 2 / n * G, summing the splits in order (0 on masked rows).
__global__ void fused_finish_kernel(FusedGrid g, int64_t rows, int64_t dim, const uint8_t* __restrict__ mask,
                                    const float* __restrict__ acc, const int* __restrict__ count, float grad_scale,
                                    float* __restrict__ dx) {
    const int64_t t = blockIdx.x;
    const bool active = mask == nullptr || mask[t] != 0;
    const int n = *count;
    const float coef = (active && n > 0) ? 0.5f * grad_scale / static_cast<float>(n) : 0.0f;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
        float sum = 0.0f;
        for (int64_t sp = 0; sp < g.splits; ++sp) sum += acc[(sp * g.rows_pad + t) * g.dim_pad + j];
        dx[t * dim + j] = coef * sum;
    }
}

template <typename T>
cdas_status run_fused_typed(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t vocab, const void* x_student,
                            const void* x_teacher, const void* head, float softcap, const uint8_t* mask,
                            float grad_scale, float* loss_out, float* row_loss_out, float* grad_student_out,
                            char* error, size_t error_len) {
    const bool grad = grad_student_out != nullptr;
    FusedGrid g;
    g.row_tiles = (rows + kBM - 1) / kBM;
    g.vocab_tiles = (vocab + kBN - 1) / kBN;
    g.rows_pad = g.row_tiles * kBM;
    g.dim_pad = (dim + kDC - 1) / kDC * kDC;
    // Enough blocks for about two waves; with a gradient each split holds its own accumulator, so
    // the split count is also capped by a 512 MiB budget for them.
    int64_t splits = std::max<int64_t>(1, (2 * s->sm_count + g.row_tiles - 1) / g.row_tiles);
    if (grad) {
        const int64_t per_split = g.rows_pad * g.dim_pad * static_cast<int64_t>(sizeof(float));
        splits = std::min<int64_t>(splits, std::max<int64_t>(1, (int64_t(512) << 20) / per_split));
    }
    splits = std::min(splits, g.vocab_tiles);
    g.tiles_per_split = (g.vocab_tiles + splits - 1) / splits;
    g.splits = (g.vocab_tiles + g.tiles_per_split - 1) / g.tiles_per_split;
    if (g.row_tiles > 65535 * 1024LL || g.splits > 65535) {
        set_error(error, error_len, "lm_head_jsd: shape too large for the FUSED schedule");
        return CDAS_STATUS_UNSUPPORTED;
    }

    WorkspaceLayout layout;
    size_t stats_off = layout.add<float4>(g.splits * rows);
    size_t lse_off = layout.add<float2>(rows);
    size_t partial_off = layout.add<float2>(g.splits * rows);
    size_t row_s_off = layout.add<float>(rows);
    size_t acc_off = layout.add<float>(grad ? g.splits * g.rows_pad * g.dim_pad : 1);
    size_t row_loss_off = layout.add<float>(row_loss_out == nullptr ? rows : 1);
    size_t count_off = layout.add<int>(1);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float4* stats = at<float4>(ws, stats_off);
    float2* lse = at<float2>(ws, lse_off);
    float2* partials = at<float2>(ws, partial_off);
    float* row_s = at<float>(ws, row_s_off);
    float* acc = grad ? at<float>(ws, acc_off) : nullptr;
    float* row_loss = row_loss_out != nullptr ? row_loss_out : at<float>(ws, row_loss_off);
    int* count = at<int>(ws, count_off);

    const bool vec = dim % 8 == 0 && reinterpret_cast<uintptr_t>(x_student) % 16 == 0 &&
                     reinterpret_cast<uintptr_t>(x_teacher) % 16 == 0 && reinterpret_cast<uintptr_t>(head) % 16 == 0;
    const T* xs = static_cast<const T*>(x_student);
    const T* xt = static_cast<const T*>(x_teacher);
    const T* w = static_cast<const T*>(head);
    const dim3 grid(static_cast<unsigned>(g.row_tiles), static_cast<unsigned>(g.splits));
    const unsigned row_blocks = static_cast<unsigned>((rows + 255) / 256);

    CDAS_CUDA_CHECK(cudaFuncSetAttribute(fused_stats_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(FusedShared::pass1_bytes)),
                    "cudaFuncSetAttribute(fused_stats_kernel)");
    CDAS_CUDA_CHECK(cudaFuncSetAttribute(fused_loss_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(FusedShared::pass1_bytes)),
                    "cudaFuncSetAttribute(fused_loss_kernel)");
    if (grad)
        CDAS_CUDA_CHECK(cudaFuncSetAttribute(fused_grad_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             static_cast<int>(FusedShared::pass3_bytes)),
                        "cudaFuncSetAttribute(fused_grad_kernel)");
    CDAS_LAUNCH(1, 1024, 0, s->stream, count_rows_kernel)(rows, mask, count, grad_scale, nullptr);
    if (grad)
        CDAS_CUDA_CHECK(cudaMemsetAsync(acc, 0, sizeof(float) * g.splits * g.rows_pad * g.dim_pad, s->stream),
                        "clearing the gradient accumulator");
    CDAS_LAUNCH(grid, kFusedThreads, FusedShared::pass1_bytes, s->stream, fused_stats_kernel<T>)(
        g, rows, dim, vocab, xs, xt, w, softcap, vec ? 1 : 0, stats);
    CDAS_LAUNCH(row_blocks, 256, 0, s->stream, fused_lse_kernel)(rows, g.splits, stats, lse);
    CDAS_LAUNCH(grid, kFusedThreads, FusedShared::pass1_bytes, s->stream, fused_loss_kernel<T>)(
        g, rows, dim, vocab, xs, xt, w, softcap, mask, vec ? 1 : 0, lse, partials);
    CDAS_LAUNCH(row_blocks, 256, 0, s->stream, fused_rows_kernel)(rows, g.splits, mask, partials, row_loss, row_s);
    if (grad) {
        CDAS_LAUNCH(grid, kFusedThreads, FusedShared::pass3_bytes, s->stream, fused_grad_kernel<T>)(
            g, rows, dim, vocab, xs, xt, w, softcap, mask, vec ? 1 : 0, lse, row_s, acc);
        CDAS_LAUNCH(static_cast<unsigned>(rows), 256, 0, s->stream, fused_finish_kernel)(
            g, rows, dim, mask, acc, count, grad_scale, grad_student_out);
    }
    CDAS_LAUNCH(1, 1024, 0, s->stream, loss_kernel)(rows, row_loss, count, loss_out);
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the FUSED JSD kernels");
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
    if (schedule == CDAS_JSD_SCHEDULE_FUSED && dtype == CDAS_DTYPE_F32) {
        set_error(error, error_len,
                  "lm_head_jsd: the FUSED schedule runs on bf16/f16 tensor-core tiles; use CHUNKED (or AUTO) for f32");
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (schedule != CDAS_JSD_SCHEDULE_AUTO && schedule != CDAS_JSD_SCHEDULE_CHUNKED &&
        schedule != CDAS_JSD_SCHEDULE_FUSED) {
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
    if (schedule == CDAS_JSD_SCHEDULE_FUSED) {
        if (dtype == CDAS_DTYPE_BF16)
            return run_fused_typed<__nv_bfloat16>(s, rows, dim, vocab, x_student, x_teacher, head, softcap, mask,
                                                  grad_scale, loss_out, row_loss_out, grad_student_out, error,
                                                  error_len);
        return run_fused_typed<__half>(s, rows, dim, vocab, x_student, x_teacher, head, softcap, mask, grad_scale,
                                       loss_out, row_loss_out, grad_student_out, error, error_len);
    }
    return run_chunked(s, chunk_rows, dtype, rows, dim, vocab, x_student, x_teacher, head, softcap, mask, grad_scale,
                       loss_out, row_loss_out, grad_student_out, error, error_len);
}
