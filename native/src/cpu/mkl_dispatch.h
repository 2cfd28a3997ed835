// MKL's choice of kernels on AMD CPUs.
//
// The libtorch we link carries MKL inside libtorch_cpu.so; every float GEMM of the model runtime
// (at::linear, at::matmul) and of the LM-head kernel (gemm.h) runs MKL's sgemm. MKL picks its code
// path by asking mkl_serv_intel_cpu_true() first and the CPU's features second: on an AMD CPU the
// answer is 0 and it takes its generic path (AVX2 kernels at best), even on a CPU with AVX-512
// (Zen 4 and later), where its AVX-512 kernels run correctly and about twice as fast (measured in
// benchmarks/RESULTS.md, "MKL on AMD CPUs").
//
// libcdas defines and exports mkl_serv_intel_cpu_true() itself (mkl_dispatch.cpp). libtorch_cpu
// calls it through its PLT, and a library's dependencies resolve symbols in the scope of the
// library that loaded them, libcdas first: MKL asks libcdas. The answer is 1 on an AMD CPU with
// AVX-512 (F, DQ, BW, VL, saved by the OS) unless CDAS_MKL_AMD_AVX512 is 0, off, false or no;
// everywhere else MKL's own answer, from its own function. Nothing else of MKL changes: the
// features it then checks are the CPU's.
#pragma once

#include <string>

#include "env_switch.h"

namespace cdas::cpu {

// The rule, on its own: true when MKL should be told "Intel". `env` is CDAS_MKL_AMD_AVX512's value
// (null when unset); 0, off, false and no (any case) turn it off, anything else leaves it on.
// Inline, so that a test reaches it without linking a second mkl_serv_intel_cpu_true.
inline bool mkl_amd_avx512_policy(bool amd_cpu, bool avx512, const char* env) {
    return amd_cpu && avx512 && !env_switch_off(env);
}

// What this process's MKL does, one line for cdas_build_info(), e.g. "MKL: AVX-512 kernels on
// this AMD CPU (...)". Asking makes MKL detect the CPU if it has not yet.
std::string mkl_dispatch_summary();

// MKL's code path as MKL reports it (mkl_serv_get_cpu_type(): 0 is its generic path), or -1 when
// there is no MKL in the process. Asking makes MKL detect the CPU if it has not yet.
int mkl_cpu_type();

// True once MKL has asked libcdas's mkl_serv_intel_cpu_true() (it did not when libtorch was loaded
// by someone else before libcdas).
bool mkl_asked_libcdas();

}  // namespace cdas::cpu
