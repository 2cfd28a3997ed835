// The baselines' runtime through the C ABI: the LOREFT and NULL_OUT interventions against their
// formulas on the plain hidden states (forward) and against recomputation (generation), and
// cdas_model_sequence_logprobs against log-softmax of cdas_model_forward's logits, its gradient
// (CLAMP, ADD, NULL_OUT, LOREFT's R, M and b) by finite differences, and its bad arguments.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cdas.h"
#include "harness.h"
#include "model_reference.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

std::vector<int32_t> tokens_of(std::mt19937_64& rng, int64_t n, int32_t vocab) {
    std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = dist(rng);
    return t;
}

std::vector<float> floats_of(std::mt19937_64& rng, int64_t n, double scale) {
    std::vector<double> v = random_normal(rng, n, scale);
    return std::vector<float>(v.begin(), v.end());
}

// Two rows, the second shorter and left-padded; the scored tokens are each row's last few.
struct scored_batch {
    int64_t B = 2, T = 9;
    std::vector<int32_t> tokens;
    std::vector<uint8_t> mask;
    std::vector<int64_t> first = {0, 3};
    std::vector<int32_t> prefix = {3, 2}, start = {4, 3}, count = {5, 3};
    cdas_logprob_batch view{};

    scored_batch(std::mt19937_64& rng, int32_t V) {
        tokens = tokens_of(rng, B * T, V);
        mask.assign(size_t(B * T), 1);
        for (int64_t t = 0; t < first[1]; ++t) {
            mask[size_t(T + t)] = 0;
            tokens[size_t(T + t)] = 0;
        }
        view = cdas_logprob_batch{cdas_token_batch{B, T, tokens.data(), mask.data()}, prefix.data(), start.data(),
                                  count.data()};
    }
};

// One intervention of each mode with its own parameters; params() lays them out as the gradient does.
struct intervention_case {
    std::string name;
    int32_t mode = CDAS_INTERVENTION_CLAMP, layer = 1, rank = 2;
    std::vector<float> W, values, M, bias;
    std::vector<int32_t> source;

    cdas_intervention view(const int32_t* prefix) const {
        cdas_intervention iv{};
        iv.layer = layer;
        iv.rank = rank;
        iv.directions = W.data();
        iv.values = values.empty() ? nullptr : values.data();
        iv.source_positions = source.empty() ? nullptr : source.data();
        iv.prefix_len = prefix;
        iv.mode = mode;
        iv.loreft_weight = M.empty() ? nullptr : M.data();
        iv.loreft_bias = bias.empty() ? nullptr : bias.data();
        return iv;
    }
    std::vector<float> params() const {
        std::vector<float> p = W;
        p.insert(p.end(), M.begin(), M.end());
        p.insert(p.end(), bias.begin(), bias.end());
        return p;
    }
    void set_params(const std::vector<double>& p) {
        size_t k = 0;
        for (auto* part : {&W, &M, &bias})
            for (float& x : *part) x = float(p[k++]);
    }
};

std::vector<intervention_case> intervention_cases(std::mt19937_64& rng, int32_t d, int64_t B) {
    const int32_t rank = 2;
    std::vector<intervention_case> cases;
    auto make = [&](const char* name, int32_t mode) {
        intervention_case c;
        c.name = name;
        c.mode = mode;
        c.rank = rank;
        c.W = floats_of(rng, rank * d, 1.0 / std::sqrt(double(d)));
        return c;
    };
    intervention_case add = make("ADD", CDAS_INTERVENTION_ADD);
    add.values = floats_of(rng, B * rank, 2.0);
    cases.push_back(add);
    intervention_case clamp = make("CLAMP values", CDAS_INTERVENTION_CLAMP);
    clamp.values = floats_of(rng, B * rank, 2.0);
    cases.push_back(clamp);
    intervention_case from_source = make("CLAMP source", CDAS_INTERVENTION_CLAMP);
    from_source.source = {1, 2};
    cases.push_back(from_source);
    cases.push_back(make("NULL_OUT", CDAS_INTERVENTION_NULL_OUT));
    intervention_case loreft = make("LOREFT", CDAS_INTERVENTION_LOREFT);
    loreft.M = floats_of(rng, rank * d, 1.0 / std::sqrt(double(d)));
    loreft.bias = floats_of(rng, rank, 1.0);
    cases.push_back(loreft);
    return cases;
}

// log p(scored tokens) per row from the forward pass's logits, in double.
std::vector<double> logprobs_from_logits(cdas_model* model, const scored_batch& s, const cdas_intervention* iv, int32_t V) {
    std::vector<float> logits(size_t(s.B * s.T * V));
    cdas_token_batch in = s.view.tokens;
    CHECK_STATUS(cdas_model_forward(model, &in, iv, -1, nullptr, nullptr, logits.data()), CDAS_STATUS_OK);
    std::vector<double> out(size_t(s.B), 0.0);
    for (int64_t b = 0; b < s.B; ++b)
        for (int32_t k = 0; k < s.count[size_t(b)]; ++k) {
            const int64_t column = s.first[size_t(b)] + s.start[size_t(b)] + k;
            const float* z = logits.data() + (b * s.T + column - 1) * V;
            double top = *std::max_element(z, z + V), sum = 0;
            for (int32_t v = 0; v < V; ++v) sum += std::exp(double(z[v]) - top);
            out[size_t(b)] += double(z[s.tokens[size_t(b * s.T + column)]]) - top - std::log(sum);
        }
    return out;
}

}  // namespace

// LOREFT and NULL_OUT in cdas_model_forward: h_L after the intervention equals the formula applied
// to the plain h_L at positions >= prefix_len, and nothing elsewhere; generation equals greedy
// recomputation with the same intervention.
TEST(model_loreft_and_null_out_interventions) {
    auto rng = make_rng("model_loreft_and_null_out_interventions");
    for (tiny_model& m : tiny_models(rng)) {
        if (m.config.rope_type == CDAS_ROPE_LONGROPE) m.config.rope_original_max_positions = m.config.max_positions;
        model_handle model(m);
        if (!model.ptr) continue;
        const int32_t V = m.config.vocab_size, d = m.config.hidden_size;
        scored_batch s(rng, V);
        cdas_token_batch view = s.view.tokens;
        const size_t cells = size_t(s.B * s.T) * size_t(d);
        for (intervention_case& c : intervention_cases(rng, d, s.B)) {
            if (c.mode != CDAS_INTERVENTION_LOREFT && c.mode != CDAS_INTERVENTION_NULL_OUT) continue;
            std::vector<float> plain(cells), steered(cells);
            CHECK_STATUS(cdas_model_forward(model.ptr, &view, nullptr, c.layer, plain.data(), nullptr, nullptr), CDAS_STATUS_OK);
            if (c.mode == CDAS_INTERVENTION_NULL_OUT) {
                // NULL_OUT moves only positions with w.h > 0: a random w can miss every one (hidden states
                // share a large mean), so each row of W is turned towards row 0's first intervened state.
                const float* h0 = plain.data() + (s.first[0] + s.prefix[0]) * d;
                for (int32_t k = 0; k < c.rank; ++k) {
                    float* w = c.W.data() + k * d;
                    double wh = 0;
                    for (int32_t i = 0; i < d; ++i) wh += double(w[i]) * h0[i];
                    if (wh < 0)
                        for (int32_t i = 0; i < d; ++i) w[i] = -w[i];
                }
            }
            const cdas_intervention iv = c.view(s.prefix.data());
            CHECK_STATUS(cdas_model_forward(model.ptr, &view, &iv, c.layer, steered.data(), nullptr, nullptr), CDAS_STATUS_OK);
            double worst = 0, moved = 0;
            for (int64_t b = 0; b < s.B; ++b)
                for (int64_t t = s.first[size_t(b)]; t < s.T; ++t) {
                    const float* h = plain.data() + (b * s.T + t) * d;
                    std::vector<double> want(h, h + d);
                    if (t - s.first[size_t(b)] >= s.prefix[size_t(b)])
                        for (int32_t k = 0; k < c.rank; ++k) {
                            const float* w = c.W.data() + k * d;
                            double wh = 0, ww = 0, mh = 0;
                            for (int32_t i = 0; i < d; ++i) {
                                wh += double(w[i]) * h[i];
                                ww += double(w[i]) * w[i];
                                if (c.mode == CDAS_INTERVENTION_LOREFT) mh += double(c.M[size_t(k * d + i)]) * h[i];
                            }
                            const double coefficient = c.mode == CDAS_INTERVENTION_LOREFT ? mh + c.bias[size_t(k)] - wh
                                                                                         : -std::max(wh, 0.0) / ww;
                            for (int32_t i = 0; i < d; ++i) want[size_t(i)] += coefficient * w[i];
                        }
                    for (int32_t i = 0; i < d; ++i) {
                        const double got = steered[size_t((b * s.T + t) * d + i)];
                        worst = std::max(worst, std::fabs(got - want[size_t(i)]));
                        moved = std::max(moved, std::fabs(got - h[i]));
                    }
                }
            CHECK_MSG(worst < 1e-4, m.label + " " + c.name + ": h_L off the formula by " + std::to_string(worst));
            CHECK_MSG(moved > 1e-2, m.label + " " + c.name + ": the intervention did not move h_L");

            // Generation (left-padded prompt) against greedy recomputation, row by row.
            const int32_t steps = 3;
            cdas_generation_options o;
            cdas_generation_options_default(&o);
            o.max_new_tokens = steps;
            std::vector<int32_t> out(size_t(s.B * steps)), lengths(size_t(s.B));
            CHECK_STATUS(cdas_model_generate(model.ptr, &view, &iv, &o, out.data(), lengths.data()), CDAS_STATUS_OK);
            for (int64_t b = 0; b < s.B; ++b) {
                std::vector<int32_t> seq(s.tokens.begin() + b * s.T + s.first[size_t(b)], s.tokens.begin() + (b + 1) * s.T);
                cdas_intervention one = c.view(s.prefix.data() + b);
                for (int32_t step = 0; step < steps; ++step) {
                    cdas_token_batch in{1, int64_t(seq.size()), seq.data(), nullptr};
                    std::vector<float> z(seq.size() * size_t(V));
                    CHECK_STATUS(cdas_model_forward(model.ptr, &in, &one, -1, nullptr, nullptr, z.data()), CDAS_STATUS_OK);
                    const float* last = z.data() + (seq.size() - 1) * size_t(V);
                    seq.push_back(int32_t(std::max_element(last, last + V) - last));
                }
                CHECK_MSG(std::equal(seq.end() - steps, seq.end(), out.begin() + b * steps),
                          m.label + " " + c.name + ": generation differs from recomputation in row " + std::to_string(b));
            }
        }
    }
}

// The log-probabilities equal log-softmax of the forward pass's logits (same intervention) at the
// rows before the scored tokens, for every mode and without intervention.
TEST(model_sequence_logprobs_match_forward_logits) {
    auto rng = make_rng("model_sequence_logprobs_match_forward_logits");
    for (tiny_model& m : tiny_models(rng)) {
        model_handle model(m);
        if (!model.ptr) continue;
        const int32_t V = m.config.vocab_size, d = m.config.hidden_size;
        scored_batch s(rng, V);
        std::vector<float> got(size_t(s.B));
        CHECK_STATUS(cdas_model_sequence_logprobs(model.ptr, nullptr, &s.view, nullptr, got.data(), nullptr), CDAS_STATUS_OK);
        std::vector<double> plain = logprobs_from_logits(model.ptr, s, nullptr, V);
        for (int64_t b = 0; b < s.B; ++b)
            CHECK_MSG(std::fabs(got[size_t(b)] - plain[size_t(b)]) <= 1e-4 * (1 + std::fabs(plain[size_t(b)])),
                      m.label + " no intervention row " + std::to_string(b) + ": " + std::to_string(got[size_t(b)]) +
                          " vs " + std::to_string(plain[size_t(b)]));
        for (intervention_case c : intervention_cases(rng, d, s.B)) {
            if (c.mode == CDAS_INTERVENTION_NULL_OUT) {
                // A random W may remove nothing (w_k . h_t <= 0 at every intervened row: hidden
                // states share a large common component), and then the check below that the
                // intervention moves the result would fail by chance. Each direction is the last
                // row's h_L of one example (plus noise), which the null-out certainly acts on.
                std::vector<float> h(size_t(s.B * s.T * d));
                CHECK_STATUS(cdas_model_forward(model.ptr, &s.view.tokens, nullptr, c.layer, h.data(), nullptr, nullptr),
                             CDAS_STATUS_OK);
                const std::vector<float> noise = floats_of(rng, int64_t(c.rank) * d, 0.01);
                for (int32_t k = 0; k < c.rank; ++k) {
                    const int64_t b = k % s.B;
                    for (int32_t i = 0; i < d; ++i)
                        c.W[size_t(k * d + i)] = h[size_t((b * s.T + s.T - 1) * d + i)] + noise[size_t(k * d + i)];
                }
            }
            const cdas_intervention with_prefix = c.view(s.prefix.data());
            const cdas_intervention without = c.view(nullptr);  // the batch's prefix_len applies
            std::vector<double> want = logprobs_from_logits(model.ptr, s, &with_prefix, V);
            for (const cdas_intervention* iv : {&without, &with_prefix}) {
                std::fill(got.begin(), got.end(), 0.0f);
                CHECK_STATUS(cdas_model_sequence_logprobs(model.ptr, iv, &s.view, nullptr, got.data(), nullptr), CDAS_STATUS_OK);
                for (int64_t b = 0; b < s.B; ++b)
                    CHECK_MSG(std::fabs(got[size_t(b)] - want[size_t(b)]) <= 1e-4 * (1 + std::fabs(want[size_t(b)])),
                              m.label + " " + c.name + " row " + std::to_string(b) + ": " + std::to_string(got[size_t(b)]) +
                                  " vs forward " + std::to_string(want[size_t(b)]));
            }
            double moved = 0;
            for (int64_t b = 0; b < s.B; ++b) moved = std::max(moved, std::fabs(want[size_t(b)] - plain[size_t(b)]));
            CHECK_MSG(moved > 1e-3, m.label + " " + c.name + ": the intervention left the log-probabilities unchanged");
        }
        // A row with nothing scored sums to 0.
        scored_batch none = s;
        none.count = {0, 2};
        none.view.score_count = none.count.data();
        none.view.tokens = cdas_token_batch{none.B, none.T, none.tokens.data(), none.mask.data()};
        none.view.prefix_len = none.prefix.data();
        none.view.score_start = none.start.data();
        CHECK_STATUS(cdas_model_sequence_logprobs(model.ptr, nullptr, &none.view, nullptr, got.data(), nullptr), CDAS_STATUS_OK);
        CHECK(got[0] == 0.0f && got[1] < 0.0f);
    }
}

// d/dtheta sum_b u_b logp_b against central differences, block by block (W or R; under LOREFT
// also M and b alone, so that a missing block cannot hide behind the others), along
// v = unit(g_block / |g_block| + a random unit vector) with g the gradient under test: v is never
// nearly orthogonal to g, every checked derivative is clearly nonzero, and a gradient that is
// zero (or wrong) in a block fails the check on that block.
TEST(model_sequence_logprobs_gradient_matches_finite_differences) {
    auto rng = make_rng("model_sequence_logprobs_gradient_matches_finite_differences");
    for (tiny_model& m : tiny_models(rng)) {
        model_handle model(m);
        if (!model.ptr) continue;
        const int32_t V = m.config.vocab_size, d = m.config.hidden_size;
        scored_batch s(rng, V);
        const std::vector<float> upstream = {0.75f, -1.25f};
        const double eps = 1e-2;
        for (intervention_case c : intervention_cases(rng, d, s.B)) {
            // NULL_OUT is not differentiable where some w_k . h_t = 0 (ReLU). Its W is drawn with
            // |w_k . h_t| > 2 eps |h_t| at every intervened row, so that no step of the differences
            // along a unit direction crosses a kink (which would make the differences wrong), and
            // with every direction active (w_k . h_t > 0) somewhere, so that its gradient is not 0.
            if (c.mode == CDAS_INTERVENTION_NULL_OUT) {
                std::vector<float> h(size_t(s.B * s.T * d));
                CHECK_STATUS(cdas_model_forward(model.ptr, &s.view.tokens, nullptr, c.layer, h.data(), nullptr, nullptr),
                             CDAS_STATUS_OK);
                auto near_a_kink = [&] {  // or inactive: some direction removes nothing anywhere
                    std::vector<bool> active(size_t(c.rank), false);
                    for (int64_t b = 0; b < s.B; ++b)
                        for (int64_t t = s.first[size_t(b)] + s.prefix[size_t(b)]; t < s.T; ++t)
                            for (int32_t k = 0; k < c.rank; ++k) {
                                double wh = 0, hh = 0;
                                for (int32_t i = 0; i < d; ++i) {
                                    const double x = h[size_t((b * s.T + t) * d + i)];
                                    wh += double(c.W[size_t(k * d + i)]) * x;
                                    hh += x * x;
                                }
                                if (std::fabs(wh) <= 2 * eps * std::sqrt(hh)) return true;
                                if (wh > 0) active[size_t(k)] = true;
                            }
                    return std::find(active.begin(), active.end(), false) != active.end();
                };
                for (int attempt = 0; attempt < 1000 && near_a_kink(); ++attempt)
                    c.W = floats_of(rng, int64_t(c.rank) * d, 1.0 / std::sqrt(double(d)));
                CHECK_MSG(!near_a_kink(), m.label + ": no NULL_OUT directions clear of the ReLU kinks");
            }
            const std::vector<float> theta = c.params();
            const int64_t n = int64_t(theta.size());
            std::vector<float> grad(size_t(n), std::nanf(""));
            std::vector<float> logp(size_t(s.B));
            cdas_intervention iv = c.view(nullptr);
            CHECK_STATUS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, upstream.data(), logp.data(), grad.data()),
                         CDAS_STATUS_OK);
            auto objective = [&](const std::vector<double>& p) {
                intervention_case moved = c;
                moved.set_params(p);
                cdas_intervention at = moved.view(nullptr);
                std::vector<float> lp(size_t(s.B));
                CHECK_STATUS(cdas_model_sequence_logprobs(model.ptr, &at, &s.view, nullptr, lp.data(), nullptr), CDAS_STATUS_OK);
                double f = 0;
                for (int64_t b = 0; b < s.B; ++b) f += double(upstream[size_t(b)]) * lp[size_t(b)];
                return f;
            };
            std::vector<std::pair<int64_t, int64_t>> blocks = {{0, int64_t(c.rank) * d}};
            if (c.mode == CDAS_INTERVENTION_LOREFT) {
                blocks.push_back({int64_t(c.rank) * d, 2 * int64_t(c.rank) * d});
                blocks.push_back({2 * int64_t(c.rank) * d, n});
            }
            for (auto [lo, hi] : blocks) {
                const std::string block = m.label + " " + c.name + " block [" + std::to_string(lo) + ", " + std::to_string(hi) + ")";
                double g_norm = 0;
                for (int64_t i = lo; i < hi; ++i) g_norm += double(grad[size_t(i)]) * grad[size_t(i)];
                g_norm = std::sqrt(g_norm);
                CHECK_MSG(g_norm > 1e-3, block + ": gradient norm " + std::to_string(g_norm) + " (vanishing)");
                if (!(g_norm > 1e-3)) continue;
                std::vector<double> r = random_normal(rng, hi - lo);
                double r_norm = 0;
                for (double x : r) r_norm += x * x;
                std::vector<double> v(size_t(n), 0.0);
                double v_norm = 0;
                for (int64_t i = lo; i < hi; ++i) {
                    v[size_t(i)] = grad[size_t(i)] / g_norm + r[size_t(i - lo)] / std::sqrt(r_norm);
                    v_norm += v[size_t(i)] * v[size_t(i)];
                }
                for (double& x : v) x /= std::sqrt(v_norm);
                std::vector<double> plus(theta.begin(), theta.end()), minus(theta.begin(), theta.end());
                for (int64_t i = 0; i < n; ++i) {
                    plus[size_t(i)] += eps * v[size_t(i)];
                    minus[size_t(i)] -= eps * v[size_t(i)];
                }
                const double fd = (objective(plus) - objective(minus)) / (2 * eps);
                double analytic = 0;
                for (int64_t i = 0; i < n; ++i) analytic += double(grad[size_t(i)]) * v[size_t(i)];
                CHECK_MSG(std::fabs(analytic - fd) <= 2e-4 + 3e-2 * std::fabs(fd),
                          block + ": analytic " + std::to_string(analytic) + ", finite differences " + std::to_string(fd));
            }
        }
    }
}

TEST(model_sequence_logprobs_rejects_bad_arguments) {
    auto rng = make_rng("model_sequence_logprobs_rejects_bad_arguments");
    tiny_model m = tiny_models(rng).front();
    model_handle model(m);
    if (!model.ptr) return;
    const int32_t V = m.config.vocab_size, d = m.config.hidden_size;
    scored_batch s(rng, V);
    std::vector<float> logp(size_t(s.B)), grad(size_t(3 * 2 * d));
    const std::vector<float> upstream = {1.0f, 1.0f};
    std::vector<intervention_case> cases = intervention_cases(rng, d, s.B);
    const intervention_case& add = cases[0];
    const intervention_case& loreft = cases.back();
    cdas_intervention iv = add.view(nullptr);

    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, nullptr, &s.view, upstream.data(), logp.data(), grad.data()),
                CDAS_STATUS_INVALID_ARGUMENT, "no parameters to differentiate");
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, upstream.data(), logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "grad_out must not be NULL");
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, nullptr, nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "logprob_out must not be NULL");
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, nullptr, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "batch must not be NULL");
    std::vector<float> bad_upstream = {1.0f, std::nanf("")};
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, bad_upstream.data(), logp.data(), grad.data()),
                CDAS_STATUS_NON_FINITE, "upstream[1]");

    cdas_logprob_batch b = s.view;
    std::vector<int32_t> start = {0, 3};
    b.score_start = start.data();
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &b, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "batch.score_start[0] = 0");
    start = {4, 4};  // row 1 has 6 real tokens: 4 + 3 > 6
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &b, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "batch.score_start[1] = 4");
    std::vector<int32_t> count = {-1, 3};
    b = s.view;
    b.score_count = count.data();
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &b, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "batch.score_count[0] must be >= 0");
    b = s.view;
    b.score_start = nullptr;
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &b, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "batch.score_start must not be NULL");

    std::vector<int32_t> other_prefix = {3, 1};
    iv = add.view(other_prefix.data());
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "intervention.prefix_len[1] = 1 differs from batch.prefix_len");

    iv = loreft.view(nullptr);
    iv.loreft_bias = nullptr;
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "intervention.loreft_bias must not be NULL");
    iv = loreft.view(nullptr);
    iv.values = add.values.data();
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, nullptr, logp.data(), nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "mode LOREFT takes neither values nor source_positions");
    std::vector<float> bad_m = loreft.M;
    bad_m[3] = std::nanf("");
    iv = loreft.view(nullptr);
    iv.loreft_weight = bad_m.data();
    CHECK_FAILS(cdas_model_sequence_logprobs(model.ptr, &iv, &s.view, nullptr, logp.data(), nullptr),
                CDAS_STATUS_NON_FINITE, "intervention.loreft_weight holds a non-finite value at row 0, column 3");
    std::vector<float> hidden(size_t(s.B * s.T * d));
    iv = add.view(nullptr);
    iv.loreft_weight = loreft.M.data();
    CHECK_FAILS(cdas_model_forward(model.ptr, &s.view.tokens, &iv, 0, hidden.data(), nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "loreft_weight and loreft_bias are for mode LOREFT only");
    intervention_case null_out = add;
    null_out.values.clear();
    null_out.mode = CDAS_INTERVENTION_NULL_OUT;
    std::fill(null_out.W.begin() + d, null_out.W.end(), 0.0f);
    iv = null_out.view(nullptr);
    CHECK_FAILS(cdas_model_forward(model.ptr, &s.view.tokens, &iv, 0, hidden.data(), nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "intervention.directions row 1 is zero");
    iv.source_positions = s.start.data();
    CHECK_FAILS(cdas_model_forward(model.ptr, &s.view.tokens, &iv, 0, hidden.data(), nullptr, nullptr),
                CDAS_STATUS_INVALID_ARGUMENT, "mode NULL_OUT takes neither values nor source_positions");
}
