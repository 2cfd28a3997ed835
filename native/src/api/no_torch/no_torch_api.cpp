// cdas.h entry points that need libtorch (the model runtime and the libtorch-composed baselines),
// for a libcdas built with CDAS_WITH_TORCH=OFF (kernels and their C API only, e.g. on a GPU machine
// for benchmarks/gpu/check-and-bench.sh). Every one of them exists, so the library exports the
// whole of cdas.h, and answers CDAS_STATUS_UNSUPPORTED with the reason as the last error.
#include <string>

#include "cdas.h"
#include "core/error.h"

namespace {

cdas_status unsupported(const char* function) {
    return cdas::abi_call(function, [&] {
        cdas::fail(CDAS_STATUS_UNSUPPORTED,
                   "this libcdas was built without libtorch (CMake option CDAS_WITH_TORCH=OFF): only contexts, "
                   "cdas_dii_* and cdas_lm_head_jsd are available; rebuild with CDAS_WITH_TORCH=ON for the model "
                   "runtime and the torch baselines");
    });
}

}  // namespace

extern "C" {

CDAS_API cdas_status cdas_baseline_lm_head_jsd_torch(int64_t, int64_t, int64_t, const float*, const float*,
                                                     const float*, float, const uint8_t*, float, float*, float*,
                                                     float*) {
    return unsupported("cdas_baseline_lm_head_jsd_torch");
}

CDAS_API cdas_status cdas_baseline_dii_torch(int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                                             const float*, const int32_t*, const uint8_t*, const float*, float*,
                                             float*, float*) {
    return unsupported("cdas_baseline_dii_torch");
}

CDAS_API cdas_status cdas_model_config_default(cdas_model_config*) { return unsupported("cdas_model_config_default"); }

CDAS_API cdas_status cdas_model_create(const cdas_model_config*, const cdas_tensor_view*, int64_t,
                                       cdas_model** model) {
    if (model) *model = nullptr;
    return unsupported("cdas_model_create");
}

// Accepts NULL, like the real one; no model can exist in this build.
CDAS_API cdas_status cdas_model_destroy(cdas_model* model) {
    if (!model) return cdas::abi_call("cdas_model_destroy", [] {});
    return unsupported("cdas_model_destroy");
}

CDAS_API cdas_status cdas_model_layer_devices(const cdas_model*, int32_t*, int64_t, int64_t*) {
    return unsupported("cdas_model_layer_devices");
}

CDAS_API cdas_status cdas_model_borrows_host_memory(const cdas_model*, int32_t*) {
    return unsupported("cdas_model_borrows_host_memory");
}

CDAS_API cdas_status cdas_model_forward(cdas_model*, const cdas_token_batch*, const cdas_intervention*, int32_t,
                                        float*, float*, float*) {
    return unsupported("cdas_model_forward");
}

CDAS_API cdas_status cdas_generation_options_default(cdas_generation_options*) {
    return unsupported("cdas_generation_options_default");
}

CDAS_API cdas_status cdas_model_generate(cdas_model*, const cdas_token_batch*, const cdas_intervention*,
                                         const cdas_generation_options*, int32_t*, int32_t*) {
    return unsupported("cdas_model_generate");
}

CDAS_API cdas_status cdas_model_cdas_objective(cdas_model*, int32_t, int32_t, const float*,
                                               const cdas_objective_batch*, float, float*, float*) {
    return unsupported("cdas_model_cdas_objective");
}

CDAS_API cdas_status cdas_model_sequence_logprobs(cdas_model*, const cdas_intervention*, const cdas_logprob_batch*,
                                                  const float*, float*, float*) {
    return unsupported("cdas_model_sequence_logprobs");
}

CDAS_API cdas_status cdas_model_expected_weights(const cdas_model_config*, cdas_weight_info*, int64_t, int64_t*) {
    return unsupported("cdas_model_expected_weights");
}

}  // extern "C"
