// Row-major single-precision GEMM for the LM-head products:
//   C[m x n] = alpha * op(A) * op(B) + beta * C,  op(X) = X or X^T.
// Uses the BLAS sgemm_ the process already has (libtorch_cpu exports MKL's) and falls back to a
// cache-blocked C++ loop nest when there is none, so the kernels need no BLAS to build or run.
#pragma once

#include <cstdint>

namespace cdas::cpu {

class thread_pool;

// A row-major operand: `data` with leading dimension `ld`, transposed when `trans`.
struct gemm_operand {
    const float* data;
    int64_t ld;
    bool trans;
};

// pool: the workers the product is split over (each calls a single-threaded BLAS when the BLAS
// is MKL, else BLAS threads itself and only the fallback uses the pool); may be null.
void gemm(int64_t m, int64_t n, int64_t k, float alpha, gemm_operand a, gemm_operand b,
          float beta, float* c, int64_t ldc, thread_pool* pool);

// True when a BLAS sgemm_ was found at load time.
bool gemm_has_blas();

// For tests and benchmarks: route gemm() to the C++ fallback even when BLAS is present.
void gemm_force_fallback(bool force);

}  // namespace cdas::cpu
