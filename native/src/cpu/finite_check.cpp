#include "cpu/finite_check.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "cdas.h"

namespace cdas::cpu {

namespace {

// Exponent all ones <=> NaN or infinity; branch-free so the scan vectorises, and it only looks
// for the first position once a block is known to contain one.
__attribute__((target_clones("avx512f", "avx2", "default")))
bool any_non_finite_f32(const uint32_t* bits, int64_t n) {
    uint32_t found = 0;
    for (int64_t i = 0; i < n; ++i) found |= uint32_t((bits[i] & 0x7f800000u) == 0x7f800000u);
    return found != 0;
}

__attribute__((target_clones("avx512f", "avx2", "default")))
bool any_non_finite_16(const uint16_t* bits, int64_t n, uint16_t exponent_mask) {
    uint32_t found = 0;
    for (int64_t i = 0; i < n; ++i) found |= uint32_t((bits[i] & exponent_mask) == exponent_mask);
    return found != 0;
}

int64_t first_in_block(int32_t dtype, const void* data, int64_t begin, int64_t end) {
    constexpr int64_t kBlock = 4096;
    for (int64_t b = begin; b < end; b += kBlock) {
        int64_t n = std::min(kBlock, end - b);
        bool any;
        if (dtype == CDAS_DTYPE_F32) {
            any = any_non_finite_f32(static_cast<const uint32_t*>(data) + b, n);
        } else {
            uint16_t mask = dtype == CDAS_DTYPE_BF16 ? 0x7f80 : 0x7c00;
            any = any_non_finite_16(static_cast<const uint16_t*>(data) + b, n, mask);
        }
        if (!any) continue;
        for (int64_t i = b; i < b + n; ++i) {
            bool bad;
            if (dtype == CDAS_DTYPE_F32) {
                bad = (static_cast<const uint32_t*>(data)[i] & 0x7f800000u) == 0x7f800000u;
            } else {
                uint16_t mask = dtype == CDAS_DTYPE_BF16 ? 0x7f80 : 0x7c00;
                bad = (static_cast<const uint16_t*>(data)[i] & mask) == mask;
            }
            if (bad) return i;
        }
    }
    return -1;
}

}  // namespace

int64_t find_non_finite(int32_t dtype, const void* data, int64_t count, thread_pool& pool) {
    if (count <= 0) return -1;
    if (count < (1 << 16)) return first_in_block(dtype, data, 0, count);
    std::vector<int64_t> first(size_t(pool.size()), -1);
    pool.parallel_for(count, [&](int64_t b, int64_t e, int worker) {
        first[size_t(worker)] = first_in_block(dtype, data, b, e);
    });
    for (int64_t f : first)
        if (f >= 0) return f;  // workers' ranges are in order
    return -1;
}

}  // namespace cdas::cpu
