// The C ABI's contract: version and features, contexts, and bad arguments giving the right status
// with a message (never a crash).
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "cdas.h"
#include "harness.h"
#include "test_util.h"

using namespace cdas_test;

TEST(api_version_and_features) {
    CHECK(cdas_version() == CDAS_VERSION_MAJOR * 10000 + CDAS_VERSION_MINOR * 100 + CDAS_VERSION_PATCH);
    CHECK((cdas_build_features() & CDAS_FEATURE_TORCH) != 0);
    int32_t count = -1;
    CHECK_STATUS(cdas_cuda_device_count(&count), CDAS_STATUS_OK);
    CHECK(count >= 0);
    CHECK(std::strlen(cdas_last_error()) == 0);
    CHECK_FAILS(cdas_cuda_device_count(nullptr), CDAS_STATUS_INVALID_ARGUMENT, "count");
    std::printf("    features %u, CUDA devices %d\n", cdas_build_features(), count);
}

TEST(api_context_lifecycle) {
    CHECK_STATUS(cdas_context_destroy(nullptr), CDAS_STATUS_OK);
    cdas_context_options o;
    CHECK_STATUS(cdas_context_options_default(&o), CDAS_STATUS_OK);
    CHECK(o.device_type == CDAS_DEVICE_CPU && o.num_threads == 0 && o.jsd_schedule == CDAS_JSD_SCHEDULE_AUTO);
    CHECK(o.check_inputs == 0);  // appended field; zero is the default (no device-side scan on CUDA)
    cdas_context* ctx = nullptr;
    CHECK_STATUS(cdas_context_create(&o, &ctx), CDAS_STATUS_OK);
    int64_t bytes = -1;
    CHECK_STATUS(cdas_context_peak_workspace_bytes(ctx, &bytes), CDAS_STATUS_OK);
    CHECK(bytes == 0);
    CHECK_STATUS(cdas_context_synchronize(ctx), CDAS_STATUS_OK);
    CHECK_STATUS(cdas_context_destroy(ctx), CDAS_STATUS_OK);

    CHECK_FAILS(cdas_context_options_default(nullptr), CDAS_STATUS_INVALID_ARGUMENT, "options");
    CHECK_FAILS(cdas_context_create(nullptr, &ctx), CDAS_STATUS_INVALID_ARGUMENT, "options");
    CHECK_FAILS(cdas_context_create(&o, nullptr), CDAS_STATUS_INVALID_ARGUMENT, "context");
    cdas_context_options bad = o;
    bad.device_type = 7;
    CHECK_FAILS(cdas_context_create(&bad, &ctx), CDAS_STATUS_INVALID_ARGUMENT, "device_type");
    bad = o;
    bad.jsd_schedule = 9;
    CHECK_FAILS(cdas_context_create(&bad, &ctx), CDAS_STATUS_INVALID_ARGUMENT, "jsd_schedule");
    bad = o;
    bad.num_threads = -2;
    CHECK_FAILS(cdas_context_create(&bad, &ctx), CDAS_STATUS_INVALID_ARGUMENT, "num_threads");
    bad = o;
    bad.chunk_rows = -1;
    CHECK_FAILS(cdas_context_create(&bad, &ctx), CDAS_STATUS_INVALID_ARGUMENT, "chunk_rows");
    CHECK_FAILS(cdas_context_peak_workspace_bytes(nullptr, &bytes), CDAS_STATUS_INVALID_ARGUMENT, "context");
    CHECK_FAILS(cdas_context_synchronize(nullptr), CDAS_STATUS_INVALID_ARGUMENT, "context");
}

TEST(api_cuda_context_without_gpu_is_unsupported) {
    int32_t count = 0;
    CHECK_STATUS(cdas_cuda_device_count(&count), CDAS_STATUS_OK);
    if (count > 0) SKIP(std::to_string(count) + " CUDA device(s) present: the no-GPU error cannot be reached");
    cdas_context_options o;
    cdas_context_options_default(&o);
    o.device_type = CDAS_DEVICE_CUDA;
    cdas_context* ctx = reinterpret_cast<cdas_context*>(0x1);
    CHECK_FAILS(cdas_context_create(&o, &ctx), CDAS_STATUS_UNSUPPORTED, "CUDA");
    CHECK(ctx == nullptr);
}

TEST(api_dii_bad_arguments) {
    context_handle ctx;
    const int64_t T = 4, d = 3, r = 1, B = 2;
    std::vector<float> h(T * d, 1.0f), w(r * d, 0.5f), s(B * d, 1.0f), v(B * r, 1.0f), out(T * d), g(T * d, 1.0f);
    std::vector<int32_t> idx = {0, 1, 1, 0};
    const int32_t F = CDAS_DTYPE_F32;
    auto fwd = [&](cdas_context* c, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t ex, const void* hp,
                   const float* wp, const void* sp, const float* vp, const int32_t* ip, void* op) {
        return cdas_dii_forward(c, dtype, rows, dim, rank, ex, hp, wp, sp, vp, ip, nullptr, op, nullptr);
    };
    CHECK_STATUS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()), CDAS_STATUS_OK);
    CHECK_FAILS(fwd(nullptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "context");
    CHECK_FAILS(fwd(ctx.ptr, 5, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "dtype");
    CHECK_FAILS(fwd(ctx.ptr, F, 0, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "rows");
    CHECK_FAILS(fwd(ctx.ptr, F, T, -3, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "dim");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, 0, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "rank");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, 4, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "rank must be <= dim");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, 0, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "examples");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, nullptr, w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "h must not be NULL");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), nullptr, s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "directions");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), nullptr, nullptr, idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "neither");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), v.data(), idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "both");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, nullptr, out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "example_index");
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "h_out");
    std::vector<int32_t> bad_idx = {0, 1, 2, 0};
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, bad_idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "example_index[2] = 2");
    bad_idx = {0, -1, 0, 0};
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, bad_idx.data(), out.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "example_index[1] = -1");
    std::vector<float> nan_h = h;
    nan_h[2 * d + 1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, nan_h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_NON_FINITE, "h contains a non-finite value (nan) at row 2, column 1");
    std::vector<float> inf_s = s;
    inf_s[4] = std::numeric_limits<float>::infinity();
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), inf_s.data(), nullptr, idx.data(), out.data()),
                CDAS_STATUS_NON_FINITE, "source");
    std::vector<float> nan_v = v;
    nan_v[1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_FAILS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), nullptr, nan_v.data(), idx.data(), out.data()),
                CDAS_STATUS_NON_FINITE, "values");
    std::vector<uint16_t> bf_h(T * d, 0x3f80);
    bf_h[5] = 0x7fc0;
    CHECK_FAILS(fwd(ctx.ptr, CDAS_DTYPE_BF16, T, d, r, B, bf_h.data(), w.data(), bf_h.data(), nullptr, idx.data(),
                    out.data()),
                CDAS_STATUS_NON_FINITE, "row 1, column 2");

    CHECK_FAILS(cdas_dii_backward(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), nullptr,
                                  nullptr, out.data(), nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "grad_out");
    std::vector<float> nan_g = g;
    nan_g[0] = -std::numeric_limits<float>::infinity();
    CHECK_FAILS(cdas_dii_backward(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), nullptr,
                                  nan_g.data(), out.data(), nullptr, nullptr),
                CDAS_STATUS_NON_FINITE, "grad_out");
    // A failure is cleared by the next success.
    CHECK_STATUS(fwd(ctx.ptr, F, T, d, r, B, h.data(), w.data(), s.data(), nullptr, idx.data(), out.data()), CDAS_STATUS_OK);
    CHECK(std::strlen(cdas_last_error()) == 0);
}

TEST(api_lm_head_jsd_bad_arguments) {
    context_handle ctx;
    const int64_t T = 3, d = 4, V = 5;
    std::vector<float> xs(T * d, 0.1f), xt(T * d, 0.2f), w(V * d, 0.3f), grad(T * d);
    float loss;
    const int32_t F = CDAS_DTYPE_F32;
    auto call = [&](cdas_context* c, int32_t dtype, int64_t rows, int64_t dim, int64_t vocab, const void* a,
                    const void* b, const void* head, float softcap, float scale, float* l) {
        return cdas_lm_head_jsd(c, dtype, rows, dim, vocab, a, b, head, softcap, nullptr, scale, l, nullptr, grad.data());
    };
    CHECK_STATUS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_OK);
    CHECK_FAILS(call(nullptr, F, T, d, V, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "context");
    CHECK_FAILS(call(ctx.ptr, -1, T, d, V, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "dtype");
    CHECK_FAILS(call(ctx.ptr, F, 0, d, V, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "rows");
    CHECK_FAILS(call(ctx.ptr, F, T, 0, V, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "dim");
    CHECK_FAILS(call(ctx.ptr, F, T, d, -5, xs.data(), xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "vocab");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, nullptr, xt.data(), w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "x_student");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), nullptr, w.data(), 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "x_teacher");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), nullptr, 0, 1, &loss), CDAS_STATUS_INVALID_ARGUMENT, "head");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), w.data(), 0, 1, nullptr), CDAS_STATUS_INVALID_ARGUMENT, "loss_out");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), w.data(), NAN, 1, &loss), CDAS_STATUS_NON_FINITE, "softcap");
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), w.data(), 0, INFINITY, &loss), CDAS_STATUS_NON_FINITE, "grad_scale");
    std::vector<float> bad = w;
    bad[3 * d + 2] = NAN;
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), xt.data(), bad.data(), 0, 1, &loss), CDAS_STATUS_NON_FINITE,
                "head contains a non-finite value (nan) at row 3, column 2");
    bad = xt;
    bad[5] = INFINITY;
    CHECK_FAILS(call(ctx.ptr, F, T, d, V, xs.data(), bad.data(), w.data(), 0, 1, &loss), CDAS_STATUS_NON_FINITE,
                "x_teacher contains a non-finite value (inf) at row 1, column 1");
    CHECK_FAILS(cdas_baseline_lm_head_jsd_torch(T, d, V, nullptr, xt.data(), w.data(), 0, nullptr, 1, &loss, nullptr,
                                                nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "x_student");
    CHECK_FAILS(cdas_baseline_dii_torch(T, d, 1, 1, xs.data(), w.data(), nullptr, nullptr, nullptr, nullptr,
                                        grad.data(), nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "source");
}
