// Argument checks shared by the C entry points and the libtorch glue. Each throws cdas::error
// naming the argument and the offending value. Data checks (example_index range, NaN/infinity)
// read host memory, so they run for CPU contexts only; the CUDA backend checks on the device.
#pragma once

#include "cdas.h"
#include "cpu/dii.h"
#include "cpu/lm_head_jsd.h"

namespace cdas {

void validate_dii_forward(const cdas_context& context, const cpu::dii_args& args, const void* h_out);
void validate_dii_backward(const cdas_context& context, const cpu::dii_args& args, const void* grad_out);
void validate_lm_head_jsd(const cdas_context& context, const cpu::lm_head_jsd_args& args);

// Shared helpers, also used by the baselines.
void require_pointer(const void* p, const char* name);
void require_positive(int64_t value, const char* name);
void require_finite_scalar(float value, const char* name);
void require_finite_data(int32_t dtype, const void* data, int64_t rows, int64_t cols, const char* name,
                         cpu::thread_pool& pool);

}  // namespace cdas
