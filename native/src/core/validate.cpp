#include "core/validate.h"

#include <cmath>
#include <cstdint>
#include <string>

#include "core/context.h"
#include "core/error.h"
#include "cpu/dtype.h"
#include "cpu/finite_check.h"

namespace cdas {

void require_pointer(const void* p, const char* name) {
    if (!p) fail(CDAS_STATUS_INVALID_ARGUMENT, std::string(name) + " must not be NULL");
}

void require_positive(int64_t value, const char* name) {
    if (value <= 0) fail(CDAS_STATUS_INVALID_ARGUMENT, std::string(name) + " must be > 0, got " + std::to_string(value));
}

void require_finite_scalar(float value, const char* name) {
    if (!std::isfinite(value))
        fail(CDAS_STATUS_NON_FINITE, std::string(name) + " must be finite, got " + std::to_string(value));
}

void require_finite_data(int32_t dtype, const void* data, int64_t rows, int64_t cols, const char* name,
                         cpu::thread_pool& pool) {
    int64_t bad = cpu::find_non_finite(dtype, data, rows * cols, pool);
    if (bad < 0) return;
    float value;
    cpu::convert_to_f32(dtype, data, bad, 1, &value);
    fail(CDAS_STATUS_NON_FINITE, std::string(name) + " contains a non-finite value (" + std::to_string(value) +
                                     ") at row " + std::to_string(bad / cols) + ", column " + std::to_string(bad % cols));
}

namespace {

void require_dtype(int32_t dtype) {
    if (!cpu::dtype_valid(dtype))
        fail(CDAS_STATUS_INVALID_ARGUMENT, "dtype must be CDAS_DTYPE_F32 (0), CDAS_DTYPE_BF16 (1) or CDAS_DTYPE_F16 (2), got " +
                                               std::to_string(dtype));
}

void validate_dii_common(const cdas_context& context, const cpu::dii_args& a) {
    require_dtype(a.dtype);
    require_positive(a.rows, "rows");
    require_positive(a.dim, "dim");
    require_positive(a.rank, "rank");
    require_positive(a.examples, "examples");
    if (a.rank > a.dim)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "rank must be <= dim, got rank " + std::to_string(a.rank) + " > dim " +
                                               std::to_string(a.dim));
    require_pointer(a.h, "h");
    require_pointer(a.directions, "directions");
    require_pointer(a.example_index, "example_index");
    if ((a.source == nullptr) == (a.values == nullptr))
        fail(CDAS_STATUS_INVALID_ARGUMENT, a.source ? "give exactly one of source and values, got both"
                                                    : "give exactly one of source and values, got neither");
    require_positive(a.sets, "sets");
    if (a.sets > 1) require_pointer(a.example_set, "example_set (sets > 1)");
    if (a.sets * a.rank > INT32_MAX)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "sets x rank must fit in int32, got " + std::to_string(a.sets * a.rank));
    if (context_is_cuda(context)) return;  // device memory: the kernels flag bad indices
    if (a.example_set)
        for (int64_t e = 0; e < a.examples; ++e)
            if (a.example_set[e] < 0 || a.example_set[e] >= a.sets)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "example_set[" + std::to_string(e) + "] = " +
                                                       std::to_string(a.example_set[e]) + " out of range [0, " +
                                                       std::to_string(a.sets) + ")");
    for (int64_t t = 0; t < a.rows; ++t) {
        int32_t e = a.example_index[t];
        if (e < 0 || e >= a.examples)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "example_index[" + std::to_string(t) + "] = " + std::to_string(e) +
                                                   " out of range [0, " + std::to_string(a.examples) + ")");
    }
    cpu::thread_pool& pool = context.cpu->pool;
    require_finite_data(a.dtype, a.h, a.rows, a.dim, "h", pool);
    require_finite_data(CDAS_DTYPE_F32, a.directions, a.sets * a.rank, a.dim, "directions", pool);
    if (a.source) require_finite_data(a.dtype, a.source, a.examples, a.dim, "source", pool);
    if (a.values) require_finite_data(CDAS_DTYPE_F32, a.values, a.examples, a.rank, "values", pool);
}

}  // namespace

void validate_dii_forward(const cdas_context& context, const cpu::dii_args& a, const void* h_out) {
    validate_dii_common(context, a);
    require_pointer(h_out, "h_out");
}

void validate_dii_backward(const cdas_context& context, const cpu::dii_args& a, const void* grad_out) {
    validate_dii_common(context, a);
    require_pointer(grad_out, "grad_out");
    if (!context_is_cuda(context)) require_finite_data(a.dtype, grad_out, a.rows, a.dim, "grad_out", context.cpu->pool);
}

void validate_lm_head_jsd(const cdas_context& context, const cpu::lm_head_jsd_args& a) {
    require_dtype(a.dtype);
    require_positive(a.rows, "rows");
    require_positive(a.dim, "dim");
    require_positive(a.vocab, "vocab");
    require_pointer(a.x_student, "x_student");
    require_pointer(a.x_teacher, "x_teacher");
    require_pointer(a.head, "head");
    require_pointer(a.loss_out, "loss_out");
    require_finite_scalar(a.softcap, "softcap");
    require_finite_scalar(a.grad_scale, "grad_scale");
    if (context_is_cuda(context)) return;
    cpu::thread_pool& pool = context.cpu->pool;
    require_finite_data(a.dtype, a.x_student, a.rows, a.dim, "x_student", pool);
    require_finite_data(a.dtype, a.x_teacher, a.rows, a.dim, "x_teacher", pool);
    require_finite_data(a.dtype, a.head, a.vocab, a.dim, "head", pool);
}

}  // namespace cdas
