// DII on the CPU.
//
// Forward, for each masked row t of example e (W [r x d] with unit rows, a_e in R^r):
//   h'_t = h_t + W^T (a_e - W h_t),     a_e = W s_e (source) or given values.
// So W h'_t = W h_t + W W^T (a_e - W h_t), which is a_e when W has orthonormal rows, and the part
// of h_t orthogonal to the row space of W is unchanged.
//
// Backward, g = dL/dh'_t (masked rows; unmasked rows pass g through):
//   dL/dh_t   = g - W^T W g                          (h enters as h - W^T W h)
//   dL/da_e   = sum_{t in e} W g_t
//   dL/dW_k   = sum_t (a_ek - W_k h_t) g_t + (W_k g_t)(s_e - h_t)
//     the first term from W_k^T multiplying (a - W h); the second from the W h inside it (-h_t)
//     and from a_e = W s_e (+s_e, only when the clamp comes from a source).
// The dL/dW sum runs over fixed blocks of kDiiReductionBlockRows rows: each block's partial sum
// is computed by one worker in row order, then the blocks are added in block order, so the result
// is bitwise the same for any thread count. dL/da_e adds the per-row W g_t in row order.
#include "cpu/dii.h"

#include <algorithm>
#include <vector>

#include "cdas.h"
#include "cpu/dtype.h"

namespace cdas::cpu {

namespace {

bool row_active(const dii_args& a, int64_t t) { return !a.mask || a.mask[t]; }

__attribute__((target_clones("avx512f", "avx2", "default")))
float dot(const float* x, const float* y, int64_t n) {
    constexpr int kLanes = 16;
    float lanes[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= n; j += kLanes)
        for (int l = 0; l < kLanes; ++l) lanes[l] += x[j + l] * y[j + l];
    float s = 0.0f;
    for (; j < n; ++j) s += x[j] * y[j];
    for (int l = 0; l < kLanes; ++l) s += lanes[l];
    return s;
}

// y += alpha x
__attribute__((target_clones("avx512f", "avx2", "default")))
void axpy(float alpha, const float* x, float* y, int64_t n) {
    for (int64_t j = 0; j < n; ++j) y[j] += alpha * x[j];
}

// Below about this many elements of h (or of W) a call runs on the calling thread alone.
constexpr int64_t kInlineElements = 1 << 16;

int64_t inline_rows(int64_t dim) { return std::max<int64_t>(1, kInlineElements / std::max<int64_t>(dim, 1)); }

// The clamp values a [B x r]: given, or W s_e.
void clamp_values(runtime& rt, const dii_args& a, float* out) {
    if (a.values) {
        std::copy(a.values, a.values + a.examples * a.rank, out);
        return;
    }
    std::vector<float> scratch(size_t(a.dim * rt.pool.size()));
    rt.pool.parallel_for(a.examples, [&](int64_t b, int64_t e, int worker) {
        float* tmp = scratch.data() + worker * a.dim;
        for (int64_t ex = b; ex < e; ++ex) {
            const float* s = row_as_f32(a.dtype, a.source, ex, a.dim, tmp);
            for (int64_t k = 0; k < a.rank; ++k) out[ex * a.rank + k] = dot(a.directions + k * a.dim, s, a.dim);
        }
    }, inline_rows(a.dim * a.rank));
}

}  // namespace

void dii_forward(runtime& rt, const dii_args& a, void* h_out, float* source_values_out) {
    const int64_t d = a.dim, r = a.rank;
    std::vector<float> values(size_t(a.examples * r));
    clamp_values(rt, a, values.data());
    if (source_values_out) std::copy(values.begin(), values.end(), source_values_out);

    std::vector<float> scratch(size_t(d * rt.pool.size()));
    rt.pool.parallel_for(a.rows, [&](int64_t b, int64_t e, int worker) {
        float* row = scratch.data() + worker * d;
        for (int64_t t = b; t < e; ++t) {
            convert_to_f32(a.dtype, a.h, t * d, d, row);
            if (row_active(a, t)) {
                const float* clamp = values.data() + int64_t(a.example_index[t]) * r;
                // All projections first: W h uses the unmodified row.
                float coef[64];
                std::vector<float> big;
                float* c = coef;
                if (r > 64) {
                    big.resize(size_t(r));
                    c = big.data();
                }
                for (int64_t k = 0; k < r; ++k) c[k] = clamp[k] - dot(a.directions + k * d, row, d);
                for (int64_t k = 0; k < r; ++k) axpy(c[k], a.directions + k * d, row, d);
            }
            convert_from_f32(a.dtype, row, d, h_out, t * d);
        }
    }, inline_rows(d));
}

void dii_backward(runtime& rt, const dii_args& a, const void* grad_out, void* grad_h,
                  float* grad_directions, float* grad_values) {
    const int64_t d = a.dim, r = a.rank, T = a.rows;
    const bool want_w = grad_directions != nullptr;
    std::vector<float> values;
    if (want_w) {
        values.resize(size_t(a.examples * r));
        clamp_values(rt, a, values.data());
    }
    // W g_t per row, for dL/da and the (W g)(s - h) term.
    std::vector<float> wg(size_t(T * r));
    const int64_t n_blocks = (T + kDiiReductionBlockRows - 1) / kDiiReductionBlockRows;
    std::vector<float> partials(want_w ? size_t(n_blocks * r * d) : 0);
    const int workers = rt.pool.size();
    std::vector<float> scratch(size_t(3 * d * workers + r * workers));

    rt.pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int worker) {
        float* g_tmp = scratch.data() + worker * 3 * d;
        float* h_tmp = g_tmp + d;
        float* s_tmp = h_tmp + d;
        float* coef = scratch.data() + 3 * d * workers + worker * r;
        for (int64_t blk = b0; blk < b1; ++blk) {
            float* part = want_w ? partials.data() + blk * r * d : nullptr;
            if (part) std::fill(part, part + r * d, 0.0f);
            const int64_t t_end = std::min(T, (blk + 1) * kDiiReductionBlockRows);
            for (int64_t t = blk * kDiiReductionBlockRows; t < t_end; ++t) {
                convert_to_f32(a.dtype, grad_out, t * d, d, g_tmp);
                const bool active = row_active(a, t);
                float* wg_t = wg.data() + t * r;
                for (int64_t k = 0; k < r; ++k) wg_t[k] = active ? dot(a.directions + k * d, g_tmp, d) : 0.0f;
                if (want_w && active) {
                    const int64_t ex = a.example_index[t];
                    const float* h = row_as_f32(a.dtype, a.h, t, d, h_tmp);
                    for (int64_t k = 0; k < r; ++k)
                        coef[k] = values[size_t(ex * r + k)] - dot(a.directions + k * d, h, d);
                    const float* s = a.source ? row_as_f32(a.dtype, a.source, ex, d, s_tmp) : nullptr;
                    for (int64_t k = 0; k < r; ++k) {
                        float* pk = part + k * d;
                        axpy(coef[k], g_tmp, pk, d);
                        if (s) axpy(wg_t[k], s, pk, d);
                        axpy(-wg_t[k], h, pk, d);
                    }
                }
                if (grad_h) {
                    if (active)
                        for (int64_t k = 0; k < r; ++k) axpy(-wg_t[k], a.directions + k * d, g_tmp, d);
                    convert_from_f32(a.dtype, g_tmp, d, grad_h, t * d);
                }
            }
        }
    }, std::max<int64_t>(1, inline_rows(d) / kDiiReductionBlockRows));

    if (want_w) {
        rt.pool.parallel_for(r * d, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) {
                float sum = 0.0f;
                for (int64_t blk = 0; blk < n_blocks; ++blk) sum += partials[size_t(blk * r * d + i)];
                grad_directions[i] = sum;
            }
        }, kInlineElements / std::max<int64_t>(n_blocks, 1));
    }
    if (grad_values) {
        std::fill(grad_values, grad_values + a.examples * r, 0.0f);
        for (int64_t t = 0; t < T; ++t) {
            if (!row_active(a, t)) continue;
            float* gv = grad_values + int64_t(a.example_index[t]) * r;
            for (int64_t k = 0; k < r; ++k) gv[k] += wg[size_t(t * r + k)];
        }
    }
}

}  // namespace cdas::cpu
