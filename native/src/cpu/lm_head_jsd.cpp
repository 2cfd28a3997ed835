// LM head + soft-cap + JSD on the CPU.
//
// Math, per token row (u = x W^T the raw logits of one row, j over the vocabulary):
//   z_j  = c tanh(u_j / c)          (soft-cap, c > 0; z = u without it)
//   log Q_j = z^s_j - lse(z^s),  log P_j = z^t_j - lse(z^t)       (student Q, teacher P)
//   log M_j = logaddexp(log P_j, log Q_j) - ln 2                  (finite even if P_j, Q_j -> 0)
//   JSD = 1/2 sum_j P_j (log P_j - log M_j) + 1/2 sum_j Q_j (log Q_j - log M_j)
//
// Gradient wrt the student logits (P detached). With r_j = log Q_j - log M_j:
//   d/dz_k [ 1/2 KL(P||M) ] = -1/2 sum_j P_j / M_j * dM_j/dz_k,   dM_j/dz_k = 1/2 Q_j (d_jk - Q_k)
//   d/dz_k [ 1/2 KL(Q||M) ] = 1/2 sum_j dQ_j/dz_k (log Q_j - log M_j + 1) - 1/2 sum_j Q_j/M_j dM_j/dz_k
//   Both M-terms together: -1/2 sum_j (P_j + Q_j)/(2 M_j) * ... = -1/2 sum_j dQ_j/dz_k = 0 (sum Q = 1),
//   and with dQ_j/dz_k = Q_j (d_jk - Q_k) what is left is
//       dJSD/dz_k = 1/2 Q_k (r_k - S),   S = sum_j Q_j r_j.
//   Soft-cap chain rule: dz_k/du_k = 1 - tanh^2(u_k/c) = 1 - (z_k/c)^2 =: c'_k.
//   loss = mean over the N unmasked rows, so dL/du_k = grad_scale / N * 1/2 Q_k c'_k (r_k - S),
//   and dL/dx = (dL/du) W.
//
// Schedule (the only one; cdas_jsd_schedule AUTO and CHUNKED both mean it): for a chunk of
// unmasked rows, both fp32 logit blocks [n x V] are computed by one GEMM over the stacked student
// and teacher rows (two head products, one pass over the head); each row gets its two
// log-sum-exps (max pass, sum pass), the loss terms (writing Q c' over z^s and r over z^t), then
// the gradient in place over z^s; a third GEMM gives dx = G W. Three head products in all; the
// T x V logits are never held, only a chunk's [2n x V] (lm_head_jsd_auto_chunk_rows).
#include "cpu/lm_head_jsd.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <vector>

#include "cdas.h"
#include "cpu/dtype.h"
#include "cpu/gemm.h"
#include "cpu/vector_math.h"

namespace cdas::cpu {

namespace {

constexpr float kLn2 = 0.693147180559945309f;
constexpr int64_t kHeadTileRows = 2048;  // bf16/f16 head rows converted to fp32 at a time

// The row loops below work on blocks of V, a float vector of one register (vector_math.h), with
// the math in the templates that a block and the row's last elements share. They are compiled
// three times (row_ops: AVX-512 with 16 lanes, AVX2 with FMA and 8, the x86-64 baseline with 4)
// and row_ops_for_cpu() picks one per call: the best the CPU has, or the one CDAS_CPU_ISA names
// (the tests run each in turn). A variant always gives the same bits; two variants differ in the
// last bits of the sums (their lane counts order them differently) and where FMA contracts.

template <class V>
CDAS_VEC_INLINE void softcap_row(float* z, int64_t n, float cap) {
    using L = lanes<V>;
    const float inv = 1.0f / cap;
    int64_t j = 0;
    for (; j + L::kCount <= n; j += L::kCount) L::store(z + j, cap * fast_tanh(L::load(z + j) * inv));
    for (; j < n; ++j) z[j] = cap * fast_tanh(z[j] * inv);
}

template <class V>
CDAS_VEC_INLINE float row_max(const float* z, int64_t n) {
    using L = lanes<V>;
    constexpr float kLow = -std::numeric_limits<float>::infinity();
    V acc = L::f(kLow);
    int64_t j = 0;
    for (; j + L::kCount <= n; j += L::kCount) {
        V v = L::load(z + j);
        acc = acc > v ? acc : v;
    }
    float m = kLow;
    for (; j < n; ++j) m = m > z[j] ? m : z[j];
    for (int l = 0; l < L::kCount; ++l) m = m > acc[l] ? m : acc[l];
    return m;
}

struct jsd_terms {
    float loss2;  // sum_j P_j (log P_j - log M_j) + Q_j (log Q_j - log M_j): twice the JSD part
    float s;      // sum_j Q_j r_j
};

// One element (F = float) or one vector's worth of jsd_row_stored: adds to loss2 and s, returns
// r_j and writes Q_j c'_j into qc.
//
// log M_j = max(log P_j, log Q_j) + log(1 + min(P_j, Q_j) / max(P_j, Q_j)) - ln 2: logaddexp
// anchored on the log-probabilities from the logits, so log P_j - log M_j cancels exactly where
// P_j ~ M_j (near-identical rows stay >= 0), with the ratio taken from the probabilities already at
// hand instead of another exp. A ratio of 0/0 (both underflowed) counts as 0: such elements carry
// no weight.
template <class F>
CDAS_VEC_INLINE F jsd_element(F zs, F zt, F q, F p, float lse_s, float lse_t, float inv_cap, bool capped, F& qc,
                              F& loss2, F& s) {
    using L = lanes<F>;
    F lq = zs - lse_s;
    F lp = zt - lse_t;
    F hi = lq > lp ? lq : lp;
    F big = q > p ? q : p;
    F small = q > p ? p : q;
    F ratio = big > L::f(0.0f) ? small / big : L::f(0.0f);
    F lm = hi + fast_log(L::f(1.0f) + ratio) - kLn2;
    F r = lq - lm;
    loss2 += p * (lp - lm) + q * r;
    s += q * r;
    F zc = zs * inv_cap;
    qc = capped ? q * (L::f(1.0f) - zc * zc) : q;
    return r;
}

// Writes Q_j c'_j into qc[j] and r_j into r[j]; qc may alias zs and r may alias zt (each element
// is read before it is written). The probabilities come from the exponentials the log-sum-exp pass
// stored (es_j = e^{zs_j - m_s}, so Q_j = es_j / sum_s: no exp here at all).
template <class V>
CDAS_VEC_INLINE jsd_terms jsd_row_stored(const float* zs, const float* zt, const float* es, const float* et, int64_t n,
                                         float lse_s, float lse_t, float inv_sum_s, float inv_sum_t, float cap,
                                         float* qc, float* r) {
    using L = lanes<V>;
    const bool capped = cap > 0.0f;
    const float inv_cap = capped ? 1.0f / cap : 0.0f;
    V loss_lanes{}, s_lanes{};
    int64_t j = 0;
    for (; j + L::kCount <= n; j += L::kCount) {
        V q = L::load(es + j) * inv_sum_s, p = L::load(et + j) * inv_sum_t, qcj;
        V rj = jsd_element(L::load(zs + j), L::load(zt + j), q, p, lse_s, lse_t, inv_cap, capped, qcj, loss_lanes,
                           s_lanes);
        L::store(qc + j, qcj);
        L::store(r + j, rj);
    }
    jsd_terms t{0.0f, 0.0f};
    for (; j < n; ++j) {
        float qcj;
        r[j] = jsd_element(zs[j], zt[j], es[j] * inv_sum_s, et[j] * inv_sum_t, lse_s, lse_t, inv_cap, capped, qcj,
                           t.loss2, t.s);
        qc[j] = qcj;
    }
    t.loss2 += L::sum(loss_lanes);
    t.s += L::sum(s_lanes);
    return t;
}

// e_j = e^{z_j - shift} into e; returns sum_j e_j.
template <class V>
CDAS_VEC_INLINE float row_exp_store(const float* z, int64_t n, float shift, float* e) {
    using L = lanes<V>;
    V acc{};
    int64_t j = 0;
    for (; j + L::kCount <= n; j += L::kCount) {
        V v = fast_exp(L::load(z + j) - shift);
        L::store(e + j, v);
        acc += v;
    }
    float s = 0.0f;
    for (; j < n; ++j) {
        float v = fast_exp(z[j] - shift);
        e[j] = v;
        s += v;
    }
    return s + L::sum(acc);
}

// g_j = scale * qc_j * (r_j - s), in place over qc.
CDAS_VEC_INLINE
void jsd_grad_row(float* qc, const float* r, int64_t n, float s, float scale) {
    for (int64_t j = 0; j < n; ++j) qc[j] = scale * qc[j] * (r[j] - s);
}

// One compiled variant of the row functions.
struct row_ops {
    void (*softcap)(float* z, int64_t n, float cap);
    float (*max)(const float* z, int64_t n);
    float (*exp_store)(const float* z, int64_t n, float shift, float* e);
    jsd_terms (*jsd)(const float* zs, const float* zt, const float* es, const float* et, int64_t n, float lse_s,
                     float lse_t, float inv_sum_s, float inv_sum_t, float cap, float* qc, float* r);
    void (*grad)(float* qc, const float* r, int64_t n, float s, float scale);
};

// The row functions on vectors V compiled for TARGET (an __attribute__ or nothing) as row_ops
// NAME; the bodies above are always inlined into them, so they compile with TARGET's instructions.
#define CDAS_ROW_OPS(NAME, V, TARGET)                                                                                  \
    namespace NAME##_impl {                                                                                            \
    TARGET void softcap(float* z, int64_t n, float cap) { softcap_row<V>(z, n, cap); }                                 \
    TARGET float max(const float* z, int64_t n) { return row_max<V>(z, n); }                                           \
    TARGET float exp_store(const float* z, int64_t n, float shift, float* e) {                                         \
        return row_exp_store<V>(z, n, shift, e);                                                                       \
    }                                                                                                                  \
    TARGET jsd_terms jsd(const float* zs, const float* zt, const float* es, const float* et, int64_t n,                \
                         float lse_s, float lse_t, float inv_sum_s, float inv_sum_t, float cap, float* qc,             \
                         float* r) {                                                                                   \
        return jsd_row_stored<V>(zs, zt, es, et, n, lse_s, lse_t, inv_sum_s, inv_sum_t, cap, qc, r);                   \
    }                                                                                                                  \
    TARGET void grad(float* qc, const float* r, int64_t n, float s, float scale) { jsd_grad_row(qc, r, n, s, scale); } \
    }                                                                                                                  \
    constexpr row_ops NAME{NAME##_impl::softcap, NAME##_impl::max, NAME##_impl::exp_store, NAME##_impl::jsd,           \
                           NAME##_impl::grad};

#if defined(__x86_64__)
CDAS_ROW_OPS(row_ops_avx512, vfloat16, __attribute__((target("avx512f"))))
CDAS_ROW_OPS(row_ops_avx2, vfloat8, __attribute__((target("avx2,fma"))))
#endif
CDAS_ROW_OPS(row_ops_baseline, vfloat4, )
#undef CDAS_ROW_OPS

// The best variant this CPU runs, or the one CDAS_CPU_ISA asks for (avx512, avx2, baseline; auto
// or unset: the best). A variant the CPU lacks is never picked: the best one below it is, so
// forcing one on another machine cannot crash. Other than x86-64: the baseline, at the target's
// own vector width.
const row_ops& row_ops_for_cpu() {
#if defined(__x86_64__)
    static const bool avx512 = __builtin_cpu_supports("avx512f");
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    const char* want = std::getenv("CDAS_CPU_ISA");
    const std::string_view w = want ? want : "";
    if (avx512 && (w.empty() || w == "auto" || w == "avx512")) return row_ops_avx512;
    if (avx2 && w != "baseline") return row_ops_avx2;
#endif
    return row_ops_baseline;
}

std::vector<int64_t> active_rows(const lm_head_jsd_args& a) {
    std::vector<int64_t> rows;
    rows.reserve(size_t(a.rows));
    for (int64_t t = 0; t < a.rows; ++t)
        if (!a.mask || a.mask[t]) rows.push_back(t);
    return rows;
}

// Writes the outputs for no unmasked rows and zeroes the rows no chunk will touch.
void clear_outputs(const lm_head_jsd_args& a, const std::vector<int64_t>& active) {
    if (a.row_loss_out) std::fill(a.row_loss_out, a.row_loss_out + a.rows, 0.0f);
    if (a.grad_student_out) {
        size_t next = 0;
        for (int64_t t = 0; t < a.rows; ++t) {
            if (next < active.size() && active[next] == t) {
                ++next;
                continue;
            }
            std::fill(a.grad_student_out + t * a.dim, a.grad_student_out + (t + 1) * a.dim, 0.0f);
        }
    }
    *a.loss_out = 0.0f;
}

void gather_rows(int32_t dtype, const void* src, const int64_t* rows, int64_t n, int64_t dim, float* dst) {
    for (int64_t i = 0; i < n; ++i) convert_to_f32(dtype, src, rows[i] * dim, dim, dst + i * dim);
}

// Head rows [v0, v0 + count) as fp32: a pointer into the head when it is fp32, else converted
// into `tile` (by all workers).
const float* head_rows(runtime& rt, const lm_head_jsd_args& a, int64_t v0, int64_t count, float* tile) {
    if (a.dtype == CDAS_DTYPE_F32) return static_cast<const float*>(a.head) + v0 * a.dim;
    rt.pool.parallel_for(count, [&](int64_t b, int64_t e, int) {
        convert_to_f32(a.dtype, a.head, (v0 + b) * a.dim, (e - b) * a.dim, tile + b * a.dim);
    });
    return tile;
}

}  // namespace

int64_t lm_head_jsd_auto_chunk_rows(int64_t rows, int64_t vocab) {
    // Two [n x V] fp32 blocks in 64 MiB: below ~128 rows the head products run far from peak
    // (MKL at T=512, d=768, V=50257: 32 rows 5x slower than 128), above it memory grows for little.
    int64_t budget_floats = (64ll << 20) / 4 / 2;
    int64_t n = budget_floats / std::max<int64_t>(vocab, 1) / 32 * 32;
    n = std::min<int64_t>(256, std::max<int64_t>(16, n));
    return std::min(n, std::max<int64_t>(rows, 1));
}

void lm_head_jsd(runtime& rt, const lm_head_jsd_args& a, int64_t chunk_rows) {
    std::vector<int64_t> active = active_rows(a);
    clear_outputs(a, active);
    const int64_t count = int64_t(active.size());
    if (count == 0) return;
    const int64_t d = a.dim, V = a.vocab;
    const int64_t n = std::min(chunk_rows > 0 ? chunk_rows : lm_head_jsd_auto_chunk_rows(count, V), count);
    const bool want_grad = a.grad_student_out != nullptr;
    const bool convert_head = a.dtype != CDAS_DTYPE_F32;
    const int64_t head_tile = std::min(kHeadTileRows, V);

    const int64_t workers = rt.pool.size();
    const row_ops& ops = row_ops_for_cpu();
    // xt and zt point into the second halves of xs and zs, per chunk.
    auto layout = [&](workspace_carver& w, float** xs, float** zs, float** dx, float** tile, float** exps) {
        // Student rows then teacher rows, adjacent, so one product computes both logit blocks
        // and the head streams through the cache once for the pair.
        *xs = w.take(2 * n * d);
        *zs = w.take(2 * n * V);
        *dx = want_grad ? w.take(n * d) : nullptr;
        *tile = convert_head ? w.take(head_tile * d) : nullptr;
        // Per worker, the two rows of exponentials of the log-sum-exp pass (L2-sized), reused
        // for the probabilities.
        *exps = w.take(2 * V * workers);
    };
    float *xs, *zs, *dx, *tile, *exps;
    workspace_carver sizing;
    layout(sizing, &xs, &zs, &dx, &tile, &exps);
    workspace_carver carver(static_cast<char*>(rt.scratch.reserve(sizing.used())));
    layout(carver, &xs, &zs, &dx, &tile, &exps);

    std::vector<float> row_loss(static_cast<size_t>(n));
    const float grad_coef = 0.5f * a.grad_scale / float(count);
    double loss_sum = 0.0;
    for (int64_t c0 = 0; c0 < count; c0 += n) {
        const int64_t nc = std::min(n, count - c0);
        const int64_t* rows = active.data() + c0;
        float* xt = xs + nc * d;
        float* zt = zs + nc * V;
        gather_rows(a.dtype, a.x_student, rows, nc, d, xs);
        gather_rows(a.dtype, a.x_teacher, rows, nc, d, xt);

        for (int64_t v0 = 0; v0 < V; v0 += (convert_head ? head_tile : V)) {
            int64_t vn = convert_head ? std::min(head_tile, V - v0) : V;
            const float* w = head_rows(rt, a, v0, vn, tile);
            gemm(2 * nc, vn, d, 1.0f, {xs, d, false}, {w, d, true}, 0.0f, zs + v0, V, &rt.pool);
        }

        rt.pool.parallel_for(nc, [&](int64_t b, int64_t e, int worker) {
            float* es = exps + 2 * V * worker;
            float* et = es + V;
            for (int64_t i = b; i < e; ++i) {
                float* s_row = zs + i * V;
                float* t_row = zt + i * V;
                if (a.softcap > 0.0f) {
                    ops.softcap(s_row, V, a.softcap);
                    ops.softcap(t_row, V, a.softcap);
                }
                float ms = ops.max(s_row, V), mt = ops.max(t_row, V);
                float sum_s = ops.exp_store(s_row, V, ms, es);
                float sum_t = ops.exp_store(t_row, V, mt, et);
                float lse_s = ms + std::log(sum_s);
                float lse_t = mt + std::log(sum_t);
                jsd_terms terms = ops.jsd(s_row, t_row, es, et, V, lse_s, lse_t, 1.0f / sum_s, 1.0f / sum_t,
                                          a.softcap, s_row, t_row);
                // JSD >= 0: an fp32 sum over near-identical rows with large logits can round a few
                // ulps of the logits below zero; the row reports 0 (the gradient is unaffected). A NaN
                // stays NaN.
                const float row = 0.5f * terms.loss2;
                row_loss[size_t(i)] = row < 0.0f ? 0.0f : row;
                if (want_grad) ops.grad(s_row, t_row, V, terms.s, grad_coef);
            }
        });

        for (int64_t i = 0; i < nc; ++i) {
            loss_sum += row_loss[size_t(i)];
            if (a.row_loss_out) a.row_loss_out[rows[i]] = row_loss[size_t(i)];
        }
        if (!want_grad) continue;
        for (int64_t v0 = 0; v0 < V; v0 += (convert_head ? head_tile : V)) {
            int64_t vn = convert_head ? std::min(head_tile, V - v0) : V;
            const float* w = head_rows(rt, a, v0, vn, tile);
            gemm(nc, d, vn, 1.0f, {zs + v0, V, false}, {w, d, false}, v0 == 0 ? 0.0f : 1.0f, dx, d, &rt.pool);
        }
        for (int64_t i = 0; i < nc; ++i)
            std::copy(dx + i * d, dx + (i + 1) * d, a.grad_student_out + rows[i] * d);
    }
    *a.loss_out = float(loss_sum / double(count));
}


}  // namespace cdas::cpu
