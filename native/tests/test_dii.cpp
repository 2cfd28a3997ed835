// cdas_dii_forward / cdas_dii_backward against the double reference, properties of the
// intervention, determinism of the grad_directions reduction, and the libtorch baseline.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "cdas.h"
#include "harness.h"
#include "reference.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

struct dii_case {
    int64_t rows, dim, rank, examples;
    int32_t dtype = CDAS_DTYPE_F32;
    bool use_source = true;
    bool masked = true;
    bool orthonormal = false;
    int64_t sets = 1;  // > 1: cdas_dii_*_sets with a random set per example (every set used)
};

struct dii_inputs {
    cdas_ref::dii_problem problem;
    typed_buffer h, source;
    std::vector<float> directions, values;
    std::vector<double> grad_out;
    typed_buffer grad_out_typed;
};

void orthonormalise(std::vector<double>& w, int64_t rank, int64_t dim) {
    for (int64_t k = 0; k < rank; ++k) {
        double* wk = &w[size_t(k * dim)];
        for (int64_t i = 0; i < k; ++i) {
            const double* wi = &w[size_t(i * dim)];
            double d = 0.0;
            for (int64_t j = 0; j < dim; ++j) d += wk[j] * wi[j];
            for (int64_t j = 0; j < dim; ++j) wk[j] -= d * wi[j];
        }
        double n = 0.0;
        for (int64_t j = 0; j < dim; ++j) n += wk[j] * wk[j];
        for (int64_t j = 0; j < dim; ++j) wk[j] /= std::sqrt(n);
    }
}

dii_inputs make_inputs(const dii_case& c, const char* salt) {
    auto rng = make_rng(salt);
    dii_inputs in;
    auto& p = in.problem;
    p.rows = c.rows;
    p.dim = c.dim;
    p.rank = c.rank;
    p.examples = c.examples;
    p.h = random_normal(rng, c.rows * c.dim);
    p.directions = random_normal(rng, c.sets * c.rank * c.dim, 1.0 / std::sqrt(double(c.dim)));
    if (c.orthonormal) orthonormalise(p.directions, c.rank, c.dim);
    if (c.sets > 1) {
        p.sets = c.sets;
        p.example_set.resize(size_t(c.examples));
        for (int64_t e = 0; e < c.examples; ++e) p.example_set[size_t(e)] = int32_t(e % c.sets);
        std::shuffle(p.example_set.begin(), p.example_set.end(), rng);
    }
    if (c.use_source) p.source = random_normal(rng, c.examples * c.dim);
    else p.values = random_normal(rng, c.examples * c.rank, 2.0);
    std::uniform_int_distribution<int32_t> ex(0, int32_t(c.examples - 1));
    p.example_index.resize(size_t(c.rows));
    for (auto& e : p.example_index) e = ex(rng);
    if (c.masked) p.mask = random_mask(rng, c.rows);
    in.h = to_dtype(c.dtype, p.h);
    if (c.use_source) in.source = to_dtype(c.dtype, p.source);
    in.directions = to_float(p.directions);
    if (!c.use_source) in.values = to_float(p.values);
    in.grad_out = random_normal(rng, c.rows * c.dim);
    in.grad_out_typed = to_dtype(c.dtype, in.grad_out);
    return in;
}

const void* source_ptr(const dii_inputs& in) { return in.problem.source.empty() ? nullptr : in.source.data(); }
const float* values_ptr(const dii_inputs& in) { return in.values.empty() ? nullptr : in.values.data(); }
const uint8_t* mask_ptr(const dii_inputs& in) { return in.problem.mask.empty() ? nullptr : in.problem.mask.data(); }

// Outputs stored in dtype carry its rounding: bf16 has 8 significant bits.
double output_rtol(int32_t dtype) { return dtype == CDAS_DTYPE_F32 ? 1e-4 : dtype == CDAS_DTYPE_BF16 ? 8e-3 : 1e-3; }

void check_against_reference(const dii_case& c, const char* salt) {
    std::printf("    T=%lld d=%lld r=%lld B=%lld sets=%lld %s %s mask=%d\n", (long long)c.rows, (long long)c.dim,
                (long long)c.rank, (long long)c.examples, (long long)c.sets, dtype_name(c.dtype),
                c.use_source ? "source" : "values", int(c.masked));
    dii_inputs in = make_inputs(c, salt);
    const auto& p = in.problem;
    context_handle ctx;
    const int64_t n = c.rows * c.dim;

    typed_buffer h_out = in.h;
    poison(h_out);
    std::vector<float> clamp(size_t(c.examples * c.rank));
    poison(clamp);
    CHECK_STATUS(c.sets == 1 ? cdas_dii_forward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(),
                                                in.directions.data(), source_ptr(in), values_ptr(in),
                                                p.example_index.data(), mask_ptr(in), h_out.data(), clamp.data())
                             : cdas_dii_forward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets,
                                                     in.h.data(), in.directions.data(), source_ptr(in), values_ptr(in),
                                                     p.example_index.data(), p.example_set.data(), mask_ptr(in),
                                                     h_out.data(), clamp.data()),
                 CDAS_STATUS_OK);
    cdas_ref::dii_result fwd = cdas_ref::dii_forward(p);
    std::vector<double> got_h = from_dtype(h_out, n);
    std::vector<float> got_hf(got_h.begin(), got_h.end());
    double rt = output_rtol(c.dtype);
    CHECK_CLOSE("h_out", got_hf.data(), fwd.h_out.data(), n, rt * max_abs(fwd.h_out) * 0.1 + 1e-6, rt);
    CHECK_CLOSE("source_values_out", clamp.data(), fwd.clamp.data(), c.examples * c.rank, 1e-5 * max_abs(fwd.clamp), 1e-4);

    typed_buffer grad_h = in.h;
    poison(grad_h);
    std::vector<float> grad_w(size_t(c.sets * c.rank * c.dim)), grad_v(size_t(c.examples * c.rank));
    poison(grad_w);
    poison(grad_v);
    CHECK_STATUS(c.sets == 1 ? cdas_dii_backward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(),
                                                 in.directions.data(), source_ptr(in), values_ptr(in),
                                                 p.example_index.data(), mask_ptr(in), in.grad_out_typed.data(),
                                                 grad_h.data(), grad_w.data(), grad_v.data())
                             : cdas_dii_backward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets,
                                                      in.h.data(), in.directions.data(), source_ptr(in),
                                                      values_ptr(in), p.example_index.data(), p.example_set.data(),
                                                      mask_ptr(in), in.grad_out_typed.data(), grad_h.data(),
                                                      grad_w.data(), grad_v.data()),
                 CDAS_STATUS_OK);
    cdas_ref::dii_result bwd = cdas_ref::dii_backward(p, in.grad_out);
    std::vector<double> got_gh = from_dtype(grad_h, n);
    std::vector<float> got_ghf(got_gh.begin(), got_gh.end());
    CHECK_CLOSE("grad_h", got_ghf.data(), bwd.grad_h.data(), n, rt * max_abs(bwd.grad_h) * 0.1 + 1e-6, rt);
    CHECK_CLOSE("grad_directions", grad_w.data(), bwd.grad_directions.data(), c.sets * c.rank * c.dim,
                1e-5 * max_abs(bwd.grad_directions), 1e-4);
    CHECK_CLOSE("grad_values", grad_v.data(), bwd.grad_values.data(), c.examples * c.rank,
                1e-5 * max_abs(bwd.grad_values), 1e-4);
}

}  // namespace

TEST(dii_matches_reference) {
    for (int32_t dtype : {CDAS_DTYPE_F32, CDAS_DTYPE_BF16})
        for (int64_t rank : {1, 3})
            for (bool use_source : {true, false}) {
                dii_case c{41, 67, rank, 5};
                c.dtype = dtype;
                c.use_source = use_source;
                check_against_reference(c, "dii_ref");
            }
    dii_case f16{41, 67, 3, 5};
    f16.dtype = CDAS_DTYPE_F16;
    check_against_reference(f16, "dii_f16");
    dii_case single{1, 5, 1, 1};
    single.masked = false;
    check_against_reference(single, "dii_single");
    dii_case many{300, 33, 2, 7};  // several reduction blocks, the last one ragged
    check_against_reference(many, "dii_many");
}

// Several direction sets in one call (concept packing): each example clamped with its own set's
// W, the gradient of each set from its own examples' rows only; against the double reference.
TEST(dii_direction_sets_match_reference) {
    for (int32_t dtype : {CDAS_DTYPE_F32, CDAS_DTYPE_BF16})
        for (int64_t rank : {1, 2})
            for (bool use_source : {true, false}) {
                dii_case c{157, 37, rank, 9};  // several 64-row reduction blocks
                c.dtype = dtype;
                c.use_source = use_source;
                c.sets = 3;
                check_against_reference(c, "dii_sets_ref");
            }
    dii_case one{12, 8, 1, 4};  // as many sets as examples
    one.sets = 4;
    check_against_reference(one, "dii_sets_each");
}

// The set gradient by central differences of L(W) = sum_t g_t . h'_t(W) through the fp32 forward
// (L is quadratic in W, so the central difference has no truncation error, only rounding), for a
// few coordinates of every set; a coordinate of set k must not move the rows of other sets.
TEST(dii_direction_sets_finite_difference) {
    dii_case c{90, 24, 2, 7};
    c.sets = 3;
    c.masked = true;
    dii_inputs in = make_inputs(c, "dii_sets_fd");
    const auto& p = in.problem;
    context_handle ctx;
    const int64_t n = c.rows * c.dim;
    auto loss = [&](const std::vector<float>& w) {
        std::vector<float> h_out(static_cast<size_t>(n));
        CHECK_STATUS(cdas_dii_forward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets, in.h.data(), w.data(),
                                           in.source.data(), nullptr, p.example_index.data(), p.example_set.data(),
                                           mask_ptr(in), h_out.data(), nullptr),
                     CDAS_STATUS_OK);
        double l = 0.0;
        for (int64_t i = 0; i < n; ++i) l += in.grad_out[size_t(i)] * double(h_out[size_t(i)]);
        return l;
    };
    std::vector<float> grad_w(size_t(c.sets * c.rank * c.dim));
    CHECK_STATUS(cdas_dii_backward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets, in.h.data(),
                                        in.directions.data(), in.source.data(), nullptr, p.example_index.data(),
                                        p.example_set.data(), mask_ptr(in), in.grad_out_typed.data(), nullptr,
                                        grad_w.data(), nullptr),
                 CDAS_STATUS_OK);
    double scale = 0.0;
    for (float g : grad_w) scale = std::max(scale, double(std::fabs(g)));
    auto rng = make_rng("dii_sets_fd_coords");
    std::uniform_int_distribution<int64_t> coord(0, c.rank * c.dim - 1);
    const float eps = 1e-2f;
    for (int64_t set = 0; set < c.sets; ++set)
        for (int i = 0; i < 6; ++i) {
            const int64_t k = set * c.rank * c.dim + coord(rng);
            std::vector<float> plus = in.directions, minus = in.directions;
            plus[size_t(k)] += eps;
            minus[size_t(k)] -= eps;
            const double fd = (loss(plus) - loss(minus)) / (double(plus[size_t(k)]) - double(minus[size_t(k)]));
            CHECK_MSG(std::fabs(fd - grad_w[size_t(k)]) <= 2e-3 * scale,
                      "set " + std::to_string(set) + " coordinate " + std::to_string(k) + ": finite difference " +
                          std::to_string(fd) + ", kernel " + std::to_string(grad_w[size_t(k)]));
        }
}

// A set's block is bitwise what a one-set call on that set's rows alone gives (its rows in the same
// order, its examples renumbered): the packed gradient of a concept is that of training it alone.
TEST(dii_direction_sets_equal_each_set_alone) {
    dii_case c{300, 40, 2, 8};  // each set's rows span several reduction blocks
    c.sets = 3;
    dii_inputs in = make_inputs(c, "dii_sets_alone");
    const auto& p = in.problem;
    context_handle ctx;
    std::vector<float> packed(size_t(c.sets * c.rank * c.dim));
    std::vector<float> grad_h(size_t(c.rows * c.dim));
    CHECK_STATUS(cdas_dii_backward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets, in.h.data(),
                                        in.directions.data(), in.source.data(), nullptr, p.example_index.data(),
                                        p.example_set.data(), mask_ptr(in), in.grad_out_typed.data(), grad_h.data(),
                                        packed.data(), nullptr),
                 CDAS_STATUS_OK);
    const float* h = static_cast<const float*>(in.h.data());
    const float* g = static_cast<const float*>(in.grad_out_typed.data());
    const float* src = static_cast<const float*>(in.source.data());
    for (int64_t set = 0; set < c.sets; ++set) {
        std::vector<int32_t> local(size_t(c.examples), -1), index;
        std::vector<float> hs, gs, ss;
        std::vector<uint8_t> mask;
        std::vector<int64_t> rows;
        int32_t examples = 0;
        for (int64_t e = 0; e < c.examples; ++e)
            if (p.example_set[size_t(e)] == set) {
                local[size_t(e)] = examples++;
                ss.insert(ss.end(), src + e * c.dim, src + (e + 1) * c.dim);
            }
        for (int64_t t = 0; t < c.rows; ++t) {
            const int32_t e = p.example_index[size_t(t)];
            if (local[size_t(e)] < 0) continue;
            rows.push_back(t);
            index.push_back(local[size_t(e)]);
            mask.push_back(p.mask[size_t(t)]);
            hs.insert(hs.end(), h + t * c.dim, h + (t + 1) * c.dim);
            gs.insert(gs.end(), g + t * c.dim, g + (t + 1) * c.dim);
        }
        const int64_t n = int64_t(rows.size());
        std::vector<float> alone(size_t(c.rank * c.dim)), alone_h(size_t(n * c.dim));
        CHECK_STATUS(cdas_dii_backward(ctx.ptr, c.dtype, n, c.dim, c.rank, examples, hs.data(),
                                       in.directions.data() + set * c.rank * c.dim, ss.data(), nullptr, index.data(),
                                       mask.data(), gs.data(), alone_h.data(), alone.data(), nullptr),
                     CDAS_STATUS_OK);
        CHECK_MSG(std::memcmp(alone.data(), packed.data() + set * c.rank * c.dim, alone.size() * 4) == 0,
                  "set " + std::to_string(set) + ": grad_directions differs bitwise from its call alone");
        for (int64_t i = 0; i < n; ++i)
            CHECK_MSG(std::memcmp(&alone_h[size_t(i * c.dim)], &grad_h[size_t(rows[size_t(i)] * c.dim)], size_t(c.dim) * 4) == 0,
                      "set " + std::to_string(set) + ": grad_h of row " + std::to_string(rows[size_t(i)]) + " differs");
    }
}

TEST(dii_direction_sets_reject_bad_set) {
    dii_case c{10, 8, 1, 3};
    c.sets = 2;
    dii_inputs in = make_inputs(c, "dii_sets_bad");
    const auto& p = in.problem;
    context_handle ctx;
    std::vector<float> h_out(size_t(c.rows * c.dim));
    std::vector<int32_t> bad = p.example_set;
    bad[1] = 2;
    CHECK_FAILS(cdas_dii_forward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets, in.h.data(),
                                      in.directions.data(), in.source.data(), nullptr, p.example_index.data(), bad.data(),
                                      mask_ptr(in), h_out.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "example_set[1]");
    CHECK_FAILS(cdas_dii_forward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, c.sets, in.h.data(),
                                      in.directions.data(), in.source.data(), nullptr, p.example_index.data(), nullptr,
                                      mask_ptr(in), h_out.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "example_set");
    CHECK_FAILS(cdas_dii_backward_sets(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, 0, in.h.data(),
                                       in.directions.data(), in.source.data(), nullptr, p.example_index.data(), nullptr,
                                       mask_ptr(in), in.grad_out_typed.data(), nullptr, nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "sets");
}

TEST(dii_forward_in_place) {
    dii_case c{23, 17, 2, 3};
    dii_inputs in = make_inputs(c, "dii_alias");
    context_handle ctx;
    cdas_ref::dii_result want = cdas_ref::dii_forward(in.problem);
    typed_buffer h = in.h;
    CHECK_STATUS(cdas_dii_forward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, h.data(), in.directions.data(),
                                  source_ptr(in), nullptr, in.problem.example_index.data(), mask_ptr(in), h.data(),
                                  nullptr),
                 CDAS_STATUS_OK);
    CHECK_CLOSE("h in place", static_cast<const float*>(h.data()), want.h_out.data(), c.rows * c.dim, 1e-5, 1e-4);
}

TEST(dii_sets_projection_and_keeps_complement) {
    dii_case c{31, 29, 3, 4};
    c.orthonormal = true;
    c.use_source = false;
    c.masked = false;
    dii_inputs in = make_inputs(c, "dii_props");
    context_handle ctx;
    std::vector<float> h_out(size_t(c.rows * c.dim));
    CHECK_STATUS(cdas_dii_forward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(), in.directions.data(),
                                  nullptr, in.values.data(), in.problem.example_index.data(), nullptr, h_out.data(),
                                  nullptr),
                 CDAS_STATUS_OK);
    const auto& p = in.problem;
    for (int64_t t = 0; t < c.rows; ++t) {
        const double* h = &p.h[size_t(t * c.dim)];
        const float* ho = &h_out[size_t(t * c.dim)];
        std::vector<double> delta(size_t(c.dim));
        for (int64_t j = 0; j < c.dim; ++j) delta[size_t(j)] = ho[j] - h[j];
        for (int64_t k = 0; k < c.rank; ++k) {
            const double* w = &p.directions[size_t(k * c.dim)];
            double proj = 0.0;
            for (int64_t j = 0; j < c.dim; ++j) proj += w[j] * ho[j];
            CHECK_NEAR(proj, p.values[size_t(p.example_index[size_t(t)] * c.rank + k)], 1e-5);
            // h' - h lies in the row space of W: removing its projections leaves nothing.
            double dk = 0.0;
            for (int64_t j = 0; j < c.dim; ++j) dk += w[j] * delta[size_t(j)];
            for (int64_t j = 0; j < c.dim; ++j) delta[size_t(j)] -= dk * w[j];
        }
        for (double v : delta) CHECK_NEAR(v, 0.0, 1e-5);
    }
}

TEST(dii_grad_directions_deterministic_across_threads) {
    dii_case c{1037, 96, 3, 6};
    dii_inputs in = make_inputs(c, "dii_det");
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
        context_handle ctx(CDAS_JSD_SCHEDULE_AUTO, threads);
        std::vector<float> grad_w(size_t(c.rank * c.dim)), grad_v(size_t(c.examples * c.rank));
        CHECK_STATUS(cdas_dii_backward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(),
                                       in.directions.data(), in.source.data(), nullptr,
                                       in.problem.example_index.data(), mask_ptr(in), in.grad_out_typed.data(),
                                       nullptr, grad_w.data(), grad_v.data()),
                     CDAS_STATUS_OK);
        grad_w.insert(grad_w.end(), grad_v.begin(), grad_v.end());
        if (first.empty()) first = grad_w;
        else CHECK_MSG(std::memcmp(first.data(), grad_w.data(), first.size() * 4) == 0,
                       "grad_directions/grad_values differ bitwise with " + std::to_string(threads) + " threads");
    }
}

TEST(dii_nullable_gradients) {
    dii_case c{19, 11, 2, 3};
    dii_inputs in = make_inputs(c, "dii_null");
    context_handle ctx;
    cdas_ref::dii_result want = cdas_ref::dii_backward(in.problem, in.grad_out);
    std::vector<float> grad_w(size_t(c.rank * c.dim));
    poison(grad_w);
    CHECK_STATUS(cdas_dii_backward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(),
                                   in.directions.data(), in.source.data(), nullptr, in.problem.example_index.data(),
                                   mask_ptr(in), in.grad_out_typed.data(), nullptr, grad_w.data(), nullptr),
                 CDAS_STATUS_OK);
    CHECK_CLOSE("grad_directions only", grad_w.data(), want.grad_directions.data(), c.rank * c.dim, 1e-5, 1e-4);
    std::vector<float> grad_h(size_t(c.rows * c.dim));
    poison(grad_h);
    CHECK_STATUS(cdas_dii_backward(ctx.ptr, c.dtype, c.rows, c.dim, c.rank, c.examples, in.h.data(),
                                   in.directions.data(), in.source.data(), nullptr, in.problem.example_index.data(),
                                   mask_ptr(in), in.grad_out_typed.data(), grad_h.data(), nullptr, nullptr),
                 CDAS_STATUS_OK);
    CHECK_CLOSE("grad_h only", grad_h.data(), want.grad_h.data(), c.rows * c.dim, 1e-5, 1e-4);
}

TEST(dii_baseline_agrees_with_kernel) {
    dii_case c{41, 67, 3, 5};
    dii_inputs in = make_inputs(c, "dii_baseline");
    const auto& p = in.problem;
    std::vector<float> h_out(size_t(c.rows * c.dim)), grad_h(h_out.size()), grad_w(size_t(c.rank * c.dim));
    poison(h_out);
    poison(grad_h);
    poison(grad_w);
    CHECK_STATUS(cdas_baseline_dii_torch(c.rows, c.dim, c.rank, c.examples, static_cast<const float*>(in.h.data()),
                                         in.directions.data(), static_cast<const float*>(in.source.data()),
                                         p.example_index.data(), p.mask.data(),
                                         static_cast<const float*>(in.grad_out_typed.data()), h_out.data(),
                                         grad_h.data(), grad_w.data()),
                 CDAS_STATUS_OK);
    cdas_ref::dii_result fwd = cdas_ref::dii_forward(p);
    cdas_ref::dii_result bwd = cdas_ref::dii_backward(p, in.grad_out);
    CHECK_CLOSE("baseline h_out", h_out.data(), fwd.h_out.data(), c.rows * c.dim, 1e-5, 1e-4);
    CHECK_CLOSE("baseline grad_h", grad_h.data(), bwd.grad_h.data(), c.rows * c.dim, 1e-5, 1e-4);
    CHECK_CLOSE("baseline grad_directions", grad_w.data(), bwd.grad_directions.data(), c.rank * c.dim,
                1e-5 * max_abs(bwd.grad_directions), 1e-4);
}
