// glibc malloc settings for the model runtime on the CPU.
//
// libtorch allocates a step's activations and gradients on the CPU with plain malloc and frees
// them when the step ends. glibc serves a block above its mmap threshold (128 KB at first, raised
// by itself up to 32 MB as such blocks are freed) with a fresh mmap, and returns memory above the
// trim threshold at a heap's top to the system. Every step then maps, zero-fills and unmaps the
// same tens of megabytes again: page faults and system time instead of arithmetic. Measured with
// cdas_bench_pack (benchmarks/RESULTS.md, "malloc on the CPU"): a step at d = 1024 took 1094-1268 ms
// against 846-872 ms with the blocks kept.
//
// The launcher (bin/cdas-native) sets the same thresholds and one malloc arena through
// GLIBC_TUNABLES before the JVM starts. Java runs the native calls on threads other than the
// process's first, and glibc's other arenas map a block larger than their 64 MB heaps afresh
// every time whatever the threshold, and unmap a heap once it is free (the demo: 29 s with 22 s of
// system time, 14 s with the launcher's settings). Without the launcher (java -jar, a library
// user), the first CPU model created in the process (cdas_model_create) raises both thresholds,
// so that freed blocks stay in the process and the next step reuses them: mmap threshold 256 MB
// (larger blocks, such as a whole checkpoint's buffer, are still mapped and returned), trim
// threshold 2047 MB. Memory that a step freed stays resident until the process ends or a later
// step takes it again, which is what a training process wants. Left alone when the user tunes
// malloc already (GLIBC_TUNABLES with a glibc.malloc setting, MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_, MALLOC_TOP_PAD_), when CDAS_MALLOC_TUNING is 0, off, false or no, and
// without glibc.
#pragma once

#include <cstddef>
#include <cstring>
#include <string>

#include "env_switch.h"

namespace cdas::cpu {

// The thresholds set (bytes).
constexpr size_t MALLOC_MMAP_THRESHOLD = size_t(256) << 20;
// The trim threshold is the largest whole number of megabytes mallopt's int takes (2047 MB): a step
// of a large model frees more than 512 MB at the heap's top (d = 2048, 8 blocks, 2 x 8 examples of
// 96 tokens: 12-15% slower with 512 MB, benchmarks/RESULTS.md).
constexpr size_t MALLOC_TRIM_THRESHOLD = size_t(2047) << 20;

// The rule, on its own (inline, so a test reaches it without the process's state): the reason to
// leave malloc alone, or "" to tune it. Each argument is that environment variable's value (null
// when unset).
inline std::string malloc_tuning_veto(const char* cdas_malloc_tuning, const char* glibc_tunables, const char* mmap_threshold,
                                      const char* trim_threshold, const char* top_pad) {
    if (env_switch_off(cdas_malloc_tuning)) return "CDAS_MALLOC_TUNING=" + std::string(cdas_malloc_tuning);
    if (glibc_tunables != nullptr && std::strstr(glibc_tunables, "glibc.malloc.") != nullptr)
        return "GLIBC_TUNABLES sets malloc: " + std::string(glibc_tunables);
    if (mmap_threshold != nullptr) return "MALLOC_MMAP_THRESHOLD_ is set";
    if (trim_threshold != nullptr) return "MALLOC_TRIM_THRESHOLD_ is set";
    if (top_pad != nullptr) return "MALLOC_TOP_PAD_ is set";
    return "";
}

// Applies the settings once per process (first call), unless the rule above or the C library says
// no. Thread-safe.
void tune_malloc_once();

// One line for cdas_build_info(): what was done, or what the first CPU model will do, e.g.
// "malloc: glibc, freed blocks kept (mmap threshold 256 MB, trim threshold 2047 MB)".
std::string malloc_tuning_summary();

}  // namespace cdas::cpu
