// DII on the CPU.
//
// Forward, for each masked row t of example e (W [r x d] with unit rows, a_e in R^r):
//   h'_t = h_t + W^T (a_e - W h_t),     a_e = W s_e (source) or given values.
// So W h'_t = W h_t + W W^T (a_e - W h_t), which is a_e when W has orthonormal rows, and the part
// of h_t orthogonal to the row space of W is unchanged.
//
// With direction sets (dii_args::example_set), every W above is that of the row's example's set,
// and dL/dW_k sums the rows of set k's examples only, in blocks of that set's rows (so set k's
// gradient is bitwise that of a call with its rows alone).
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
            const float* w = set_directions(a, ex);
            for (int64_t k = 0; k < a.rank; ++k) out[ex * a.rank + k] = dot(w + k * a.dim, s, a.dim);
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
                const int64_t ex = a.example_index[t];
                const float* clamp = values.data() + ex * r;
                const float* w = set_directions(a, ex);
                // All projections first: W h uses the unmodified row.
                float coef[64];
                std::vector<float> big;
                float* c = coef;
                if (r > 64) {
                    big.resize(size_t(r));
                    c = big.data();
                }
                for (int64_t k = 0; k < r; ++k) c[k] = clamp[k] - dot(w + k * d, row, d);
                for (int64_t k = 0; k < r; ++k) axpy(c[k], w + k * d, row, d);
            }
            convert_from_f32(a.dtype, row, d, h_out, t * d);
        }
    }, inline_rows(d));
}

void dii_backward(runtime& rt, const dii_args& a, const void* grad_out, void* grad_h,
                  float* grad_directions, float* grad_values) {
    const int64_t d = a.dim, r = a.rank, T = a.rows, rd = r * d;
    const bool want_w = grad_directions != nullptr;
    std::vector<float> values;
    if (want_w) {
        values.resize(size_t(a.examples * r));
        clamp_values(rt, a, values.data());
    }
    // The rows of each set in row order (one set: all rows). A set's dW is reduced over blocks of
    // kDiiReductionBlockRows of ITS rows, so it is bitwise what a call with only that set's rows
    // (same order) gives, whatever rows of other sets lie between them.
    std::vector<int64_t> set_rows;
    std::vector<int64_t> set_begin(size_t(a.sets + 1), 0);
    if (a.example_set) {
        for (int64_t t = 0; t < T; ++t) ++set_begin[size_t(a.example_set[a.example_index[t]]) + 1];
        for (int64_t k = 0; k < a.sets; ++k) set_begin[size_t(k + 1)] += set_begin[size_t(k)];
        set_rows.resize(size_t(T));
        std::vector<int64_t> fill(set_begin.begin(), set_begin.end() - 1);
        for (int64_t t = 0; t < T; ++t) set_rows[size_t(fill[size_t(a.example_set[a.example_index[t]])]++)] = t;
    } else {
        set_begin[1] = T;
    }
    auto row_of = [&](int64_t i) { return a.example_set ? set_rows[size_t(i)] : i; };
    // Blocks: (set, first row, end row) in set order, each set's in its row order.
    std::vector<int64_t> block_set, block_begin;
    std::vector<int64_t> first_block(size_t(a.sets + 1), 0);
    for (int64_t k = 0; k < a.sets; ++k) {
        first_block[size_t(k)] = int64_t(block_set.size());
        for (int64_t i = set_begin[size_t(k)]; i < set_begin[size_t(k + 1)]; i += kDiiReductionBlockRows) {
            block_set.push_back(k);
            block_begin.push_back(i);
        }
    }
    first_block[size_t(a.sets)] = int64_t(block_set.size());
    const int64_t n_blocks = int64_t(block_set.size());
    // W g_t per row, for dL/da and the (W g)(s - h) term.
    std::vector<float> wg(size_t(T * r));
    std::vector<float> partials(want_w ? size_t(n_blocks * rd) : 0);
    const int workers = rt.pool.size();
    std::vector<float> scratch(size_t(3 * d * workers + r * workers));

    rt.pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int worker) {
        float* g_tmp = scratch.data() + worker * 3 * d;
        float* h_tmp = g_tmp + d;
        float* s_tmp = h_tmp + d;
        float* coef = scratch.data() + 3 * d * workers + worker * r;
        for (int64_t blk = b0; blk < b1; ++blk) {
            float* part = want_w ? partials.data() + blk * rd : nullptr;
            if (part) std::fill(part, part + rd, 0.0f);
            const int64_t i_end = std::min(set_begin[size_t(block_set[size_t(blk)] + 1)],
                                           block_begin[size_t(blk)] + kDiiReductionBlockRows);
            for (int64_t i = block_begin[size_t(blk)]; i < i_end; ++i) {
                const int64_t t = row_of(i);
                convert_to_f32(a.dtype, grad_out, t * d, d, g_tmp);
                const bool active = row_active(a, t);
                const int64_t ex = a.example_index[t];
                const float* w = set_directions(a, ex);
                float* wg_t = wg.data() + t * r;
                for (int64_t k = 0; k < r; ++k) wg_t[k] = active ? dot(w + k * d, g_tmp, d) : 0.0f;
                if (want_w && active) {
                    const float* h = row_as_f32(a.dtype, a.h, t, d, h_tmp);
                    for (int64_t k = 0; k < r; ++k)
                        coef[k] = values[size_t(ex * r + k)] - dot(w + k * d, h, d);
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
                        for (int64_t k = 0; k < r; ++k) axpy(-wg_t[k], w + k * d, g_tmp, d);
                    convert_from_f32(a.dtype, g_tmp, d, grad_h, t * d);
                }
            }
        }
    }, std::max<int64_t>(1, inline_rows(d) / kDiiReductionBlockRows));

    if (want_w) {
        // Set k's dW: its blocks' partials added in block order.
        rt.pool.parallel_for(a.sets * rd, [&](int64_t b, int64_t e, int) {
            for (int64_t i = b; i < e; ++i) {
                const int64_t k = i / rd, j = i % rd;
                float sum = 0.0f;
                for (int64_t blk = first_block[size_t(k)]; blk < first_block[size_t(k + 1)]; ++blk)
                    sum += partials[size_t(blk * rd + j)];
                grad_directions[i] = sum;
            }
        }, kInlineElements / std::max<int64_t>(n_blocks / a.sets, 1));
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
