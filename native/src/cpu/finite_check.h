// Finds NaN/infinity in an input buffer, so the entry points can name the argument and the first
// offending element instead of letting a NaN spread silently through a training step.
#pragma once

#include <cstdint>

#include "cpu/thread_pool.h"

namespace cdas::cpu {

// Index of the first non-finite element of `count` dtype elements, or -1.
int64_t find_non_finite(int32_t dtype, const void* data, int64_t count, thread_pool& pool);

}  // namespace cdas::cpu
