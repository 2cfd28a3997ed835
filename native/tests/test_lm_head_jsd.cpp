// cdas_lm_head_jsd against the double reference: both schedule names (AUTO, CHUNKED: one path), dtypes,
// awkward shapes, masks,
// soft-cap, grad_scale; properties of the JSD; the libtorch baseline as a second opinion.
#include <cmath>
#include <cstdlib>
#include <string>

#include "cdas.h"
#include "harness.h"
#include "reference.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

struct jsd_case {
    int64_t rows, dim, vocab;
    int32_t dtype = CDAS_DTYPE_F32;
    int32_t schedule = CDAS_JSD_SCHEDULE_CHUNKED;
    double softcap = 0.0;
    bool masked = true;
    double grad_scale = 2.5;
    int32_t chunk_rows = 0;
    double logit_scale = 3.0;  // spread of the logits, so the distributions are far from uniform
};

struct jsd_inputs {
    cdas_ref::jsd_problem problem;
    typed_buffer xs, xt, head;
};

jsd_inputs make_inputs(const jsd_case& c, const char* salt) {
    auto rng = make_rng(salt);
    jsd_inputs in;
    auto& p = in.problem;
    p.rows = c.rows;
    p.dim = c.dim;
    p.vocab = c.vocab;
    p.x_student = random_normal(rng, c.rows * c.dim);
    p.x_teacher = p.x_student;
    auto noise = random_normal(rng, c.rows * c.dim, 0.7);
    for (size_t i = 0; i < noise.size(); ++i) p.x_teacher[i] += noise[i];
    p.head = random_normal(rng, c.vocab * c.dim, c.logit_scale / std::sqrt(double(c.dim)));
    p.softcap = c.softcap;
    p.grad_scale = c.grad_scale;
    if (c.masked) p.mask = random_mask(rng, c.rows);
    in.xs = to_dtype(c.dtype, p.x_student);
    in.xt = to_dtype(c.dtype, p.x_teacher);
    in.head = to_dtype(c.dtype, p.head);
    return in;
}

struct jsd_outputs {
    float loss;
    std::vector<float> row_loss, grad;
    cdas_status status;
};

jsd_outputs run_kernel(const jsd_case& c, const jsd_inputs& in, int threads = 0) {
    context_handle ctx(c.schedule, threads, c.chunk_rows);
    jsd_outputs out;
    out.loss = std::nanf("");
    out.row_loss.resize(size_t(c.rows));
    out.grad.resize(size_t(c.rows * c.dim));
    poison(out.row_loss);
    poison(out.grad);
    const auto& p = in.problem;
    out.status = cdas_lm_head_jsd(ctx.ptr, c.dtype, c.rows, c.dim, c.vocab, in.xs.data(), in.xt.data(), in.head.data(),
                                  float(c.softcap), p.mask.empty() ? nullptr : p.mask.data(), float(c.grad_scale),
                                  &out.loss, out.row_loss.data(), out.grad.data());
    return out;
}

// Returns the kernel's outputs, for callers that compare them further.
jsd_outputs check_against_reference(const jsd_case& c, const char* salt) {
    std::printf("    T=%lld d=%lld V=%lld %s %s softcap=%g mask=%d grad_scale=%g chunk_rows=%d\n", (long long)c.rows,
                (long long)c.dim, (long long)c.vocab, dtype_name(c.dtype),
                c.schedule == CDAS_JSD_SCHEDULE_AUTO ? "AUTO" : "CHUNKED", c.softcap, int(c.masked), c.grad_scale,
                c.chunk_rows);
    jsd_inputs in = make_inputs(c, salt);
    cdas_ref::jsd_result want = cdas_ref::lm_head_jsd(in.problem);
    jsd_outputs got = run_kernel(c, in);
    CHECK_MSG(got.status == CDAS_STATUS_OK, cdas_last_error());
    CHECK_NEAR(got.loss, want.loss, 2e-6 + 1e-4 * std::fabs(want.loss));
    CHECK_CLOSE("row_loss", got.row_loss.data(), want.row_loss.data(), c.rows, 2e-6, 2e-4);
    CHECK_CLOSE("grad_student", got.grad.data(), want.grad_student.data(), c.rows * c.dim,
                atol_for(c.dtype, max_abs(want.grad_student)), 1e-3);
    return got;
}

}  // namespace

TEST(jsd_awkward_shapes_all_variants) {
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED})
        for (int32_t dtype : {CDAS_DTYPE_F32, CDAS_DTYPE_BF16})
            for (double softcap : {0.0, 4.0}) {
                jsd_case c{41, 67, 1271};
                c.schedule = schedule;
                c.dtype = dtype;
                c.softcap = softcap;
                check_against_reference(c, "jsd_awkward");
            }
}

// The CPU kernel's row functions exist in three variants (AVX-512, AVX2 + FMA, the x86-64 baseline;
// lm_head_jsd.cpp's row_ops) and a CPU runs only the best it has unless CDAS_CPU_ISA names another:
// each variant this CPU can run, in turn, against the reference, on shapes whose vocabulary is not
// a multiple of any lane count (a row's vector blocks and its scalar end), with and without the
// soft-cap; and the variants against each other (the same math, their sums in another order).
TEST(jsd_every_cpu_variant_matches_reference) {
    struct variant {
        const char* name;
        bool runs;
    };
#if defined(__x86_64__)
    const variant variants[] = {{"avx512", __builtin_cpu_supports("avx512f") != 0},
                                {"avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
                                {"baseline", true}};
#else
    const variant variants[] = {{"baseline", true}};
#endif
    const char* before = std::getenv("CDAS_CPU_ISA");
    const std::string saved = before ? before : "";
    std::vector<jsd_case> cases;
    for (double softcap : {0.0, 3.0})
        for (int64_t vocab : {int64_t(7), int64_t(1021), int64_t(4099)}) {
            jsd_case c{23, 40, vocab};
            c.softcap = softcap;
            c.logit_scale = 6.0;  // far from uniform: exp's and log's whole ranges, P and Q apart
            cases.push_back(c);
        }
    jsd_case bf16{17, 24, 531};
    bf16.dtype = CDAS_DTYPE_BF16;
    cases.push_back(bf16);
    std::vector<std::vector<double>> first_losses(cases.size());
    int ran = 0;
    for (const variant& v : variants) {
        if (!v.runs) {
            std::printf("    %s: not run, this CPU lacks it\n", v.name);
            continue;
        }
        ++ran;
        setenv("CDAS_CPU_ISA", v.name, 1);
        std::printf("    %s:\n", v.name);
        for (size_t i = 0; i < cases.size(); ++i) {
            jsd_outputs got = check_against_reference(cases[i], "jsd_every_variant");
            if (first_losses[i].empty()) {
                first_losses[i].assign(got.row_loss.begin(), got.row_loss.end());
                continue;
            }
            CHECK_CLOSE("row_loss against the first variant", got.row_loss.data(), first_losses[i].data(),
                        cases[i].rows, 2e-6, 2e-4);  // as against the reference: fp32 JSD cancels
        }
    }
    if (saved.empty())
        unsetenv("CDAS_CPU_ISA");
    else
        setenv("CDAS_CPU_ISA", saved.c_str(), 1);
    CHECK_MSG(ran >= 1, "no variant ran");
}

TEST(jsd_f16_and_auto_schedule) {
    jsd_case c{13, 33, 517};
    c.dtype = CDAS_DTYPE_F16;
    c.schedule = CDAS_JSD_SCHEDULE_AUTO;
    check_against_reference(c, "jsd_f16");
}

TEST(jsd_single_row_small_vocab) {
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        jsd_case c{1, 19, 37};
        c.schedule = schedule;
        c.masked = false;
        c.grad_scale = 1.0;
        check_against_reference(c, "jsd_single_row");
    }
}

TEST(jsd_many_chunks_and_tiles) {
    // chunk_rows 7 splits 41 rows unevenly; V = 2053 spans two head-conversion tiles (2048) with a
    // ragged end.
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED})
        for (int32_t dtype : {CDAS_DTYPE_F32, CDAS_DTYPE_BF16}) {
            jsd_case c{41, 24, 2053};
            c.schedule = schedule;
            c.dtype = dtype;
            c.chunk_rows = 7;
            c.softcap = 2.0;
            c.grad_scale = -0.75;
            check_against_reference(c, "jsd_chunks");
        }
}

TEST(jsd_all_rows_masked_gives_zero) {
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        jsd_case c{5, 8, 50};
        c.schedule = schedule;
        jsd_inputs in = make_inputs(c, "jsd_masked");
        in.problem.mask.assign(5, 0);
        jsd_outputs got = run_kernel(c, in);
        CHECK(got.status == CDAS_STATUS_OK);
        CHECK(got.loss == 0.0f);
        for (float v : got.row_loss) CHECK(v == 0.0f);
        for (float v : got.grad) CHECK(v == 0.0f);
    }
}

TEST(jsd_forward_only_and_null_row_loss) {
    jsd_case c{9, 16, 300};
    jsd_inputs in = make_inputs(c, "jsd_fwd");
    cdas_ref::jsd_result want = cdas_ref::lm_head_jsd(in.problem);
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        context_handle ctx(schedule);
        float loss = std::nanf("");
        CHECK_STATUS(cdas_lm_head_jsd(ctx.ptr, c.dtype, c.rows, c.dim, c.vocab, in.xs.data(), in.xt.data(),
                                      in.head.data(), 0.0f, in.problem.mask.data(), 1.0f, &loss, nullptr, nullptr),
                     CDAS_STATUS_OK);
        CHECK_NEAR(loss, want.loss, 2e-6 + 1e-4 * want.loss);
    }
}

TEST(jsd_removed_schedule_is_refused) {
    // 2 was the FUSED schedule (removed): a context asking for it, or any other unknown value, is
    // refused when it is created, naming the option.
    for (int32_t schedule : {2, 3, -1}) {
        cdas_context_options o;
        cdas_context_options_default(&o);
        o.jsd_schedule = schedule;
        cdas_context* ctx = nullptr;
        CHECK_STATUS(cdas_context_create(&o, &ctx), CDAS_STATUS_INVALID_ARGUMENT);
        CHECK(ctx == nullptr);
        CHECK_MSG(std::string(cdas_last_error()).find("jsd_schedule") != std::string::npos, cdas_last_error());
    }
}

TEST(jsd_identical_distributions_give_zero) {
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        jsd_case c{7, 20, 333};
        c.schedule = schedule;
        c.softcap = 5.0;
        jsd_inputs in = make_inputs(c, "jsd_same");
        in.xt = in.xs;
        jsd_outputs got = run_kernel(c, in);
        CHECK(got.status == CDAS_STATUS_OK);
        CHECK_NEAR(got.loss, 0.0, 1e-6);
        for (float v : got.grad) CHECK_NEAR(v, 0.0, 1e-6);
    }
}

TEST(jsd_symmetric_and_bounded) {
    jsd_case c{17, 12, 211};
    c.masked = false;
    c.logit_scale = 40.0;  // near one-hot distributions push the JSD towards ln 2
    jsd_inputs in = make_inputs(c, "jsd_sym");
    jsd_outputs forward = run_kernel(c, in);
    std::swap(in.xs, in.xt);
    jsd_outputs swapped = run_kernel(c, in);
    double largest = 0.0;
    for (int64_t t = 0; t < c.rows; ++t) {
        float a = forward.row_loss[size_t(t)], b = swapped.row_loss[size_t(t)];
        CHECK_NEAR(a, b, 1e-5);
        CHECK_MSG(a >= -1e-6f && a <= float(std::log(2.0)) + 1e-5f,
                  "row " + std::to_string(t) + ": JSD " + std::to_string(double(a)) + " outside [0, ln 2]");
        largest = std::max(largest, double(a));
    }
    std::printf("    largest per-row JSD %.6f (ln 2 = %.6f)\n", largest, std::log(2.0));
}

TEST(jsd_baseline_agrees_with_kernel) {
    for (double softcap : {0.0, 4.0}) {
        jsd_case c{41, 67, 1271};
        c.softcap = softcap;
        jsd_inputs in = make_inputs(c, "jsd_baseline");
        jsd_outputs got = run_kernel(c, in);
        const auto& p = in.problem;
        float loss = std::nanf("");
        std::vector<float> row(size_t(c.rows)), grad(size_t(c.rows * c.dim));
        poison(row);
        poison(grad);
        CHECK_STATUS(cdas_baseline_lm_head_jsd_torch(c.rows, c.dim, c.vocab, static_cast<const float*>(in.xs.data()),
                                                     static_cast<const float*>(in.xt.data()),
                                                     static_cast<const float*>(in.head.data()), float(softcap),
                                                     p.mask.data(), float(c.grad_scale), &loss, row.data(), grad.data()),
                     CDAS_STATUS_OK);
        std::vector<double> want_row(got.row_loss.begin(), got.row_loss.end());
        std::vector<double> want_grad(got.grad.begin(), got.grad.end());
        CHECK_NEAR(loss, got.loss, 1e-5 * std::fabs(got.loss) + 1e-6);
        CHECK_CLOSE("baseline row_loss", row.data(), want_row.data(), c.rows, 2e-6, 2e-4);
        CHECK_CLOSE("baseline grad", grad.data(), want_grad.data(), c.rows * c.dim, 2e-5 * max_abs(want_grad), 1e-3);
    }
}

TEST(jsd_workspace_stays_chunk_sized) {
    jsd_case c{64, 16, 5000};
    c.masked = false;
    jsd_inputs in = make_inputs(c, "jsd_ws");
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        context_handle ctx(schedule, 0, 8);
        float loss;
        std::vector<float> grad(size_t(c.rows * c.dim));
        CHECK_STATUS(cdas_lm_head_jsd(ctx.ptr, c.dtype, c.rows, c.dim, c.vocab, in.xs.data(), in.xt.data(),
                                      in.head.data(), 0.0f, nullptr, 1.0f, &loss, nullptr, grad.data()),
                     CDAS_STATUS_OK);
        int64_t bytes = -1;
        CHECK_STATUS(cdas_context_peak_workspace_bytes(ctx.ptr, &bytes), CDAS_STATUS_OK);
        int64_t full_logits = c.rows * c.vocab * 4;
        std::printf("    schedule %d: peak workspace %lld bytes, one T x V fp32 logit matrix %lld bytes\n", schedule,
                    (long long)bytes, (long long)full_logits);
        CHECK(bytes > 0 && bytes < full_logits / 2);
    }
}
