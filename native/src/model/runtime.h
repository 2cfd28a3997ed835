// The cdas_model behind the opaque handle and the model calls of cdas.h (forward, generation,
// the CDAS objective, the baselines' steered log-likelihoods) between host buffers and the decoder. No torch headers: the C entry points
// include this; arguments arrive validated by the checks of model/validate.h.
#pragma once

#include <cstdint>
#include <vector>

#include "cdas.h"
#include "model/spec.h"
#include "model/validate.h"

namespace cdas::model {

// Throws cdas::error on a bad config or bad tensors. The caller owns the result (model_destroy).
cdas_model* model_create(const cdas_model_config& config, const cdas_tensor_view* tensors,
                                         int64_t count);
void model_destroy(cdas_model* model) noexcept;

const model_spec& model_spec_of(const cdas_model& model);
bool model_borrows_host_memory(const cdas_model& model);
// Each block's entry in the spec's device list (layer split; all 0 without one).
const std::vector<int32_t>& model_layer_devices(const cdas_model& model);

// first_real: each row's first real column (from validate_batch).
void model_forward(cdas_model& model, const cdas_token_batch& input, const std::vector<int64_t>& first_real,
                   const cdas_intervention* intervention, int32_t hidden_layer, float* hidden_out,
                   float* final_hidden_out, float* logits_out);

void model_generate(cdas_model& model, const cdas_token_batch& prompt, const std::vector<int64_t>& first_real,
                    const cdas_intervention* intervention, const cdas_generation_options& options,
                    int32_t* new_tokens_out, int32_t* lengths_out);

void model_cdas_objective(cdas_model& model, int32_t layer, int32_t rank, const float* directions,
                          const cdas_objective_batch& batch, const objective_rows& rows, float grad_scale,
                          float* loss_out, float* grad_directions_out);

// first_real: each row's first real column (from validate_logprobs).
void model_sequence_logprobs(cdas_model& model, const cdas_intervention* intervention, const cdas_logprob_batch& batch,
                             const std::vector<int64_t>& first_real, const float* upstream, float* logprob_out,
                             float* grad_out);

}  // namespace cdas::model
