// The LM-head GEMM: BLAS path and the C++ fallback against a double loop, every transpose
// combination, ragged sizes, alpha/beta.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
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

#include "cpu/lm_head_jsd.h"
#include "cpu/runtime.h"
#include "reference.h"

TEST(jsd_kernel_with_fallback_gemm_matches_reference) {
    auto rng = make_rng("jsd_fallback");
    cdas_ref::jsd_problem p{23, 35, 1100};
    p.x_student = random_normal(rng, p.rows * p.dim);
    p.x_teacher = random_normal(rng, p.rows * p.dim);
    p.head = random_normal(rng, p.vocab * p.dim, 0.5);
    p.softcap = 3.0;
    p.grad_scale = 1.3;
    p.mask = random_mask(rng, p.rows);
    std::vector<float> xs = to_float(p.x_student), xt = to_float(p.x_teacher), w = to_float(p.head);
    cdas_ref::jsd_result want = cdas_ref::lm_head_jsd(p);
    cdas::cpu::runtime rt(2);
    cdas::cpu::gemm_force_fallback(true);
    for (int64_t chunk_rows : {5, 0}) {
        float loss = NAN;
        std::vector<float> grad(size_t(p.rows * p.dim));
        poison(grad);
        cdas::cpu::lm_head_jsd_args args{CDAS_DTYPE_F32, p.rows, p.dim, p.vocab, xs.data(), xt.data(), w.data(),
                                         float(p.softcap), p.mask.data(), float(p.grad_scale), &loss, nullptr,
                                         grad.data()};
        cdas::cpu::lm_head_jsd(rt, args, chunk_rows);
        CHECK_NEAR(loss, want.loss, 1e-4 * want.loss + 1e-6);
        CHECK_CLOSE("fallback grad", grad.data(), want.grad_student.data(), p.rows * p.dim,
                    2e-5 * max_abs(want.grad_student), 1e-3);
    }
    cdas::cpu::gemm_force_fallback(false);
}

// One pool shared by several calling threads (the default CPU context's pool is used by the
// validation of every model's kernel calls, outside the context's lock): every caller's job must
// run on its own ranges and every caller must get its own result. A watchdog turns a deadlock
// into a failure instead of a hung test run.
TEST(thread_pool_parallel_for_from_several_threads) {
    cdas::cpu::thread_pool pool(3);
    const int callers = 4, rounds = 300;
    std::atomic<int> wrong{0}, finished{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < callers; ++c)
        threads.emplace_back([&, c] {
            for (int r = 0; r < rounds; ++r) {
                const int64_t count = 1000 + 37 * c + r % 5;
                std::vector<int64_t> sums(size_t(pool.size()), 0);
                pool.parallel_for(count, [&](int64_t begin, int64_t end, int worker) {
                    for (int64_t i = begin; i < end; ++i) sums[size_t(worker)] += i * (c + 1);
                });
                int64_t got = 0;
                for (int64_t s : sums) got += s;
                if (got != (c + 1) * count * (count - 1) / 2) wrong.fetch_add(1);
            }
            finished.fetch_add(1);
        });
    for (int waited_ms = 0; finished.load() < callers && waited_ms < 60000; waited_ms += 10)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (finished.load() < callers) {
        std::printf("    FAIL: %d of %d callers still inside parallel_for after 60 s (deadlock)\n",
                    callers - finished.load(), callers);
        std::fflush(stdout);
        std::_Exit(1);
    }
    for (auto& t : threads) t.join();
    CHECK_MSG(wrong.load() == 0, "a caller got another caller's ranges or a partial result");
}
