// cdas.h: the DII and LM-head JSD entry points: validate, then dispatch by the context's device.
#include "cdas.h"
#include "core/context.h"
#include "core/error.h"
#include "core/validate.h"

extern "C" {

CDAS_API cdas_status cdas_dii_forward(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask,
    void* h_out, float* source_values_out) {
    return cdas::abi_call("cdas_dii_forward", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::cpu::dii_args args{dtype, rows, dim, rank, examples, h, directions, source, values, example_index, mask};
        cdas::validate_dii_forward(*context, args, h_out);
        cdas::context_dii_forward(*context, args, h_out, source_values_out);
    });
}

CDAS_API cdas_status cdas_dii_backward(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values) {
    return cdas::abi_call("cdas_dii_backward", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::cpu::dii_args args{dtype, rows, dim, rank, examples, h, directions, source, values, example_index, mask};
        cdas::validate_dii_backward(*context, args, grad_out);
        cdas::context_dii_backward(*context, args, grad_out, grad_h, grad_directions, grad_values);
    });
}

CDAS_API cdas_status cdas_dii_forward_sets(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
    void* h_out, float* source_values_out) {
    return cdas::abi_call("cdas_dii_forward_sets", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::cpu::dii_args args{dtype, rows, dim, rank, examples, h, directions, source, values, example_index, mask,
                                 example_set, sets};
        cdas::validate_dii_forward(*context, args, h_out);
        cdas::context_dii_forward(*context, args, h_out, source_values_out);
    });
}

CDAS_API cdas_status cdas_dii_backward_sets(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values) {
    return cdas::abi_call("cdas_dii_backward_sets", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::cpu::dii_args args{dtype, rows, dim, rank, examples, h, directions, source, values, example_index, mask,
                                 example_set, sets};
        cdas::validate_dii_backward(*context, args, grad_out);
        cdas::context_dii_backward(*context, args, grad_out, grad_h, grad_directions, grad_values);
    });
}

CDAS_API cdas_status cdas_lm_head_jsd(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t vocab,
    const void* x_student, const void* x_teacher, const void* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out) {
    return cdas::abi_call("cdas_lm_head_jsd", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::cpu::lm_head_jsd_args args{dtype, rows, dim, vocab, x_student, x_teacher, head, softcap, mask,
                                         grad_scale, loss_out, row_loss_out, grad_student_out};
        cdas::validate_lm_head_jsd(*context, args);
        cdas::context_lm_head_jsd(*context, args);
    });
}

}  // extern "C"
