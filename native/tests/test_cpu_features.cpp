// Which half-precision products libtorch runs with vector kernels on this CPU
// (native/src/cpu/cpu_features.h, cdas_cpu_fast_matmul): the rule, and the ABI against the test's
// own reading of the CPU.
#include <cpuid.h>

#include <cstdio>
#include <string>

#include "cdas.h"
#include "cpu/cpu_features.h"
#include "harness.h"

TEST(cpu_fast_matmul_rule) {
    using cdas::cpu::fast_matmul;
    for (bool a : {false, true})
        for (bool f : {false, true})
            for (bool n : {false, true}) {
                const std::string at = std::string(" avx512=") + (a ? "1" : "0") + " fp16=" + (f ? "1" : "0") + " ne_convert=" + (n ? "1" : "0");
                CHECK_MSG(fast_matmul(CDAS_DTYPE_F32, a, f, n), "F32 is always fast:" + at);
                CHECK_MSG(fast_matmul(CDAS_DTYPE_BF16, a, f, n) == (a || n), "BF16:" + at);
                CHECK_MSG(fast_matmul(CDAS_DTYPE_F16, a, f, n) == (f || n), "F16:" + at);
            }
}

TEST(cpu_fast_matmul_abi_on_this_cpu) {
    // The CPU as the test reads it: libgcc for AVX-512 and AVX512-FP16, CPUID leaf 7.1 for AVX-NE-CONVERT.
    __builtin_cpu_init();
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    const bool fp16 = __builtin_cpu_supports("avx512fp16");
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool ne_convert = false;
    if (__get_cpuid_max(0, nullptr) >= 7) {
        __cpuid_count(7, 1, a, b, c, d);
        ne_convert = ((d >> 5) & 1u) && __builtin_cpu_supports("avx2");
    }
    std::printf("    this CPU: AVX-512 %d, AVX512-FP16 %d, AVX-NE-CONVERT %d\n", avx512, fp16, ne_convert);
    const bool want[3] = {true, avx512 || ne_convert, fp16 || ne_convert};
    const cdas_dtype types[3] = {CDAS_DTYPE_F32, CDAS_DTYPE_BF16, CDAS_DTYPE_F16};
    for (int i = 0; i < 3; ++i) {
        int32_t fast = -1;
        CHECK_STATUS(cdas_cpu_fast_matmul(types[i], &fast), CDAS_STATUS_OK);
        CHECK_MSG(fast == (want[i] ? 1 : 0), "cdas_cpu_fast_matmul(" + std::to_string(types[i]) + ") = " + std::to_string(fast));
    }
    int32_t fast = -1;
    CHECK_STATUS(cdas_cpu_fast_matmul(static_cast<cdas_dtype>(7), &fast), CDAS_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(cdas_last_error()).find("dtype must be") != std::string::npos);
    CHECK_STATUS(cdas_cpu_fast_matmul(CDAS_DTYPE_F16, nullptr), CDAS_STATUS_INVALID_ARGUMENT);
}
