#include "core/context.h"

#include <string>

#include "core/cuda_loader.h"
#include "core/error.h"

namespace cdas {

namespace {

constexpr size_t kCudaErrorLen = 512;

void check_cuda_status(cdas_status status, const char* message) {
    if (status != CDAS_STATUS_OK) fail(status, message[0] ? message : "CUDA backend failed without a message");
}

}  // namespace

std::unique_ptr<cdas_context> context_create(const cdas_context_options& o) {
    if (o.device_type != CDAS_DEVICE_CPU && o.device_type != CDAS_DEVICE_CUDA)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->device_type must be CDAS_DEVICE_CPU (0) or CDAS_DEVICE_CUDA (1), got " +
                                               std::to_string(o.device_type));
    if (o.device_index < 0)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->device_index must be >= 0, got " + std::to_string(o.device_index));
    if (o.device_type == CDAS_DEVICE_CPU && o.device_index != 0)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->device_index must be 0 for a CPU context, got " +
                                               std::to_string(o.device_index));
    if (o.num_threads < 0)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->num_threads must be >= 0 (0 = all cores), got " +
                                               std::to_string(o.num_threads));
    if (o.chunk_rows < 0)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->chunk_rows must be >= 0 (0 = automatic), got " +
                                               std::to_string(o.chunk_rows));
    if (o.jsd_schedule != CDAS_JSD_SCHEDULE_AUTO && o.jsd_schedule != CDAS_JSD_SCHEDULE_CHUNKED)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->jsd_schedule must be 0 (AUTO) or 1 (CHUNKED), got " +
                                               std::to_string(o.jsd_schedule) +
                                               (o.jsd_schedule == 2 ? " (the FUSED schedule was removed)" : ""));

    auto context = std::make_unique<cdas_context>();
    context->options = o;
    if (o.device_type == CDAS_DEVICE_CPU) {
        context->cpu = std::make_unique<cpu::runtime>(o.num_threads);
        return context;
    }
    const char* why = nullptr;
    const cdas_cuda_backend* backend = cuda_backend_load(&why);
    if (!backend) fail(CDAS_STATUS_UNSUPPORTED, why);
    int32_t devices = backend->device_count();
    if (devices == 0) fail(CDAS_STATUS_UNSUPPORTED, "no CUDA device available (driver missing or no GPU)");
    if (o.device_index >= devices)
        fail(CDAS_STATUS_INVALID_ARGUMENT, "options->device_index " + std::to_string(o.device_index) +
                                               " out of range: " + std::to_string(devices) + " CUDA device(s)");
    char message[kCudaErrorLen] = "";
    check_cuda_status(backend->state_create(o.device_index, o.cuda_stream, o.check_inputs, &context->cuda_state, message,
                                            sizeof message),
                      message);
    context->cuda = backend;
    return context;
}

void context_destroy(cdas_context* context) noexcept {
    if (!context) return;
    if (context->cuda && context->cuda_state) context->cuda->state_destroy(context->cuda_state);
    delete context;
}

cdas_context& context_default_cpu() {
    // Leaked on purpose: worker threads must not be joined during static destruction.
    static cdas_context* context = [] {
        cdas_context_options o{};
        o.device_type = CDAS_DEVICE_CPU;
        return context_create(o).release();
    }();
    return *context;
}

bool context_is_cuda(const cdas_context& context) { return context.cuda != nullptr; }

int64_t context_peak_workspace_bytes(const cdas_context& context) {
    if (context.cuda) return context.cuda->peak_workspace_bytes(context.cuda_state);
    return context.cpu->scratch.peak_bytes();
}

void context_set_cuda_stream(cdas_context& context, void* stream) {
    if (!context.cuda) fail(CDAS_STATUS_INVALID_ARGUMENT, "context_set_cuda_stream: not a CUDA context");
    std::lock_guard<std::mutex> lock(context.mutex);
    char message[kCudaErrorLen] = "";
    check_cuda_status(context.cuda->set_stream(context.cuda_state, stream, message, sizeof message), message);
    context.options.cuda_stream = stream;
}

void context_synchronize(cdas_context& context) {
    if (!context.cuda) return;
    std::lock_guard<std::mutex> lock(context.mutex);
    char message[kCudaErrorLen] = "";
    check_cuda_status(context.cuda->synchronize(context.cuda_state, message, sizeof message), message);
}

void context_dii_forward(cdas_context& context, const cpu::dii_args& a, void* h_out, float* source_values_out) {
    std::lock_guard<std::mutex> lock(context.mutex);
    if (!context.cuda) {
        cpu::dii_forward(*context.cpu, a, h_out, source_values_out);
        return;
    }
    char message[kCudaErrorLen] = "";
    check_cuda_status(context.cuda->dii_forward(context.cuda_state, a.dtype, a.rows, a.dim, a.rank, a.examples, a.sets, a.h,
                                                a.directions, a.source, a.values, a.example_index, a.example_set, a.mask, h_out,
                                                source_values_out, message, sizeof message),
                      message);
}

void context_dii_backward(cdas_context& context, const cpu::dii_args& a, const void* grad_out, void* grad_h,
                          float* grad_directions, float* grad_values) {
    std::lock_guard<std::mutex> lock(context.mutex);
    if (!context.cuda) {
        cpu::dii_backward(*context.cpu, a, grad_out, grad_h, grad_directions, grad_values);
        return;
    }
    char message[kCudaErrorLen] = "";
    check_cuda_status(context.cuda->dii_backward(context.cuda_state, a.dtype, a.rows, a.dim, a.rank, a.examples, a.sets, a.h,
                                                 a.directions, a.source, a.values, a.example_index, a.example_set, a.mask, grad_out,
                                                 grad_h, grad_directions, grad_values, message, sizeof message),
                      message);
}

void context_lm_head_jsd(cdas_context& context, const cpu::lm_head_jsd_args& a) {
    std::lock_guard<std::mutex> lock(context.mutex);
    if (!context.cuda) {
        cpu::lm_head_jsd(*context.cpu, a, context.options.chunk_rows);
        return;
    }
    char message[kCudaErrorLen] = "";
    check_cuda_status(context.cuda->lm_head_jsd(context.cuda_state, context.options.jsd_schedule,
                                                context.options.chunk_rows, a.dtype, a.rows, a.dim, a.vocab,
                                                a.x_student, a.x_teacher, a.head, a.softcap, a.mask, a.grad_scale,
                                                a.loss_out, a.row_loss_out, a.grad_student_out, message, sizeof message),
                      message);
}

}  // namespace cdas
