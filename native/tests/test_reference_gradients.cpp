// The references' analytic gradients against central finite differences in double precision,
// so the oracle the kernels are compared with is itself checked.
#include <cmath>
#include <functional>

#include "harness.h"
#include "reference.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

// Compares grad[i] with (f(x + e_i h) - f(x - e_i h)) / 2h for every element of x.
void check_finite_differences(const char* what, std::vector<double>& x, const std::vector<double>& grad,
                              const std::function<double()>& f) {
    const double step = 1e-6;
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
        double saved = x[i];
        x[i] = saved + step;
        double up = f();
        x[i] = saved - step;
        double down = f();
        x[i] = saved;
        double numeric = (up - down) / (2 * step);
        double err = std::fabs(numeric - grad[i]) / (1e-6 + std::fabs(numeric));
        worst = std::max(worst, std::fabs(numeric - grad[i]));
        CHECK_MSG(std::fabs(numeric - grad[i]) <= 1e-7 + 1e-5 * std::fabs(numeric),
                  std::string(what) + "[" + std::to_string(i) + "]: analytic " + std::to_string(grad[i]) +
                      ", numeric " + std::to_string(numeric) + " (rel " + std::to_string(err) + ")");
    }
    std::printf("    %s: %zu elements, worst |analytic - numeric| %.3g\n", what, x.size(), worst);
}

cdas_ref::dii_problem small_dii(bool use_source, const char* salt) {
    auto rng = make_rng(salt);
    cdas_ref::dii_problem p;
    p.rows = 6;
    p.dim = 5;
    p.rank = 2;
    p.examples = 2;
    p.h = random_normal(rng, 30);
    p.directions = random_normal(rng, 10, 0.5);
    if (use_source) p.source = random_normal(rng, 10);
    else p.values = random_normal(rng, 4);
    p.example_index = {0, 1, 1, 0, 1, 0};
    p.mask = {1, 1, 0, 1, 1, 1};
    return p;
}

}  // namespace

TEST(reference_dii_gradients_by_finite_differences) {
    for (bool use_source : {true, false}) {
        cdas_ref::dii_problem p = small_dii(use_source, use_source ? "fd_dii_source" : "fd_dii_values");
        auto rng = make_rng("fd_dii_g");
        std::vector<double> g = random_normal(rng, p.rows * p.dim);
        auto objective = [&] {
            cdas_ref::dii_result r = cdas_ref::dii_forward(p);
            double s = 0.0;
            for (size_t i = 0; i < g.size(); ++i) s += g[i] * r.h_out[i];
            return s;
        };
        cdas_ref::dii_result grads = cdas_ref::dii_backward(p, g);
        check_finite_differences("dL/dh", p.h, grads.grad_h, objective);
        check_finite_differences("dL/dW", p.directions, grads.grad_directions, objective);
        if (!use_source) check_finite_differences("dL/da", p.values, grads.grad_values, objective);
    }
}

TEST(reference_jsd_gradient_by_finite_differences) {
    for (double softcap : {0.0, 1.5}) {
        auto rng = make_rng("fd_jsd");
        cdas_ref::jsd_problem p;
        p.rows = 4;
        p.dim = 5;
        p.vocab = 7;
        p.x_student = random_normal(rng, 20);
        p.x_teacher = random_normal(rng, 20);
        p.head = random_normal(rng, 35, 1.0);
        p.softcap = softcap;
        p.mask = {1, 0, 1, 1};
        p.grad_scale = 1.7;
        cdas_ref::jsd_result r = cdas_ref::lm_head_jsd(p);
        check_finite_differences(softcap > 0 ? "dL/dx_s (soft-cap)" : "dL/dx_s", p.x_student, r.grad_student,
                                 [&] { return p.grad_scale * cdas_ref::lm_head_jsd(p).loss; });
    }
}
