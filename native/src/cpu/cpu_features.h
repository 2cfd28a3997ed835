// What this CPU has, as the CPU-side defaults need it (x86-64; elsewhere every query is false).
#pragma once

#include "cdas.h"

namespace cdas::cpu {

// An AMD CPU (CPUID vendor "AuthenticAMD").
bool cpu_is_amd();

// AVX-512 F, DQ, BW and VL, with the OS saving the registers.
bool cpu_has_avx512();

// AVX512-FP16 (CPUID.7.0:EDX[23]) with the OS saving the AVX-512 registers.
bool cpu_has_avx512_fp16();

// AVX-NE-CONVERT (CPUID.7.1:EDX[5]) with the OS saving the AVX registers.
bool cpu_has_avx_ne_convert();

// Whether libtorch multiplies matrices of `dtype` on this CPU with vector kernels: F32 always;
// BF16 with AVX-512 (F/DQ/BW/VL) or AVX-NE-CONVERT; F16 with AVX512-FP16 or AVX-NE-CONVERT. These
// are the CPUs on which libtorch's oneDNN takes half-precision products; elsewhere libtorch falls
// back to a scalar loop (an F16 demo training step about 16x slower than F32 on an AMD EPYC without
// AVX512-FP16, benchmarks/RESULTS.md). Pure: `avx512`, `avx512_fp16`, `ne_convert` are the features.
bool fast_matmul(cdas_dtype dtype, bool avx512, bool avx512_fp16, bool ne_convert);

// fast_matmul() for this CPU.
bool cpu_fast_matmul(cdas_dtype dtype);

}  // namespace cdas::cpu
