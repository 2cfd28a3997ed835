// exp, log and tanh as straight-line float code the compiler can vectorise (libm calls in a loop
// are not). Cephes-style range reduction and minimax polynomials, ~1-2 ulp on the ranges used.
#pragma once

#include <cstdint>
#include <cstring>

namespace cdas::cpu {

inline float bits_to_float(int32_t bits) {
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

inline int32_t float_to_bits(float f) {
    int32_t bits;
    std::memcpy(&bits, &f, 4);
    return bits;
}

// e^x; inputs below -87.3 give ~1e-38 instead of 0, harmless next to a softmax sum >= 1.
inline float fast_exp(float x) {
    x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float y = p * r2 + r + 1.0f;
    return y * bits_to_float((int32_t(n) + 127) << 23);
}

// ln x for finite x > 0 (normal range).
inline float fast_log(float x) {
    int32_t bits = float_to_bits(x);
    float e = float(((bits >> 23) & 0xff) - 126);
    float m = bits_to_float((bits & 0x807fffff) | 0x3f000000);  // x = m 2^e, m in [0.5, 1)
    bool small = m < 0.707106781186547524f;
    e = small ? e - 1.0f : e;
    m = small ? m + m - 1.0f : m - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = y * m - 1.1514610310e-1f;
    y = y * m + 1.1676998740e-1f;
    y = y * m - 1.2420140846e-1f;
    y = y * m + 1.4249322787e-1f;
    y = y * m - 1.6668057665e-1f;
    y = y * m + 2.0000714765e-1f;
    y = y * m - 2.4999993993e-1f;
    y = y * m + 3.3333331174e-1f;
    y = y * m * z;
    y += -2.12194440e-4f * e;
    y += -0.5f * z;
    return m + y + 0.693359375f * e;
}

// tanh through e^{-2|x|}; absolute error ~1e-7, which is what the soft-cap needs.
inline float fast_tanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float e = fast_exp(-2.0f * ax);
    float t = (1.0f - e) / (1.0f + e);
    return x < 0.0f ? -t : t;
}

}  // namespace cdas::cpu
