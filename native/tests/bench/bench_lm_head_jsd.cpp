// One-off timing of cdas_lm_head_jsd against the libtorch-composed baseline at
// a GPT-2-sized head. Not a test: run by hand, prints medians.
//   cdas_bench_lm_head_jsd [T d V repeats softcap chunk_rows run_baseline threads]
//   (run_baseline 0 skips the libtorch baseline; threads 0 = all available cores)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include <sys/resource.h>

#include "cdas.h"

namespace {

double median_seconds(int repeats, const std::function<void()>& run) {
    run();  // warm-up: workspace, thread pool, BLAS buffers
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        auto start = std::chrono::steady_clock::now();
        run();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

void check(cdas_status s) {
    if (s != CDAS_STATUS_OK) {
        std::fprintf(stderr, "failed: %s\n", cdas_last_error());
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char** argv) {
    int64_t T = argc > 1 ? std::atoll(argv[1]) : 512;
    int64_t d = argc > 2 ? std::atoll(argv[2]) : 768;
    int64_t V = argc > 3 ? std::atoll(argv[3]) : 50257;
    int repeats = argc > 4 ? std::atoi(argv[4]) : 5;
    float softcap = argc > 5 ? float(std::atof(argv[5])) : 0.0f;
    int32_t chunk_rows = argc > 6 ? std::atoi(argv[6]) : 0;
    bool run_baseline = argc > 7 ? std::atoi(argv[7]) != 0 : true;
    int32_t threads = argc > 8 ? std::atoi(argv[8]) : 0;  // the context's CPU threads; 0 = all available cores
    std::mt19937 rng(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> xs(size_t(T * d)), xt(size_t(T * d)), head(size_t(V * d)), grad(size_t(T * d));
    for (auto& x : xs) x = dist(rng);
    for (size_t i = 0; i < xt.size(); ++i) xt[i] = xs[i] + 0.5f * dist(rng);
    for (auto& x : head) x = dist(rng) * 0.1f;
    std::printf("lm_head_jsd fwd+bwd, T=%lld d=%lld V=%lld softcap=%g, median of %d\n", (long long)T, (long long)d,
                (long long)V, softcap, repeats);

    auto peak_rss_mb = [] {
        rusage u{};
        getrusage(RUSAGE_SELF, &u);
        return u.ru_maxrss / 1024.0;
    };
    double rss_before = peak_rss_mb();
    float loss_base = 0;
    double base = !run_baseline ? 1.0 : median_seconds(repeats, [&] {
        check(cdas_baseline_lm_head_jsd_torch(T, d, V, xs.data(), xt.data(), head.data(), softcap, nullptr, 1.0f,
                                              &loss_base, nullptr, grad.data()));
    });
    std::printf("  libtorch composed baseline: %8.1f ms  (loss %.6f), peak RSS growth %.0f MB\n", base * 1e3, loss_base,
                peak_rss_mb() - rss_before);

    {
        cdas_context_options o;
        cdas_context_options_default(&o);
        o.chunk_rows = chunk_rows;
        o.num_threads = threads;
        cdas_context* ctx = nullptr;
        check(cdas_context_create(&o, &ctx));
        float loss = 0;
        double t = median_seconds(repeats, [&] {
            check(cdas_lm_head_jsd(ctx, CDAS_DTYPE_F32, T, d, V, xs.data(), xt.data(), head.data(), softcap, nullptr,
                                   1.0f, &loss, nullptr, grad.data()));
        });
        int64_t bytes = 0;
        check(cdas_context_peak_workspace_bytes(ctx, &bytes));
        std::printf("  cdas                          : %8.1f ms  (loss %.6f) %.2fx faster, peak workspace %.1f MB\n",
                    t * 1e3, loss, base / t, bytes / 1e6);
        cdas_context_destroy(ctx);
    }
    return 0;
}
