// The cdas_context behind the opaque handle, and the dispatch of the two operations to the CPU
// kernels or the CUDA backend table by the context's device. The C entry points and the libtorch
// glue both call these after validating their arguments.
#pragma once

#include <memory>
#include <mutex>

#include "cdas.h"
#include "cpu/dii.h"
#include "cpu/lm_head_jsd.h"
#include "cpu/runtime.h"
#include "cuda/cuda_backend.h"

struct cdas_context {
    cdas_context_options options{};
    // One call at a time: the workspace and the CUDA state are reused between calls.
    std::mutex mutex;
    std::unique_ptr<cdas::cpu::runtime> cpu;   // CPU contexts
    const cdas_cuda_backend* cuda = nullptr;    // CUDA contexts
    cdas_cuda_state* cuda_state = nullptr;
};

namespace cdas {

// Throws cdas::error on bad options or when the device is unavailable.
std::unique_ptr<cdas_context> context_create(const cdas_context_options& options);
void context_destroy(cdas_context* context) noexcept;

// A process-wide CPU context with default options, for callers that have none (libtorch glue).
cdas_context& context_default_cpu();

bool context_is_cuda(const cdas_context& context);
int64_t context_peak_workspace_bytes(const cdas_context& context);
void context_synchronize(cdas_context& context);
// Later calls on a CUDA context run on `stream` (a cudaStream_t); no host synchronisation.
void context_set_cuda_stream(cdas_context& context, void* stream);

void context_dii_forward(cdas_context& context, const cpu::dii_args& args, void* h_out, float* source_values_out);
void context_dii_backward(cdas_context& context, const cpu::dii_args& args, const void* grad_out, void* grad_h,
                          float* grad_directions, float* grad_values);
void context_lm_head_jsd(cdas_context& context, const cpu::lm_head_jsd_args& args);

}  // namespace cdas
