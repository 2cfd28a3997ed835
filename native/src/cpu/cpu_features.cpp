#include "cpu/cpu_features.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace cdas::cpu {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// XCR0, the register state the OS saves (0 without OSXSAVE).
uint64_t xcr0() {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;
    uint32_t lo = 0, hi = 0;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t(hi) << 32) | lo;
}

bool os_saves_avx() { return (xcr0() & 0x6) == 0x6; }            // XMM, YMM
bool os_saves_avx512() { return (xcr0() & 0xE6) == 0xE6; }       // and opmask, ZMM 0-15 high, ZMM 16-31

bool cpuid_bit(unsigned leaf, unsigned subleaf, int reg, int bit) {
    unsigned r[4] = {0, 0, 0, 0};
    if (__get_cpuid_max(0, nullptr) < leaf) return false;
    __cpuid_count(leaf, subleaf, r[0], r[1], r[2], r[3]);
    return (r[reg] >> bit) & 1u;
}
#endif

}  // namespace

bool cpu_is_amd() {
#if defined(__x86_64__) || defined(__i386__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    char vendor[13];
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    vendor[12] = '\0';
    return std::strcmp(vendor, "AuthenticAMD") == 0;
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
    // libgcc's checks include the OS's XSAVE support of the AVX-512 state (XCR0), not only CPUID.
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

bool cpu_has_avx512_fp16() {
#if defined(__x86_64__) || defined(__i386__)
    return cpuid_bit(7, 0, 3, 23) && os_saves_avx512();
#else
    return false;
#endif
}

bool cpu_has_avx_ne_convert() {
#if defined(__x86_64__) || defined(__i386__)
    return cpuid_bit(7, 1, 3, 5) && os_saves_avx();
#else
    return false;
#endif
}

bool fast_matmul(cdas_dtype dtype, bool avx512, bool avx512_fp16, bool ne_convert) {
    switch (dtype) {
        case CDAS_DTYPE_F32: return true;
        case CDAS_DTYPE_BF16: return avx512 || ne_convert;
        case CDAS_DTYPE_F16: return avx512_fp16 || ne_convert;
    }
    return false;
}

bool cpu_fast_matmul(cdas_dtype dtype) {
    return fast_matmul(dtype, cpu_has_avx512(), cpu_has_avx512_fp16(), cpu_has_avx_ne_convert());
}

}  // namespace cdas::cpu
