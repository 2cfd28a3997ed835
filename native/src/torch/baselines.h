// The two operations composed from libtorch ops the way PyTorch users write them: the benchmark
// baselines and an independent cross-check of the kernels. fp32, CPU, arguments validated by the
// caller.
#pragma once

#include "cpu/dii.h"
#include "cpu/lm_head_jsd.h"

namespace cdas {

// Fills loss_out, row_loss_out and grad_student_out (the last two nullable) like cdas_lm_head_jsd.
void baseline_lm_head_jsd_torch(const cpu::lm_head_jsd_args& args);

// args.source is required (values unsupported). h_out, grad_h, grad_directions nullable;
// grad_out required when a gradient is asked for.
void baseline_dii_torch(const cpu::dii_args& args, const float* grad_out, float* h_out, float* grad_h,
                        float* grad_directions);

}  // namespace cdas
