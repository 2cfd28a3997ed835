#include "reference.h"

#include <algorithm>
#include <cmath>

namespace cdas_ref {

namespace {

bool active(const std::vector<uint8_t>& mask, int64_t t) { return mask.empty() || mask[size_t(t)] != 0; }

double dot(const double* a, const double* b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
    return s;
}

int64_t set_of(const dii_problem& p, int64_t e) { return p.example_set.empty() ? 0 : p.example_set[size_t(e)]; }

std::vector<double> clamp_values(const dii_problem& p) {
    if (!p.values.empty()) return p.values;
    std::vector<double> a(size_t(p.examples * p.rank));
    for (int64_t e = 0; e < p.examples; ++e)
        for (int64_t k = 0; k < p.rank; ++k)
            a[size_t(e * p.rank + k)] =
                dot(&p.directions[size_t((set_of(p, e) * p.rank + k) * p.dim)], &p.source[size_t(e * p.dim)], p.dim);
    return a;
}

}  // namespace

dii_result dii_forward(const dii_problem& p) {
    dii_result r;
    r.clamp = clamp_values(p);
    r.h_out = p.h;
    const int64_t d = p.dim;
    for (int64_t t = 0; t < p.rows; ++t) {
        if (!active(p.mask, t)) continue;
        const double* h = &p.h[size_t(t * d)];
        const int64_t e = p.example_index[size_t(t)];
        const double* a = &r.clamp[size_t(e * p.rank)];
        for (int64_t k = 0; k < p.rank; ++k) {
            const double* w = &p.directions[size_t((set_of(p, e) * p.rank + k) * d)];
            double c = a[k] - dot(w, h, d);
            for (int64_t j = 0; j < d; ++j) r.h_out[size_t(t * d + j)] += c * w[j];
        }
    }
    return r;
}

dii_result dii_backward(const dii_problem& p, const std::vector<double>& g) {
    dii_result r;
    r.clamp = clamp_values(p);
    const int64_t d = p.dim, rk = p.rank;
    r.grad_h = g;
    r.grad_directions.assign(size_t(p.sets * rk * d), 0.0);
    r.grad_values.assign(size_t(p.examples * rk), 0.0);
    for (int64_t t = 0; t < p.rows; ++t) {
        if (!active(p.mask, t)) continue;
        const int64_t e = p.example_index[size_t(t)];
        const double* gt = &g[size_t(t * d)];
        const double* h = &p.h[size_t(t * d)];
        for (int64_t k = 0; k < rk; ++k) {
            const int64_t row = set_of(p, e) * rk + k;  // of the stacked directions
            const double* w = &p.directions[size_t(row * d)];
            double wg = dot(w, gt, d);
            double coef = r.clamp[size_t(e * rk + k)] - dot(w, h, d);
            r.grad_values[size_t(e * rk + k)] += wg;
            for (int64_t j = 0; j < d; ++j) {
                r.grad_h[size_t(t * d + j)] -= wg * w[j];
                double s = p.source.empty() ? 0.0 : p.source[size_t(e * d + j)];
                r.grad_directions[size_t(row * d + j)] += coef * gt[j] + wg * (s - h[j]);
            }
        }
    }
    return r;
}

jsd_result lm_head_jsd(const jsd_problem& p) {
    const int64_t T = p.rows, d = p.dim, V = p.vocab;
    jsd_result r;
    r.row_loss.assign(size_t(T), 0.0);
    r.grad_student.assign(size_t(T * d), 0.0);
    int64_t count = 0;
    for (int64_t t = 0; t < T; ++t) count += active(p.mask, t) ? 1 : 0;
    double total = 0.0;
    std::vector<double> zs(static_cast<size_t>(V)), zt(static_cast<size_t>(V)), cap_slope(static_cast<size_t>(V)), dz(static_cast<size_t>(V));
    for (int64_t t = 0; t < T; ++t) {
        if (!active(p.mask, t)) continue;
        for (int64_t v = 0; v < V; ++v) {
            double us = dot(&p.x_student[size_t(t * d)], &p.head[size_t(v * d)], d);
            double ut = dot(&p.x_teacher[size_t(t * d)], &p.head[size_t(v * d)], d);
            if (p.softcap > 0) {
                double ts = std::tanh(us / p.softcap);
                zs[size_t(v)] = p.softcap * ts;
                zt[size_t(v)] = p.softcap * std::tanh(ut / p.softcap);
                cap_slope[size_t(v)] = 1.0 - ts * ts;
            } else {
                zs[size_t(v)] = us;
                zt[size_t(v)] = ut;
                cap_slope[size_t(v)] = 1.0;
            }
        }
        auto lse = [&](const std::vector<double>& z) {
            double m = *std::max_element(z.begin(), z.end());
            double s = 0.0;
            for (double x : z) s += std::exp(x - m);
            return m + std::log(s);
        };
        double lse_s = lse(zs), lse_t = lse(zt);
        double jsd = 0.0, s_qr = 0.0;
        std::vector<double> q(static_cast<size_t>(V)), rr(static_cast<size_t>(V));
        for (int64_t v = 0; v < V; ++v) {
            double lq = zs[size_t(v)] - lse_s, lp = zt[size_t(v)] - lse_t;
            double qv = std::exp(lq), pv = std::exp(lp);
            double lm = std::log(0.5 * (pv + qv));
            jsd += 0.5 * pv * (lp - lm) + 0.5 * qv * (lq - lm);
            q[size_t(v)] = qv;
            rr[size_t(v)] = lq - lm;
            s_qr += qv * (lq - lm);
        }
        r.row_loss[size_t(t)] = jsd;
        total += jsd;
        for (int64_t v = 0; v < V; ++v)
            dz[size_t(v)] = p.grad_scale / double(count) * 0.5 * q[size_t(v)] * (rr[size_t(v)] - s_qr) * cap_slope[size_t(v)];
        for (int64_t j = 0; j < d; ++j) {
            double s = 0.0;
            for (int64_t v = 0; v < V; ++v) s += dz[size_t(v)] * p.head[size_t(v * d + j)];
            r.grad_student[size_t(t * d + j)] = s;
        }
    }
    r.loss = count > 0 ? total / double(count) : 0.0;
    return r;
}

}  // namespace cdas_ref
