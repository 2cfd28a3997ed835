// DII, the rank-r distributed interchange intervention, forward and backward: the CPU
// implementation of cdas_dii_forward / cdas_dii_backward and the spec the CUDA kernel must match.
#pragma once

#include <cstdint>

#include "cpu/runtime.h"

namespace cdas::cpu {

// Arguments exactly as cdas.h documents them; validated by the caller. Outputs are nullable
// where cdas.h says so.
struct dii_args {
    int32_t dtype;
    int64_t rows, dim, rank, examples;
    const void* h;
    const float* directions;
    const void* source;
    const float* values;
    const int32_t* example_index;
    const uint8_t* mask;
};

void dii_forward(runtime& rt, const dii_args& args, void* h_out, float* source_values_out);

void dii_backward(runtime& rt, const dii_args& args, const void* grad_out, void* grad_h,
                  float* grad_directions, float* grad_values);

// Rows per block of the grad_directions reduction; fixed so the result does not depend on the
// number of threads.
constexpr int64_t kDiiReductionBlockRows = 64;

}  // namespace cdas::cpu
