// MKL's kernels on AMD CPUs (native/src/cpu/mkl_dispatch.h): the rule, and what MKL in this
// process actually does. ctest runs the mkl_ cases twice, the second time with
// CDAS_MKL_AMD_AVX512=0, so that both answers are checked on an AMD CPU with AVX-512.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cdas.h"
#include "cpu/gemm.h"
#include "cpu/mkl_dispatch.h"
#include "harness.h"

// MKL's code path (0: its generic one), from libtorch_cpu.so; null without MKL.
extern "C" int mkl_serv_get_cpu_type() __attribute__((weak));

TEST(mkl_amd_avx512_rule) {
    using cdas::cpu::mkl_amd_avx512_policy;
    CHECK(mkl_amd_avx512_policy(true, true, nullptr));
    for (const char* off : {"0", "off", "OFF", "Off", "false", "FALSE", "no", "No"}) {
        CHECK_MSG(!mkl_amd_avx512_policy(true, true, off), std::string("CDAS_MKL_AMD_AVX512=") + off + " must turn it off");
    }
    for (const char* on : {"1", "on", "true", "yes", "", "of", "00", "nope"}) {
        CHECK_MSG(mkl_amd_avx512_policy(true, true, on), std::string("CDAS_MKL_AMD_AVX512=") + on + " must leave it on");
    }
    for (const char* env : {static_cast<const char*>(nullptr), "1", "0"}) {
        CHECK(!mkl_amd_avx512_policy(false, true, env));   // Intel (or another vendor): MKL decides
        CHECK(!mkl_amd_avx512_policy(true, false, env));   // AMD without AVX-512: MKL's generic path
        CHECK(!mkl_amd_avx512_policy(false, false, env));
    }
}

TEST(mkl_dispatch_on_this_cpu) {
    if (mkl_serv_get_cpu_type == nullptr) SKIP("no MKL in this process (libtorch without MKL)");
    // The CPU as the test sees it, independently of mkl_dispatch.cpp's CPUID code.
    __builtin_cpu_init();
    const bool amd = __builtin_cpu_is("amd");
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    const std::string info = cdas_build_info();
    const size_t at = info.find("MKL: ");
    CHECK_MSG(at != std::string::npos, "cdas_build_info() has no MKL line:\n" + info);
    const std::string line = at == std::string::npos ? "" : info.substr(at, info.find('\n', at) - at);
    std::printf("    %s\n", line.c_str());
    if (!amd) SKIP("not an AMD CPU: MKL's own dispatch applies, libcdas answers nothing");
    if (!avx512) SKIP("an AMD CPU without AVX-512: MKL's generic path applies, libcdas answers nothing");

    // A product, so that MKL has chosen its kernels for real (it detects the CPU on first use).
    std::vector<float> a(64 * 64, 1.0f), b(64 * 64, 0.5f), c(64 * 64, 0.0f);
    cdas::cpu::gemm(64, 64, 64, 1.0f, {a.data(), 64, false}, {b.data(), 64, false}, 0.0f, c.data(), 64, nullptr);
    CHECK_NEAR(c[0], 32.0f, 1e-4);

    const char* env = std::getenv("CDAS_MKL_AMD_AVX512");
    const bool want_avx512 = cdas::cpu::mkl_amd_avx512_policy(true, true, env);
    const int type = mkl_serv_get_cpu_type();
    std::printf("    CDAS_MKL_AMD_AVX512=%s: MKL code path %d\n", env ? env : "(unset)", type);
    if (want_avx512) {
        CHECK_MSG(type != 0, "MKL took its generic path (0) on an AMD CPU with AVX-512 although libcdas answers 'Intel'");
        CHECK_MSG(line.find("AVX-512 kernels on this AMD CPU") != std::string::npos, "build info says: " + line);
    } else {
        CHECK_MSG(type == 0, "MKL left its generic path although CDAS_MKL_AMD_AVX512 turned the answer off");
        CHECK_MSG(line.find("CDAS_MKL_AMD_AVX512 turns the AVX-512 kernels off") != std::string::npos, "build info says: " + line);
    }
}
