// The one table of model families. Each entry says, for one transformers architecture, which
// tensors its checkpoints hold (names, shapes in terms of the config, when each is present and
// which role it plays in the generic decoder) and which variant of each building block its
// forward pass uses. Config validation (spec.cpp), the checkpoint check and weight binding
// (decoder.cpp) and the Java side (through cdas_model_expected_weights) all read this table, so a
// family whose blocks combine existing variants is one entry here (plus its cdas_model_family
// value in cdas.h and its config.json reading in Java's ModelConfig). No torch here.
#pragma once

#include <cstdint>
#include <vector>

namespace cdas::model {

// A dimension of a tensor shape, in terms of the config.
enum class dim : uint8_t {
    hidden,     // d
    vocab,      // V
    ffn,        // intermediate_size
    q,          // num_heads x head_dim
    kv,         // num_kv_heads x head_dim
    qkv,        // q + 2 kv (fused q/k/v)
    hidden3,    // 3 d (GPT-2's c_attn)
    ffn2,       // 2 ffn (fused gate/up)
    positions,  // max_positions (learned position embeddings)
};

// When a tensor is part of the checkpoint.
enum class presence : uint8_t {
    always,
    attention_bias,         // config.attention_bias
    attention_output_bias,  // config.attention_output_bias
    mlp_bias,               // config.mlp_bias
    untied_head,            // required unless config.tie_word_embeddings (then accepted and ignored)
};

// The role a tensor plays in the generic decoder (decoder.h's fields). Linear weights are
// [out, in] unless the family stores them transposed.
enum class role : uint8_t {
    // model-level
    embed, positions, final_norm_w, final_norm_b, head,
    // per layer
    attn_norm_w, attn_norm_b, post_attn_norm_w, ffn_norm_w, ffn_norm_b, post_ffn_norm_w,
    q_w, q_b, k_w, k_b, v_w, v_b, qkv_w, qkv_b, o_w, o_b,
    gate_w, gate_b, up_w, up_b, gate_up_w, gate_up_b, down_w, down_b,
};

struct tensor_rule {
    const char* name;        // model-level: the full name; per layer: after "<layer_prefix><i>."
    std::vector<dim> shape;  // as stored in the checkpoint
    presence when;
    role binds;
};

enum class norm_kind : uint8_t {
    rms,              // LlamaRMSNorm: normalise in fp32, round, times w
    rms_unit_offset,  // Gemma2RMSNorm: times (1 + w) in fp32, then round
    layer,            // LayerNorm with bias
};

// A config flag the family fixes (transformers hard-codes it) or leaves to config.json.
enum class flag_rule : uint8_t { free, must_be_0, must_be_1 };

struct family_info {
    int32_t id;            // cdas_model_family
    const char* name;      // transformers' model_type
    const char* display;   // for messages
    const char* optional_prefix;  // hub files may omit it ("transformer." for GPT-2); nullptr = none

    std::vector<tensor_rule> model_first;  // before the layers
    const char* layer_prefix;              // e.g. "model.layers."
    std::vector<tensor_rule> layer;        // per layer, in checkpoint order
    std::vector<tensor_rule> model_last;   // after the layers (lm_head.weight comes last for all)

    // the forward pass
    norm_kind norm;
    bool learned_positions;   // absolute position embeddings added to the token embeddings; no RoPE
    bool gated_mlp;           // act(gate) * up, else act(up)
    bool sandwich_norms;      // norms after attention and after the MLP too (Gemma-2)
    bool conv1d_weights;      // 2-D layer weights stored [in, out] (GPT-2's Conv1D)
    bool full_heads_only;     // num_kv_heads == num_heads and num_heads x head_dim == hidden_size
    bool sliding_allowed;     // config.sliding_window may be set
    bool alternating_sliding; // default layer_sliding: even layers (else every layer)
    bool scaled_embedding;    // default embedding_multiplier sqrt(hidden_size) (else 1)

    flag_rule attention_bias, attention_output_bias, mlp_bias;
    const char* bias_reason;  // why a fixed flag is fixed, for messages
};

// Every family, by cdas_model_family value.
const std::vector<family_info>& families();

// nullptr when `id` is no cdas_model_family.
const family_info* find_family(int32_t id);

}  // namespace cdas::model
