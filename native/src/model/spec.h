// The model runtime's view of a cdas_model_config: validated, defaults filled in, arrays copied
// (the caller's config may go after cdas_model_create), plus the checkpoint layout it implies.
// The checks of the model calls' arguments against it are model/validate.h's. No torch here: the
// C entry points and the tests use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cdas.h"
#include "model/family.h"

namespace cdas::model {

struct model_spec {
    int32_t family = 0;
    int64_t num_layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, ffn = 0, vocab = 0, max_positions = 0;
    int32_t activation = 0;
    double norm_eps = 0;
    bool attention_bias = false, attention_output_bias = false, mlp_bias = false, tie_word_embeddings = false;

    int32_t rope_type = CDAS_ROPE_NONE;
    int64_t rope_original_max_positions = 0;
    int64_t rotary_dim = 0;  // rotated dimensions of each head (even; head_dim without partial rotary)
    double rope_theta = 0, rope_factor = 0, rope_low_freq_factor = 0, rope_high_freq_factor = 0;
    double rope_attention_factor = 1;  // derived when the config gave 0
    double rope_beta_fast = 32, rope_beta_slow = 1;
    std::vector<float> rope_short_factor, rope_long_factor;

    int64_t sliding_window = 0;
    std::vector<uint8_t> layer_sliding;  // [num_layers]
    double attention_scale = 0;          // 1 / sqrt(query_pre_attn_scalar or head_dim)
    double attn_logit_softcap = 0, final_logit_softcap = 0;
    double embedding_multiplier = 1;

    int32_t dtype = CDAS_DTYPE_F32, device_type = CDAS_DEVICE_CPU, device_index = 0, num_threads = 0;
    // Where the blocks run (layer split): the devices in block order (one without a split; the
    // first is device_type/device_index), each block's entry in them, empty when still to be
    // chosen at create (split_auto or even: model/placement.h).
    struct device_entry {
        int32_t type = CDAS_DEVICE_CPU, index = 0;
    };
    std::vector<device_entry> devices;
    std::vector<int32_t> layer_device;
    bool split_auto = false;

    const family_info* info = nullptr;  // the family's table entry (family.h)

    const family_info& traits() const { return *info; }
    bool sliding(int64_t layer) const { return sliding_window > 0 && layer_sliding[size_t(layer)] != 0; }
};

// "cpu:1", "cuda:0": how messages and the CLI name a device of the list.
std::string device_name(const model_spec::device_entry& d);

const char* family_name(int32_t family);

// Throws cdas::error (INVALID_ARGUMENT) naming the config field.
model_spec spec_from_config(const cdas_model_config& config);

struct weight_spec {
    std::string name;
    std::vector<int64_t> shape;
    bool optional;  // a tied lm_head.weight: accepted, ignored
    role binds;     // where the decoder puts it
    int64_t layer;  // -1 for model-level tensors
};

// The tensors a transformers checkpoint of this config holds, in checkpoint order: the family
// table's rules (family.h) evaluated for this config.
std::vector<weight_spec> expected_weights(const model_spec& spec);

std::string shape_string(const int64_t* shape, int64_t ndim);
std::string shape_string(const std::vector<int64_t>& shape);
// As an ostream prints it (no trailing zeros), for messages.
std::string number_string(double value);

}  // namespace cdas::model
