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
    // Several direction sets (concept packing): directions holds `sets` blocks of rank x d, and
    // example e is clamped with block example_set[e] (a_e = W_set s_e as well); grad_directions is
    // then sets x rank x d, block k the gradient of set k's directions. NULL: one set (sets = 1).
    const int32_t* example_set = nullptr;
    int64_t sets = 1;
};

// The directions of example e's set.
inline const float* set_directions(const dii_args& a, int64_t e) {
    return a.example_set ? a.directions + int64_t(a.example_set[e]) * a.rank * a.dim : a.directions;
}

void dii_forward(runtime& rt, const dii_args& args, void* h_out, float* source_values_out);

void dii_backward(runtime& rt, const dii_args& args, const void* grad_out, void* grad_h,
                  float* grad_directions, float* grad_values);

// Rows per block of the grad_directions reduction; fixed so the result does not depend on the
// number of threads.
constexpr int64_t kDiiReductionBlockRows = 64;

}  // namespace cdas::cpu
