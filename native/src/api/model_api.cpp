// cdas.h: the model runtime's entry points: validate the host-side arguments against the
// model's spec, then run (model/runtime.h).
#include <cmath>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "api/error.h"
#include "cdas.h"
#include "model/runtime.h"
#include "model/spec.h"

namespace {

using cdas::fail;

cdas_model& require_model(cdas_model* model) {
    if (!model) fail(CDAS_STATUS_INVALID_ARGUMENT, "model must not be NULL");
    return *model;
}

std::vector<int64_t> lengths_of(const cdas_token_batch& batch, const std::vector<int64_t>& first) {
    std::vector<int64_t> lengths;
    for (int64_t b = 0; b < batch.batch; ++b) lengths.push_back(cdas::model::batch_row_length(batch, b, first[size_t(b)]));
    return lengths;
}

// start + count (+ 1 when each compared row's next token is read as a label) within each row's
// real tokens.
void require_rows(const std::vector<int64_t>& lengths, const int32_t* start, const int32_t* count, const char* start_name,
                  bool reads_next = false) {
    for (size_t b = 0; b < lengths.size(); ++b) {
        if (start[b] < 0 || int64_t(start[b]) + count[b] + (reads_next ? 1 : 0) > lengths[b])
            fail(CDAS_STATUS_INVALID_ARGUMENT,
                 std::string(start_name) + "[" + std::to_string(b) + "] = " + std::to_string(start[b]) + " with compare_count " +
                     std::to_string(count[b]) + (reads_next ? " and the next token of each row as the label" : "") +
                     " leaves the row's " + std::to_string(lengths[b]) + " real tokens");
    }
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

CDAS_API cdas_status cdas_model_forward(cdas_model* model, const cdas_token_batch* input,
                                        const cdas_intervention* intervention, int32_t hidden_layer,
                                        float* hidden_out, float* final_hidden_out, float* logits_out) {
    return cdas::abi_call("cdas_model_forward", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        std::vector<int64_t> first = cdas::model::validate_batch(spec, input, "input", false);
        if (!hidden_out && !final_hidden_out && !logits_out)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "give at least one of hidden_out, final_hidden_out and logits_out");
        if (hidden_out && (hidden_layer < 0 || hidden_layer >= spec.num_layers))
            fail(CDAS_STATUS_INVALID_ARGUMENT, "hidden_layer = " + std::to_string(hidden_layer) +
                                                   " is out of range: the model has blocks 0.." +
                                                   std::to_string(spec.num_layers - 1));
        if (intervention)
            cdas::model::validate_intervention(spec, *intervention, lengths_of(*input, first), "intervention");
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
        std::vector<int64_t> first = cdas::model::validate_batch(spec, prompt, "prompt", true);
        if (!options) fail(CDAS_STATUS_INVALID_ARGUMENT, "options must not be NULL");
        cdas::model::validate_generation_options(spec, *options);
        if (!new_tokens_out) fail(CDAS_STATUS_INVALID_ARGUMENT, "new_tokens_out must not be NULL");
        if (!lengths_out) fail(CDAS_STATUS_INVALID_ARGUMENT, "lengths_out must not be NULL");
        if (intervention)
            cdas::model::validate_intervention(spec, *intervention, lengths_of(*prompt, first), "intervention");
        cdas::model::model_generate(m, *prompt, first, intervention, *options, new_tokens_out, lengths_out);
    });
}

CDAS_API cdas_status cdas_model_cdas_objective(cdas_model* model, int32_t layer, int32_t rank,
                                               const float* directions, const cdas_objective_batch* batch,
                                               float grad_scale, float* loss_out, float* grad_directions_out) {
    return cdas::abi_call("cdas_model_cdas_objective", [&] {
        cdas_model& m = require_model(model);
        const cdas::model::model_spec& spec = cdas::model::model_spec_of(m);
        cdas::model::validate_directions(spec, layer, rank, directions, "layer", "rank", "directions");
        if (!batch) fail(CDAS_STATUS_INVALID_ARGUMENT, "batch must not be NULL");
        if (!loss_out) fail(CDAS_STATUS_INVALID_ARGUMENT, "loss_out must not be NULL");
        if (!std::isfinite(grad_scale)) fail(CDAS_STATUS_NON_FINITE, "grad_scale must be finite");
        if (batch->loss != CDAS_LOSS_JSD && batch->loss != CDAS_LOSS_JSD_COMPOSED && batch->loss != CDAS_LOSS_CROSS_ENTROPY)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.loss = " + std::to_string(batch->loss) +
                                                   " is not a cdas_objective_loss (0 JSD, 1 JSD_COMPOSED, 2 CROSS_ENTROPY)");
        const bool uses_target = batch->loss != CDAS_LOSS_CROSS_ENTROPY && !batch->teacher_hidden;
        cdas::model::objective_rows rows;
        rows.base_first = cdas::model::validate_batch(spec, &batch->base, "batch.base", false);
        rows.source_first = cdas::model::validate_batch(spec, &batch->source, "batch.source", false);
        if (uses_target) rows.target_first = cdas::model::validate_batch(spec, &batch->target, "batch.target", false);
        const int64_t B = batch->base.batch;
        if (batch->source.batch != B || (uses_target && batch->target.batch != B))
            fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.source.batch (" + std::to_string(batch->source.batch) +
                                                   ") and batch.target.batch (" + std::to_string(batch->target.batch) +
                                                   ") must equal batch.base.batch (" + std::to_string(B) + ")");
        const std::pair<const void*, const char*> required[] = {
            {batch->prefix_len, "batch.prefix_len"},     {batch->source_positions, "batch.source_positions"},
            {batch->base_start, "batch.base_start"},     {uses_target ? batch->target_start : batch->base_start, "batch.target_start"},
            {batch->compare_count, "batch.compare_count"}};
        for (auto [p, name] : required)
            if (!p) fail(CDAS_STATUS_INVALID_ARGUMENT, std::string(name) + " must not be NULL");
        int64_t compared = 0;
        for (int64_t b = 0; b < B; ++b) {
            if (batch->compare_count[b] < 0)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.compare_count[" + std::to_string(b) + "] must be >= 0, got " +
                                                       std::to_string(batch->compare_count[b]));
            if (batch->prefix_len[b] < 0)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.prefix_len[" + std::to_string(b) + "] must be >= 0, got " +
                                                       std::to_string(batch->prefix_len[b]));
            compared += batch->compare_count[b];
        }
        if (compared == 0) fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.compare_count adds up to 0 rows: nothing to compare");
        std::vector<int64_t> source_lengths = lengths_of(batch->source, rows.source_first);
        for (int64_t b = 0; b < B; ++b)
            if (batch->source_positions[b] < 0 || batch->source_positions[b] >= source_lengths[size_t(b)])
                fail(CDAS_STATUS_INVALID_ARGUMENT, "batch.source_positions[" + std::to_string(b) + "] = " +
                                                       std::to_string(batch->source_positions[b]) + " is outside the row's " +
                                                       std::to_string(source_lengths[size_t(b)]) + " real tokens");
        // Given states: finite (they come from the caller's memory, e.g. a cache).
        const int64_t d = spec.hidden;
        const std::tuple<const float*, int64_t, const char*> states[] = {
            {batch->base_hidden, B * batch->base.seq_len * d, "batch.base_hidden"},
            {batch->source_hidden, B * d, "batch.source_hidden"},
            {batch->loss != CDAS_LOSS_CROSS_ENTROPY ? batch->teacher_hidden : nullptr, compared * d, "batch.teacher_hidden"}};
        for (auto [data, n, name] : states)
            if (data)
                for (int64_t i = 0; i < n; ++i)
                    if (!std::isfinite(data[i]))
                        fail(CDAS_STATUS_NON_FINITE, std::string(name) + " holds a non-finite value at element " + std::to_string(i));
        if (batch->loss != CDAS_LOSS_CROSS_ENTROPY) {
            require_rows(lengths_of(batch->base, rows.base_first), batch->base_start, batch->compare_count, "batch.base_start");
            if (uses_target)
                require_rows(lengths_of(batch->target, rows.target_first), batch->target_start, batch->compare_count,
                             "batch.target_start");
        } else {
            require_rows(lengths_of(batch->base, rows.base_first), batch->base_start, batch->compare_count,
                         "batch.base_start", /*reads_next=*/true);
        }
        cdas::model::model_cdas_objective(m, layer, rank, directions, *batch, rows, grad_scale, loss_out,
                                          grad_directions_out);
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
