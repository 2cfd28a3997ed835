// The host-side checks of the model calls' arguments against the model's spec, run by the C entry
// points (api/model_api.cpp) before anything is computed, so the runtime (model/runtime.h) gets
// only arguments it can use. Each check throws cdas::error naming the argument or field:
// INVALID_ARGUMENT, or NON_FINITE for a NaN or infinity in the caller's floats. No torch here.
#pragma once

#include <cstdint>
#include <vector>

#include "cdas.h"
#include "model/spec.h"

namespace cdas::model {

// ---- the calls ---------------------------------------------------------------------------------

// cdas_model_forward's arguments. Returns the first real column of each input row.
std::vector<int64_t> validate_forward(const model_spec& spec, const cdas_token_batch* input,
                                      const cdas_intervention* intervention, int32_t hidden_layer,
                                      const float* hidden_out, const float* final_hidden_out, const float* logits_out);

// cdas_model_generate's arguments. Returns the first real column of each prompt row.
std::vector<int64_t> validate_generate(const model_spec& spec, const cdas_token_batch* prompt,
                                       const cdas_intervention* intervention, const cdas_generation_options* options,
                                       const int32_t* new_tokens_out, const int32_t* lengths_out);

// The first real column of each row of the objective's batches (target_first stays empty when
// the target is not read: cross-entropy, or teacher states given).
struct objective_rows {
    std::vector<int64_t> base_first, source_first, target_first;
};

// cdas_model_cdas_objective's arguments.
objective_rows validate_objective(const model_spec& spec, int32_t layer, int32_t rank, const float* directions,
                                  const cdas_objective_batch* batch, float grad_scale, const float* loss_out);

// cdas_model_sequence_logprobs's arguments. Returns the first real column of each row.
std::vector<int64_t> validate_logprobs(const model_spec& spec, const cdas_intervention* intervention,
                                       const cdas_logprob_batch* batch, const float* upstream, const float* logprob_out,
                                       const float* grad_out);

// ---- the pieces --------------------------------------------------------------------------------

// A token batch: sizes, token range, mask values, one contiguous run of real tokens per row
// (and, when left_padded, ending at the last column). Returns the first real column of each row.
std::vector<int64_t> validate_batch(const model_spec& spec, const cdas_token_batch* batch, const char* name,
                                    bool left_padded);

// Real tokens of row b (after validate_batch).
int64_t batch_row_length(const cdas_token_batch& batch, int64_t row, int64_t first_real);

// An intervention for a batch of B rows whose real lengths are `lengths`.
void validate_intervention(const model_spec& spec, const cdas_intervention& iv, const std::vector<int64_t>& lengths,
                           const char* name);

void validate_directions(const model_spec& spec, int32_t layer, int32_t rank, const float* directions,
                         const char* layer_name, const char* rank_name, const char* directions_name);

void validate_generation_options(const model_spec& spec, const cdas_generation_options& options);

}  // namespace cdas::model
