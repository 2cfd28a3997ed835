// One generic Hugging Face decoder on ATen, configured per family by model_spec: the blocks of
// Llama 3.x, Gemma-2, Qwen2, Phi-3 and GPT-2 differ only in their norms, projections (fused or
// not, Conv1D layout), activation, position encoding and Gemma-2's extra norms and soft-caps.
// Formulas follow transformers 5.17's modeling_<family>.py (eager attention), including where
// it rounds to the model dtype, so fp32 runs match to float precision and bf16 runs round alike.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "cdas.h"
#include "model/spec.h"

namespace cdas::model {

// Weights of one block; tensors a family does not have stay undefined. Linear weights are
// [out, in] (GPT-2's Conv1D [in, out] tensors are held as transposed views, not copies).
struct layer_weights {
    at::Tensor attn_norm_w, attn_norm_b;  // input_layernorm / ln_1
    at::Tensor post_attn_norm_w;          // Gemma-2 post_attention_layernorm
    at::Tensor ffn_norm_w, ffn_norm_b;    // post_attention_layernorm (Llama-style) / pre_feedforward / ln_2
    at::Tensor post_ffn_norm_w;           // Gemma-2 post_feedforward_layernorm
    at::Tensor q_w, q_b, k_w, k_b, v_w, v_b;
    at::Tensor qkv_w, qkv_b;              // Phi-3 qkv_proj, GPT-2 c_attn
    at::Tensor o_w, o_b;
    at::Tensor gate_w, gate_b, up_w, up_b; // GPT-2: c_fc is up
    at::Tensor gate_up_w, gate_up_b;      // Phi-3
    at::Tensor down_w, down_b;
};

// Keys and values of every layer, [B, kv_heads, capacity, head_dim], filled slot by slot.
struct kv_cache {
    std::vector<at::Tensor> keys, values;
};

// What every block of one call needs: rotary tables for the query positions and which keys each
// query may attend (causal, real keys, window). A query always sees itself, so a padding row
// never has an all-masked softmax (no NaN to leak through 0-weighted values).
struct stage_inputs {
    at::Tensor cos, sin;         // [B, 1, Tq, rotary_dim], model dtype; undefined without RoPE
    at::Tensor allowed_full;     // [B, 1, Tq, Tk] bool
    at::Tensor allowed_sliding;  // same within the window; undefined without sliding layers
};

// One copy of the inputs per stage of a layer split (one without a split), each on its stage.
struct attention_inputs {
    std::vector<stage_inputs> stage;
    int64_t query_slot0 = 0;  // cache slot of the first query
};

// Which stage of a layer split each tensor the decoder made or moved is on, so that a block, the
// final norm or the head given a tensor of another stage fails (CDAS_STATUS_INTERNAL) instead of
// silently computing with it: on CUDA a missing move would fail inside libtorch, on two CPU
// stages it would otherwise go unnoticed. Tensors made elsewhere (views, the runtime's own) are
// unknown and pass. Weak references: a tag never keeps a tensor's storage alive.
class stage_ledger {
public:
    void tag(const at::Tensor& t, int32_t stage);
    int32_t stage_of(const at::Tensor& t) const;  // -1: unknown

private:
    mutable std::mutex mutex_;
    std::unordered_map<const c10::TensorImpl*,
                       std::pair<c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>, int32_t>>
        tags_;
    size_t prune_at_ = 4096;
};

class decoder {
public:
    // Throws cdas::error naming the tensor on missing, extra or wrong-shaped weights.
    decoder(const model_spec& spec, const cdas_tensor_view* views, int64_t count);

    const model_spec& spec() const { return spec_; }
    // The first stage's (the embedding's) dtype and device.
    at::TensorOptions options() const;
    at::Device device() const;
    bool borrows_host_memory() const { return borrows_; }

    // Layer split: the stage (entry of spec().devices) and device of a block, and of the final
    // norm and head (the last stage). One stage without a split.
    int32_t stage_of(int64_t layer) const { return spec_.layer_device[size_t(layer)]; }
    at::Device device_of(int64_t layer) const { return stage_devices_[size_t(stage_of(layer))]; }
    at::Device head_device() const { return stage_devices_.back(); }
    // A tensor of the first stage (or the host) moved to a block's stage, or to the head's: the
    // transfer every stage boundary uses (a copy, also between two CPU stages; autograd goes
    // back through it). Unchanged when the stages are the same.
    at::Tensor to_stage_of(const at::Tensor& t, int64_t layer) const { return transfer(t, 0, stage_of(layer)); }
    at::Tensor to_head_stage(const at::Tensor& t) const { return transfer(t, 0, int32_t(stage_devices_.size()) - 1); }

    // tokens, positions: [B, T] int64 on the device.
    at::Tensor embed(const at::Tensor& tokens, const at::Tensor& positions) const;
    // positions [B, Tq] int64, key_real [B, Tk] bool (Tk = query_slot0 + Tq), on the device.
    attention_inputs prepare(const at::Tensor& positions, const at::Tensor& key_real, int64_t query_slot0) const;
    // h [B, Tq, d]: the output of the block before (the embedding's for block 0), moved here
    // when that one is on another stage; with a cache, this call's keys and values are stored at
    // the query slots.
    at::Tensor block(int64_t layer, const at::Tensor& h, const attention_inputs& in, kv_cache* cache) const;
    at::Tensor final_norm(const at::Tensor& h) const;
    // Logits in the model dtype, after the final soft-cap.
    at::Tensor logits(const at::Tensor& normed) const;
    // The same written into fp32 host memory [.., V]: straight from the GEMM on a CPU fp32 model
    // (the largest output of a forward pass is never staged and copied).
    void logits_into(const at::Tensor& normed, at::Tensor& out) const;
    const at::Tensor& head() const;
    kv_cache new_cache(int64_t batch, int64_t capacity) const;

    // The rotary inverse frequencies (fp32, [rotary_dim / 2]) for a call whose largest position
    // is max_position (longrope switches to its long factors past the original length).
    at::Tensor inverse_frequencies(int64_t max_position) const;

private:
    at::Tensor load(const cdas_tensor_view& view, int32_t stage);
    at::Tensor transfer(const at::Tensor& t, int32_t from, int32_t to) const;
    // Fails (INTERNAL) when t is known to be on another stage or is on another device.
    void expect_stage(const at::Tensor& t, int32_t stage, const char* what, int64_t layer) const;
    int32_t last_stage() const { return int32_t(stage_devices_.size()) - 1; }
    at::Tensor& model_slot(role r);
    at::Tensor norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const;
    at::Tensor attention(int64_t layer, const at::Tensor& x, const attention_inputs& in, kv_cache* cache) const;
    at::Tensor mlp(const layer_weights& w, const at::Tensor& x) const;
    at::Tensor activation(const at::Tensor& x) const;

    model_spec spec_;
    std::vector<at::Device> stage_devices_;
    mutable stage_ledger ledger_;  // used only with more than one stage
    bool borrows_ = false;
    at::Tensor embed_, positions_, final_norm_w_, final_norm_b_, head_;
    std::vector<layer_weights> layers_;
    at::Tensor inv_freq_short_, inv_freq_long_;  // long: longrope only
};

}  // namespace cdas::model
