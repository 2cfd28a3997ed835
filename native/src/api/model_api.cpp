// cdas.h: the model runtime's entry points: validate the host-side arguments against the
// model's spec (model/validate.h), then run (model/runtime.h).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "cdas.h"
#include "core/error.h"
#include "cpu/malloc_tuning.h"
#include "model/runtime.h"
#include "model/spec.h"
#include "model/validate.h"

namespace {

using cdas::fail;

cdas_model& require_model(cdas_model* model) {
    if (!model) fail(CDAS_STATUS_INVALID_ARGUMENT, "model must not be NULL");
    return *model;
}

}  // namespace

extern "C" {

CDAS_API cdas_status cdas_model_config_default(cdas_model_config* config) {
    return cdas::abi_call("cdas_model_config_default", [&] {
        if (!config) fail(CDAS_STATUS_INVALID_ARGUMENT, "config must not be NULL");
        *config = cdas_model_config{};
        config->rope_partial_factor = 1.0;
        config->dtype = CDAS_DTYPE_F32;
        config->device_type = CDAS_DEVICE_CPU;
    });
}

CDAS_API cdas_status cdas_model_create(const cdas_model_config* config, const cdas_tensor_view* tensors,
                                       int64_t tensor_count, cdas_model** model) {
    return cdas::abi_call("cdas_model_create", [&] {
        if (!model) fail(CDAS_STATUS_INVALID_ARGUMENT, "model must not be NULL");
        *model = nullptr;
        if (!config) fail(CDAS_STATUS_INVALID_ARGUMENT, "config must not be NULL");
        bool on_cpu = config->split_count <= 0 ? config->device_type == CDAS_DEVICE_CPU : false;
        for (int32_t i = 0; i < config->split_count && config->split_device_types; ++i)
            on_cpu = on_cpu || config->split_device_types[i] == CDAS_DEVICE_CPU;
        if (on_cpu) cdas::cpu::tune_malloc_once();  // a CPU step's blocks stay in the process (cpu/malloc_tuning.h)
        *model = cdas::model::model_create(*config, tensors, tensor_count);
    });
}

CDAS_API cdas_status cdas_model_destroy(cdas_model* model) {
    return cdas::abi_call("cdas_model_destroy", [&] { cdas::model::model_destroy(model); });
}

CDAS_API cdas_status cdas_model_borrows_host_memory(const cdas_model* model, int32_t* borrows) {
    return cdas::abi_call("cdas_model_borrows_host_memory", [&] {
        if (!model) fail(CDAS_STATUS_INVALID_ARGUMENT, "model must not be NULL");
        if (!borrows) fail(CDAS_STATUS_INVALID_ARGUMENT, "borrows must not be NULL");
        *borrows = cdas::model::model_borrows_host_memory(*model) ? 1 : 0;
    });
}

CDAS_API cdas_status cdas_model_layer_devices(const cdas_model* model, int32_t* layer_device_out, int64_t capacity,
                                              int64_t* count) {
    return cdas::abi_call("cdas_model_layer_devices", [&] {
        if (!count) fail(CDAS_STATUS_INVALID_ARGUMENT, "count must not be NULL");
        *count = 0;
        if (!model) fail(CDAS_STATUS_INVALID_ARGUMENT, "model must not be NULL");
        const std::vector<int32_t>& map = cdas::model::model_layer_devices(*model);
        if (capacity < int64_t(map.size()))
            fail(CDAS_STATUS_INVALID_ARGUMENT, "capacity must be >= the model's " + std::to_string(map.size()) +
                                                   " blocks, got " + std::to_string(capacity));
        if (!layer_device_out) fail(CDAS_STATUS_INVALID_ARGUMENT, "layer_device_out must not be NULL");
        std::copy(map.begin(), map.end(), layer_device_out);
        *count = int64_t(map.size());
    });
}

CDAS_API cdas_status cdas_model_forward(cdas_model* model, const cdas_token_batch* input,
                                        const cdas_intervention* intervention, int32_t hidden_layer,
                                        float* hidden_out, float* final_hidden_out, float* logits_out) {
    return cdas::abi_call("cdas_model_forward", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        std::vector<int64_t> first = cdas::model::validate_forward(spec, input, intervention, hidden_layer, hidden_out,
                                                                   final_hidden_out, logits_out);
        cdas::model::model_forward(m, *input, first, intervention, hidden_layer, hidden_out, final_hidden_out, logits_out);
    });
}

CDAS_API cdas_status cdas_generation_options_default(cdas_generation_options* options) {
    return cdas::abi_call("cdas_generation_options_default", [&] {
        if (!options) fail(CDAS_STATUS_INVALID_ARGUMENT, "options must not be NULL");
        *options = cdas_generation_options{};
        options->max_new_tokens = 32;
        options->top_p = 1.0f;
    });
}

CDAS_API cdas_status cdas_model_generate(cdas_model* model, const cdas_token_batch* prompt,
                                         const cdas_intervention* intervention,
                                         const cdas_generation_options* options,
                                         int32_t* new_tokens_out, int32_t* lengths_out) {
    return cdas::abi_call("cdas_model_generate", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        std::vector<int64_t> first =
            cdas::model::validate_generate(spec, prompt, intervention, options, new_tokens_out, lengths_out);
        cdas::model::model_generate(m, *prompt, first, intervention, *options, new_tokens_out, lengths_out);
    });
}

CDAS_API cdas_status cdas_model_cdas_objective(cdas_model* model, int32_t layer, int32_t rank,
                                               const float* directions, const cdas_objective_batch* batch,
                                               float grad_scale, float* loss_out, float* grad_directions_out) {
    return cdas::abi_call("cdas_model_cdas_objective", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        const cdas::model::objective_rows rows =
            cdas::model::validate_objective(spec, layer, rank, directions, batch, grad_scale, loss_out);
        cdas::model::model_cdas_objective(m, layer, rank, directions, *batch, rows, grad_scale, loss_out,
                                          grad_directions_out);
    });
}

CDAS_API cdas_status cdas_model_sequence_logprobs(cdas_model* model, const cdas_intervention* intervention,
                                                  const cdas_logprob_batch* batch, const float* upstream,
                                                  float* logprob_out, float* grad_out) {
    return cdas::abi_call("cdas_model_sequence_logprobs", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        std::vector<int64_t> first =
            cdas::model::validate_logprobs(spec, intervention, batch, upstream, logprob_out, grad_out);
        cdas::model::model_sequence_logprobs(m, intervention, *batch, first, upstream, logprob_out, grad_out);
    });
}

CDAS_API cdas_status cdas_model_expected_weights(const cdas_model_config* config, cdas_weight_info* weights,
                                                 int64_t capacity, int64_t* count) {
    return cdas::abi_call("cdas_model_expected_weights", [&] {
        if (!count) fail(CDAS_STATUS_INVALID_ARGUMENT, "count must not be NULL");
        *count = 0;
        if (!config) fail(CDAS_STATUS_INVALID_ARGUMENT, "config must not be NULL");
        if (capacity < 0) fail(CDAS_STATUS_INVALID_ARGUMENT, "capacity must be >= 0, got " + std::to_string(capacity));
        if (capacity > 0 && !weights) fail(CDAS_STATUS_INVALID_ARGUMENT, "weights must not be NULL when capacity > 0");
        const cdas::model::model_spec spec = cdas::model::spec_from_config(*config);
        const std::vector<cdas::model::weight_spec> expected = cdas::model::expected_weights(spec);
        const char* prefix = spec.traits().optional_prefix;
        auto copy = [](char (&out)[128], const std::string& name) {
            if (name.size() >= sizeof out)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor name " + name + " is longer than cdas_weight_info.name holds");
            std::memcpy(out, name.c_str(), name.size() + 1);
        };
        for (size_t i = 0; i < expected.size() && int64_t(i) < capacity; ++i) {
            const cdas::model::weight_spec& w = expected[i];
            cdas_weight_info info{};
            copy(info.name, w.name);
            if (prefix && w.name.rfind(prefix, 0) == 0) copy(info.alternative_name, w.name.substr(std::strlen(prefix)));
            info.ndim = int32_t(w.shape.size());
            for (size_t k = 0; k < w.shape.size(); ++k) info.shape[k] = w.shape[k];
            info.optional = w.optional ? 1 : 0;
            weights[i] = info;
        }
        *count = int64_t(expected.size());
    });
}

}  // extern "C"
