#include "malloc_tuning.h"

#include <cstdlib>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace cdas::cpu {

namespace {

std::mutex mutex;
bool applied = false;  // under mutex
std::string outcome;   // under mutex, once applied

std::string veto_from_environment() {
    return malloc_tuning_veto(std::getenv("CDAS_MALLOC_TUNING"), std::getenv("GLIBC_TUNABLES"),
                              std::getenv("MALLOC_MMAP_THRESHOLD_"), std::getenv("MALLOC_TRIM_THRESHOLD_"),
                              std::getenv("MALLOC_TOP_PAD_"));
}

std::string thresholds() {
    return "mmap threshold " + std::to_string(MALLOC_MMAP_THRESHOLD >> 20) + " MB, trim threshold " +
           std::to_string(MALLOC_TRIM_THRESHOLD >> 20) + " MB";
}

}  // namespace

void tune_malloc_once() {
    std::lock_guard<std::mutex> lock(mutex);
    if (applied) return;
    applied = true;
#if defined(__GLIBC__)
    const std::string veto = veto_from_environment();
    if (!veto.empty()) {
        outcome = "left as is (" + veto + ")";
        return;
    }
    const bool mmap_ok = mallopt(M_MMAP_THRESHOLD, int(MALLOC_MMAP_THRESHOLD)) == 1;
    const bool trim_ok = mallopt(M_TRIM_THRESHOLD, int(MALLOC_TRIM_THRESHOLD)) == 1;
    outcome = mmap_ok && trim_ok ? "freed blocks kept (" + thresholds() + ")"
                                 : std::string("the C library refused the thresholds (mmap ") + (mmap_ok ? "taken" : "refused") +
                                       ", trim " + (trim_ok ? "taken" : "refused") + ")";
#else
    outcome = "left as is (not glibc)";
#endif
}

std::string malloc_tuning_summary() {
    std::lock_guard<std::mutex> lock(mutex);
#if defined(__GLIBC__)
    if (applied) return "malloc: glibc, " + outcome;
    const std::string veto = veto_from_environment();
    return "malloc: glibc, " + (veto.empty() ? "freed blocks to be kept once a CPU model is created (" + thresholds() + ")"
                                             : "left as is (" + veto + ")");
#else
    return "malloc: not glibc, left as is";
#endif
}

}  // namespace cdas::cpu
