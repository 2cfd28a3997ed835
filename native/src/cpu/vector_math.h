// exp, log and tanh as straight-line float code: Cephes-style range reduction and minimax
// polynomials, ~1-2 ulp on the ranges used.
//
// Each function is one template over the element type F: `float`, or a float vector (GCC/Clang
// vector extensions) of one register's width. The compiler does not vectorise these formulas by
// itself (their selects and bit casts defeat GCC's if-conversion, even under `omp simd`), so the
// row kernels (lm_head_jsd.cpp) work on vector blocks and call the float form for a row's last
// elements: one formula, so a value is the same whichever way it was computed (up to the FMA
// contraction a target may apply).
#pragma once

#include <cstdint>
#include <cstring>

// Every function here is always inlined, so a function compiled for a target (lm_head_jsd.cpp's
// row_ops) gets them with its instructions (a call would pass the vectors to a baseline copy);
// there is no vector-passing ABI to keep (CMakeLists.txt turns off GCC's -Wpsabi notes about one).
#define CDAS_VEC_INLINE inline __attribute__((always_inline))

namespace cdas::cpu {

// Float vectors of 16, 8 and 4 lanes: one AVX-512, AVX2 or SSE register.
typedef float vfloat16 __attribute__((vector_size(64)));
typedef float vfloat8 __attribute__((vector_size(32)));
typedef float vfloat4 __attribute__((vector_size(16)));

// What differs between the scalar and the vector forms; the formulas below use only these,
// arithmetic and `mask ? a : b`.
template <class F>
struct lanes {  // F: one of the vector types
    using I = decltype(F{} < F{});  // the int32 vector a comparison gives
    static constexpr int kCount = int(sizeof(F) / sizeof(float));
    CDAS_VEC_INLINE static F f(float v) { return F{} + v; }
    CDAS_VEC_INLINE static I i(int32_t v) { return I{} + v; }
    CDAS_VEC_INLINE static I bits(F x) { return (I)x; }  // a cast between vector types keeps the bits
    CDAS_VEC_INLINE static F from_bits(I b) { return (F)b; }
    CDAS_VEC_INLINE static I trunc(F x) { return __builtin_convertvector(x, I); }
    CDAS_VEC_INLINE static F to_float(I b) { return __builtin_convertvector(b, F); }
    CDAS_VEC_INLINE static F load(const float* p) {
        F v;
        std::memcpy(&v, p, sizeof v);
        return v;
    }
    CDAS_VEC_INLINE static void store(float* p, F v) { std::memcpy(p, &v, sizeof v); }
    CDAS_VEC_INLINE static float sum(F v) {  // lane 0 first
        float s = 0.0f;
        for (int l = 0; l < kCount; ++l) s += v[l];
        return s;
    }
};
template <>
struct lanes<float> {
    using I = int32_t;
    CDAS_VEC_INLINE static float f(float v) { return v; }
    CDAS_VEC_INLINE static int32_t i(int32_t v) { return v; }
    CDAS_VEC_INLINE static int32_t bits(float x) { return __builtin_bit_cast(int32_t, x); }
    CDAS_VEC_INLINE static float from_bits(int32_t b) { return __builtin_bit_cast(float, b); }
    CDAS_VEC_INLINE static int32_t trunc(float x) { return int32_t(x); }
    CDAS_VEC_INLINE static float to_float(int32_t b) { return float(b); }
};

// e^x; inputs below -87.3 give ~1e-38 instead of 0, harmless next to a softmax sum >= 1.
template <class F>
CDAS_VEC_INLINE F fast_exp(F x) {
    using L = lanes<F>;
    x = x > L::f(88.0f) ? L::f(88.0f) : x;
    x = x < L::f(-87.3f) ? L::f(-87.3f) : x;
    F y0 = x * L::f(1.44269504088896341f) + L::f(0.5f);
    F n = L::to_float(L::trunc(y0));  // floor(y0): |y0| < 130, so truncation then a step down
    n = n > y0 ? n - L::f(1.0f) : n;
    F r = x - n * L::f(0.693359375f);
    r = r + n * L::f(2.12194440e-4f);
    F r2 = r * r;
    F p = L::f(1.9875691500e-4f);
    p = p * r + L::f(1.3981999507e-3f);
    p = p * r + L::f(8.3334519073e-3f);
    p = p * r + L::f(4.1665795894e-2f);
    p = p * r + L::f(1.6666665459e-1f);
    p = p * r + L::f(5.0000001201e-1f);
    F y = p * r2 + r + L::f(1.0f);
    return y * L::from_bits((L::trunc(n) + L::i(127)) << 23);
}

// ln x for finite x > 0 (normal range).
template <class F>
CDAS_VEC_INLINE F fast_log(F x) {
    using L = lanes<F>;
    auto bits = L::bits(x);
    F e = L::to_float(((bits >> 23) & L::i(0xff)) - L::i(126));
    F m = L::from_bits((bits & L::i(int32_t(0x807fffffu))) | L::i(0x3f000000));  // x = m 2^e, m in [0.5, 1)
    auto small = m < L::f(0.707106781186547524f);
    e = small ? e - L::f(1.0f) : e;
    m = small ? m + m - L::f(1.0f) : m - L::f(1.0f);
    F z = m * m;
    F y = L::f(7.0376836292e-2f);
    y = y * m - L::f(1.1514610310e-1f);
    y = y * m + L::f(1.1676998740e-1f);
    y = y * m - L::f(1.2420140846e-1f);
    y = y * m + L::f(1.4249322787e-1f);
    y = y * m - L::f(1.6668057665e-1f);
    y = y * m + L::f(2.0000714765e-1f);
    y = y * m - L::f(2.4999993993e-1f);
    y = y * m + L::f(3.3333331174e-1f);
    y = y * m * z;
    y += L::f(-2.12194440e-4f) * e;
    y += L::f(-0.5f) * z;
    return m + y + L::f(0.693359375f) * e;
}

// tanh through e^{-2|x|}; absolute error ~1e-7, which is what the soft-cap needs.
template <class F>
CDAS_VEC_INLINE F fast_tanh(F x) {
    using L = lanes<F>;
    auto negative = x < L::f(0.0f);
    F ax = negative ? -x : x;
    F e = fast_exp(L::f(-2.0f) * ax);
    F t = (L::f(1.0f) - e) / (L::f(1.0f) + e);
    return negative ? -t : t;
}

}  // namespace cdas::cpu
