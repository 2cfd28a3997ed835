// The LM-head GEMM: BLAS path and the C++ fallback against a double loop, every transpose
// combination, ragged sizes, alpha/beta.
#include <vector>

#include "cpu/gemm.h"
#include "cpu/thread_pool.h"
#include "harness.h"
#include "test_util.h"

using namespace cdas_test;

TEST(gemm_blas_and_fallback_match_double_loop) {
    std::printf("    BLAS sgemm_ resolved: %s\n", cdas::cpu::gemm_has_blas() ? "yes" : "no");
    auto rng = make_rng("gemm");
    cdas::cpu::thread_pool pool(3);
    const int64_t m = 37, n = 1029, k = 301;
    for (bool ta : {false, true})
        for (bool tb : {false, true}) {
            std::vector<double> a = random_normal(rng, m * k), b = random_normal(rng, k * n), c0 = random_normal(rng, m * n);
            std::vector<float> af = to_float(a), bf = to_float(b), c0f = to_float(c0);
            const float alpha = 0.75f, beta = -0.5f;
            // op(A)[i,p]: A stored [m x k] or, transposed, [k x m]; likewise B.
            auto A = [&](int64_t i, int64_t p) { return ta ? a[size_t(p * m + i)] : a[size_t(i * k + p)]; };
            auto B = [&](int64_t p, int64_t j) { return tb ? b[size_t(j * k + p)] : b[size_t(p * n + j)]; };
            std::vector<double> want(size_t(m * n));
            for (int64_t i = 0; i < m; ++i)
                for (int64_t j = 0; j < n; ++j) {
                    double s = 0.0;
                    for (int64_t p = 0; p < k; ++p) s += A(i, p) * B(p, j);
                    want[size_t(i * n + j)] = alpha * s + beta * c0[size_t(i * n + j)];
                }
            for (bool fallback : {false, true}) {
                cdas::cpu::gemm_force_fallback(fallback);
                std::vector<float> c = c0f;
                cdas::cpu::gemm(m, n, k, alpha, {af.data(), ta ? m : k, ta}, {bf.data(), tb ? k : n, tb}, beta,
                                c.data(), n, &pool);
                std::string what = std::string(fallback ? "fallback" : "blas") + (ta ? " A^T" : " A") + (tb ? " B^T" : " B");
                CHECK_CLOSE(what.c_str(), c.data(), want.data(), m * n, 1e-4, 1e-4);
            }
            cdas::cpu::gemm_force_fallback(false);
        }
}
