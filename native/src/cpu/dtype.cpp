#include "cpu/dtype.h"

namespace cdas::cpu {

__attribute__((target_clones("avx512f", "avx2", "default")))
void convert_to_f32(int32_t dtype, const void* src, int64_t offset, int64_t n, float* dst) {
    if (dtype == CDAS_DTYPE_F32) {
        std::memcpy(dst, static_cast<const float*>(src) + offset, size_t(n) * 4);
        return;
    }
    const uint16_t* s = static_cast<const uint16_t*>(src) + offset;
    if (dtype == CDAS_DTYPE_BF16) {
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
    } else {
        for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
    }
}

void convert_from_f32(int32_t dtype, const float* src, int64_t n, void* dst, int64_t offset) {
    if (dtype == CDAS_DTYPE_F32) {
        std::memmove(static_cast<float*>(dst) + offset, src, size_t(n) * 4);
        return;
    }
    uint16_t* d = static_cast<uint16_t*>(dst) + offset;
    if (dtype == CDAS_DTYPE_BF16) {
        for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
    } else {
        for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
    }
}

}  // namespace cdas::cpu
