// cdas.h: the libtorch-composed baselines (benchmarks and cross-checks).
#include <string>

#include "cdas.h"
#include "core/context.h"
#include "core/error.h"
#include "core/validate.h"
#include "torch/baselines.h"

extern "C" {

CDAS_API cdas_status cdas_baseline_lm_head_jsd_torch(
    int64_t rows, int64_t dim, int64_t vocab,
    const float* x_student, const float* x_teacher, const float* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out) {
    return cdas::abi_call("cdas_baseline_lm_head_jsd_torch", [&] {
        cdas::cpu::lm_head_jsd_args args{CDAS_DTYPE_F32, rows, dim, vocab, x_student, x_teacher, head, softcap, mask,
                                         grad_scale, loss_out, row_loss_out, grad_student_out};
        cdas::validate_lm_head_jsd(cdas::context_default_cpu(), args);
        cdas::baseline_lm_head_jsd_torch(args);
    });
}

CDAS_API cdas_status cdas_baseline_dii_torch(
    int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const float* h, const float* directions, const float* source,
    const int32_t* example_index, const uint8_t* mask, const float* grad_out,
    float* h_out, float* grad_h, float* grad_directions) {
    return cdas::abi_call("cdas_baseline_dii_torch", [&] {
        cdas::cpu::dii_args args{CDAS_DTYPE_F32, rows, dim, rank, examples, h, directions, source, nullptr,
                                 example_index, mask};
        if (!source) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "source must not be NULL");
        cdas::validate_dii_forward(cdas::context_default_cpu(), args, h_out);
        if (grad_out) cdas::require_finite_data(CDAS_DTYPE_F32, grad_out, rows, dim, "grad_out",
                                                cdas::context_default_cpu().cpu->pool);
        if ((grad_h || grad_directions) && !grad_out)
            cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "grad_out must not be NULL when grad_h or grad_directions is given");
        cdas::baseline_dii_torch(args, grad_out, h_out, grad_h, grad_directions);
    });
}

}  // extern "C"
