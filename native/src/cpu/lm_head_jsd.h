// LM head (+ soft-cap) + Jensen-Shannon divergence over the vocabulary, forward and gradient:
// the CPU implementation of cdas_lm_head_jsd and the spec the CUDA kernel must match.
#pragma once

#include <cstdint>

#include "cpu/runtime.h"

namespace cdas::cpu {

// Arguments exactly as cdas_lm_head_jsd documents them; validated by the caller.
struct lm_head_jsd_args {
    int32_t dtype;
    int64_t rows, dim, vocab;
    const void* x_student;
    const void* x_teacher;
    const void* head;
    float softcap;
    const uint8_t* mask;
    float grad_scale;
    float* loss_out;
    float* row_loss_out;
    float* grad_student_out;
};

// The chunked schedule (the only one); chunk_rows <= 0: automatic.
void lm_head_jsd(runtime& rt, const lm_head_jsd_args& args, int64_t chunk_rows);

// Token rows per chunk picked automatically: its two fp32 logit blocks stay near 16 MiB.
int64_t lm_head_jsd_auto_chunk_rows(int64_t rows, int64_t vocab);

}  // namespace cdas::cpu
