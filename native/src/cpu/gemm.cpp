#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/thread_pool.h"

// Fortran BLAS, resolved at load time if any library in the process defines it (libtorch_cpu
// does, with MKL behind it). Weak, so cdas_kernels_cpu links without any BLAS.
extern "C" void sgemm_(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc) __attribute__((weak));

// MKL's per-thread thread count (the C entry; mkl_set_num_threads_local is the Fortran one,
// taking a pointer). The products are split over the
// context's own workers, each calling a single-threaded sgemm_: MKL's OpenMP threads would
// otherwise spin-wait between calls and steal the cores from the element-wise passes.
extern "C" int MKL_Set_Num_Threads_Local(int nt) __attribute__((weak));

namespace cdas::cpu {

namespace {

std::atomic<bool> force_fallback{false};

constexpr int64_t kBlockK = 256;  // a K-panel of B (kBlockK x kBlockN floats) stays in L2
constexpr int64_t kBlockN = 512;

// C[i, 0..nb) += sum_p a_row[p] * panel[p, 0..nb) over one K-panel, four rows of A at once so
// each panel row loaded from cache feeds four accumulating rows of C.
__attribute__((target_clones("avx512f", "avx2", "default")))
void panel_multiply(int64_t rows, int64_t kb, int64_t nb, const float* a_rows, int64_t a_row_stride,
                    int64_t a_col_stride, const float* panel, float alpha, float* c, int64_t ldc) {
    int64_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        float* __restrict c0 = c + i * ldc;
        float* __restrict c1 = c0 + ldc;
        float* __restrict c2 = c1 + ldc;
        float* __restrict c3 = c2 + ldc;
        const float* a0 = a_rows + i * a_row_stride;
        for (int64_t p = 0; p < kb; ++p) {
            const float* __restrict bp = panel + p * nb;
            float s0 = alpha * a0[p * a_col_stride];
            float s1 = alpha * a0[a_row_stride + p * a_col_stride];
            float s2 = alpha * a0[2 * a_row_stride + p * a_col_stride];
            float s3 = alpha * a0[3 * a_row_stride + p * a_col_stride];
            for (int64_t j = 0; j < nb; ++j) {
                float b = bp[j];
                c0[j] += s0 * b;
                c1[j] += s1 * b;
                c2[j] += s2 * b;
                c3[j] += s3 * b;
            }
        }
    }
    for (; i < rows; ++i) {
        float* __restrict c0 = c + i * ldc;
        const float* a0 = a_rows + i * a_row_stride;
        for (int64_t p = 0; p < kb; ++p) {
            const float* __restrict bp = panel + p * nb;
            float s0 = alpha * a0[p * a_col_stride];
            for (int64_t j = 0; j < nb; ++j) c0[j] += s0 * bp[j];
        }
    }
}

void gemm_fallback(int64_t m, int64_t n, int64_t k, float alpha, gemm_operand a, gemm_operand b,
                   float beta, float* c, int64_t ldc, thread_pool* pool) {
    for (int64_t i = 0; i < m; ++i) {
        float* row = c + i * ldc;
        if (beta == 0.0f) std::fill(row, row + n, 0.0f);
        else if (beta != 1.0f) for (int64_t j = 0; j < n; ++j) row[j] *= beta;
    }
    if (k == 0 || alpha == 0.0f) return;
    // op(A)[i, p] = a.data[i * a_row_stride + p * a_col_stride]
    int64_t a_row_stride = a.trans ? 1 : a.ld;
    int64_t a_col_stride = a.trans ? a.ld : 1;
    auto work = [&](int64_t j_begin_block, int64_t j_end_block, int) {
        std::vector<float> panel(size_t(kBlockK * kBlockN));
        for (int64_t jb = j_begin_block; jb < j_end_block; ++jb) {
            int64_t j0 = jb * kBlockN;
            int64_t nb = std::min(kBlockN, n - j0);
            for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
                int64_t kb = std::min(kBlockK, k - p0);
                // Pack op(B)[p0.., j0..] row-major so the inner loop is unit-stride.
                for (int64_t p = 0; p < kb; ++p) {
                    float* dst = panel.data() + p * nb;
                    if (!b.trans) {
                        std::memcpy(dst, b.data + (p0 + p) * b.ld + j0, size_t(nb) * 4);
                    } else {
                        for (int64_t j = 0; j < nb; ++j) dst[j] = b.data[(j0 + j) * b.ld + p0 + p];
                    }
                }
                panel_multiply(m, kb, nb, a.data + p0 * a_col_stride, a_row_stride, a_col_stride,
                               panel.data(), alpha, c + j0, ldc);
            }
        }
    };
    int64_t n_blocks = (n + kBlockN - 1) / kBlockN;
    if (pool) pool->parallel_for(n_blocks, work);
    else work(0, n_blocks, 0);
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
void blas_sgemm(int64_t m, int64_t n, int64_t k, float alpha, gemm_operand a, gemm_operand b, float beta,
                float* c, int64_t ldc) {
    char ta = a.trans ? 'T' : 'N';
    char tb = b.trans ? 'T' : 'N';
    int im = int(m), in = int(n), ik = int(k);
    int lda = int(a.ld), ldb = int(b.ld), ildc = int(ldc);
    sgemm_(&tb, &ta, &in, &im, &ik, &alpha, b.data, &ldb, a.data, &lda, &beta, c, &ildc);
}

}  // namespace

bool gemm_has_blas() { return sgemm_ != nullptr; }

void gemm_force_fallback(bool force) { force_fallback.store(force); }

void gemm(int64_t m, int64_t n, int64_t k, float alpha, gemm_operand a, gemm_operand b,
          float beta, float* c, int64_t ldc, thread_pool* pool) {
    if (m <= 0 || n <= 0) return;
    constexpr int64_t int_max = 2147483647;
    bool fits_int = m <= int_max && n <= int_max && k <= int_max && a.ld <= int_max &&
                    b.ld <= int_max && ldc <= int_max;
    if (sgemm_ != nullptr && !force_fallback.load() && fits_int && k > 0) {
        const int workers = pool ? pool->size() : 1;
        if (MKL_Set_Num_Threads_Local == nullptr || workers == 1) {
            blas_sgemm(m, n, k, alpha, a, b, beta, c, ldc);
            return;
        }
        // Split C into column blocks (or row blocks when it is narrow), one per worker.
        const bool by_columns = n >= 64 * workers || n >= m;
        const int64_t extent = by_columns ? n : m;
        pool->parallel_for(extent, [&](int64_t begin, int64_t end, int) {
            int previous = MKL_Set_Num_Threads_Local(1);
            if (by_columns) {
                gemm_operand bj{b.trans ? b.data + begin * b.ld : b.data + begin, b.ld, b.trans};
                blas_sgemm(m, end - begin, k, alpha, a, bj, beta, c + begin, ldc);
            } else {
                gemm_operand ai{a.trans ? a.data + begin : a.data + begin * a.ld, a.ld, a.trans};
                blas_sgemm(end - begin, n, k, alpha, ai, b, beta, c + begin * ldc, ldc);
            }
            MKL_Set_Num_Threads_Local(previous);
        });
        return;
    }
    gemm_fallback(m, n, k, alpha, a, b, beta, c, ldc, pool);
}

}  // namespace cdas::cpu
