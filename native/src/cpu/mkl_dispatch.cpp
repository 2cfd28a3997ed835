#include "cpu/mkl_dispatch.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "cpu/cpu_features.h"

// MKL's own, in libtorch_cpu.so when it carries MKL; weak, so libcdas links and runs without.
extern "C" int mkl_serv_get_cpu_type() __attribute__((weak));

namespace cdas::cpu {

namespace {

struct decision {
    bool amd;
    bool avx512;
    bool on;
};

const decision& decide() {
    static const decision d = [] {
        decision r{cpu_is_amd(), cpu_has_avx512(), false};
        r.on = mkl_amd_avx512_policy(r.amd, r.avx512, std::getenv("CDAS_MKL_AMD_AVX512"));
        return r;
    }();
    return d;
}

std::atomic<bool> asked{false};

}  // namespace

int mkl_cpu_type() { return mkl_serv_get_cpu_type ? mkl_serv_get_cpu_type() : -1; }

bool mkl_asked_libcdas() { return asked.load(); }

std::string mkl_dispatch_summary() {
    const int type = mkl_cpu_type();
    if (type < 0) return "MKL: not in this process";
    const decision& d = decide();
    const std::string branch = " (MKL code path " + std::to_string(type) + (type == 0 ? ", its generic one)" : ")");
    if (!d.amd) return "MKL: its own dispatch (not an AMD CPU)" + branch;
    if (!d.avx512) return "MKL: its own dispatch (an AMD CPU without AVX-512)" + branch;
    if (!d.on) return "MKL: its generic path on this AMD CPU (CDAS_MKL_AMD_AVX512 turns the AVX-512 kernels off)" + branch;
    if (!mkl_asked_libcdas()) {
        return "MKL: its generic path on this AMD CPU (MKL did not ask libcdas: libtorch was loaded before it)" + branch;
    }
    if (type == 0) return "MKL: its generic path on this AMD CPU, although libcdas answered that it is an Intel one" + branch;
    return "MKL: AVX-512 kernels on this AMD CPU (CDAS_MKL_AMD_AVX512=0 keeps MKL's generic path)" + branch;
}

}  // namespace cdas::cpu

// MKL's question, answered here (see mkl_dispatch.h). Exported through native/src/api/cdas.map.
extern "C" __attribute__((visibility("default"))) int mkl_serv_intel_cpu_true() {
    cdas::cpu::asked.store(true);
    if (cdas::cpu::decide().on) return 1;
    using fn = int (*)();
    // MKL's own answer: the next definition after this one in the lookup order (libtorch_cpu's).
    static const fn original = [] {
        fn next = reinterpret_cast<fn>(dlsym(RTLD_NEXT, "mkl_serv_intel_cpu_true"));
        return next == &mkl_serv_intel_cpu_true ? nullptr : next;
    }();
    return original ? original() : 0;
}
