// Element types of cdas.h buffers and their conversion to and from fp32.
// Kernels compute in fp32: a bf16/f16 buffer is converted one row or one tile at a time, never
// whole, so the extra memory stays proportional to the tile.
#pragma once

#include <cstdint>
#include <cstring>

#include "cdas.h"

namespace cdas::cpu {

inline int64_t dtype_size(int32_t dtype) {
    return dtype == CDAS_DTYPE_F32 ? 4 : 2;
}

inline bool dtype_valid(int32_t dtype) {
    return dtype == CDAS_DTYPE_F32 || dtype == CDAS_DTYPE_BF16 || dtype == CDAS_DTYPE_F16;
}

inline float bf16_to_f32(uint16_t v) {
    uint32_t bits = uint32_t(v) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

// Round to nearest even, like torch; NaN stays NaN (the rounding add could carry it into Inf).
inline uint16_t f32_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1u);
    return uint16_t(bits >> 16);
}

inline float f16_to_f32(uint16_t v) {
    _Float16 h;
    std::memcpy(&h, &v, 2);
    return float(h);
}

inline uint16_t f32_to_f16(float f) {
    _Float16 h = _Float16(f);
    uint16_t v;
    std::memcpy(&v, &h, 2);
    return v;
}

// Converts n elements of `src` (dtype) starting at element `offset` into dst.
void convert_to_f32(int32_t dtype, const void* src, int64_t offset, int64_t n, float* dst);

// Stores n fp32 values into `dst` (dtype) starting at element `offset`.
void convert_from_f32(int32_t dtype, const float* src, int64_t n, void* dst, int64_t offset);

// Row `row` of a [rows x dim] dtype matrix as fp32: a pointer into `base` when it already is
// fp32, else the row converted into `scratch` (dim floats).
inline const float* row_as_f32(int32_t dtype, const void* base, int64_t row, int64_t dim, float* scratch) {
    if (dtype == CDAS_DTYPE_F32) return static_cast<const float*>(base) + row * dim;
    convert_to_f32(dtype, base, row * dim, dim, scratch);
    return scratch;
}

}  // namespace cdas::cpu
