#include "model/family.h"

#include "cdas.h"

namespace cdas::model {

namespace {

using D = dim;
using P = presence;
using R = role;

// The "model." decoders (Llama, Qwen2, Gemma-2, Phi-3) share these pieces.
std::vector<tensor_rule> separate_attention() {
    return {
        {"self_attn.q_proj.weight", {D::q, D::hidden}, P::always, R::q_w},
        {"self_attn.k_proj.weight", {D::kv, D::hidden}, P::always, R::k_w},
        {"self_attn.v_proj.weight", {D::kv, D::hidden}, P::always, R::v_w},
        {"self_attn.q_proj.bias", {D::q}, P::attention_bias, R::q_b},
        {"self_attn.k_proj.bias", {D::kv}, P::attention_bias, R::k_b},
        {"self_attn.v_proj.bias", {D::kv}, P::attention_bias, R::v_b},
        {"self_attn.o_proj.weight", {D::hidden, D::q}, P::always, R::o_w},
        {"self_attn.o_proj.bias", {D::hidden}, P::attention_output_bias, R::o_b},
    };
}

std::vector<tensor_rule> gated_mlp() {
    return {
        {"mlp.gate_proj.weight", {D::ffn, D::hidden}, P::always, R::gate_w},
        {"mlp.up_proj.weight", {D::ffn, D::hidden}, P::always, R::up_w},
        {"mlp.down_proj.weight", {D::hidden, D::ffn}, P::always, R::down_w},
        {"mlp.gate_proj.bias", {D::ffn}, P::mlp_bias, R::gate_b},
        {"mlp.up_proj.bias", {D::ffn}, P::mlp_bias, R::up_b},
        {"mlp.down_proj.bias", {D::hidden}, P::mlp_bias, R::down_b},
    };
}

std::vector<tensor_rule> concat(std::initializer_list<std::vector<tensor_rule>> parts) {
    std::vector<tensor_rule> out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

const tensor_rule kEmbedTokens{"model.embed_tokens.weight", {D::vocab, D::hidden}, P::always, R::embed};
const tensor_rule kFinalNorm{"model.norm.weight", {D::hidden}, P::always, R::final_norm_w};
const tensor_rule kHead{"lm_head.weight", {D::vocab, D::hidden}, P::untied_head, R::head};

// A Llama-style decoder: RMSNorm before attention and MLP, separate q/k/v, SwiGLU, RoPE.
family_info llama_like(int32_t id, const char* name, const char* display) {
    family_info f{};
    f.id = id;
    f.name = name;
    f.display = display;
    f.model_first = {kEmbedTokens};
    f.layer_prefix = "model.layers.";
    f.layer = concat({{{"input_layernorm.weight", {D::hidden}, P::always, R::attn_norm_w},
                       {"post_attention_layernorm.weight", {D::hidden}, P::always, R::ffn_norm_w}},
                      separate_attention(), gated_mlp()});
    f.model_last = {kFinalNorm, kHead};
    f.norm = norm_kind::rms;
    f.gated_mlp = true;
    f.sliding_allowed = true;
    f.attention_bias = f.attention_output_bias = f.mlp_bias = flag_rule::free;
    return f;
}

std::vector<family_info> make_table() {
    std::vector<family_info> t;

    t.push_back(llama_like(CDAS_MODEL_FAMILY_LLAMA, "llama", "Llama"));

    {  // Gemma-2: (1 + w) RMSNorm, norms before and after attention and MLP, scaled embeddings
        family_info f = llama_like(CDAS_MODEL_FAMILY_GEMMA2, "gemma2", "Gemma-2");
        f.layer = concat({{{"input_layernorm.weight", {D::hidden}, P::always, R::attn_norm_w},
                           {"post_attention_layernorm.weight", {D::hidden}, P::always, R::post_attn_norm_w},
                           {"pre_feedforward_layernorm.weight", {D::hidden}, P::always, R::ffn_norm_w},
                           {"post_feedforward_layernorm.weight", {D::hidden}, P::always, R::post_ffn_norm_w}},
                          separate_attention(), gated_mlp()});
        f.norm = norm_kind::rms_unit_offset;
        f.sandwich_norms = true;
        f.alternating_sliding = true;
        f.scaled_embedding = true;
        t.push_back(std::move(f));
    }

    t.push_back(llama_like(CDAS_MODEL_FAMILY_QWEN2, "qwen2", "Qwen2"));

    {  // Phi-3: fused qkv_proj and gate_up_proj; transformers' Phi3Attention and Phi3MLP are bias=False
        family_info f = llama_like(CDAS_MODEL_FAMILY_PHI3, "phi3", "Phi-3");
        f.layer = {
            {"input_layernorm.weight", {D::hidden}, P::always, R::attn_norm_w},
            {"post_attention_layernorm.weight", {D::hidden}, P::always, R::ffn_norm_w},
            {"self_attn.qkv_proj.weight", {D::qkv, D::hidden}, P::always, R::qkv_w},
            {"self_attn.o_proj.weight", {D::hidden, D::q}, P::always, R::o_w},
            {"mlp.gate_up_proj.weight", {D::ffn2, D::hidden}, P::always, R::gate_up_w},
            {"mlp.down_proj.weight", {D::hidden, D::ffn}, P::always, R::down_w},
        };
        f.attention_bias = f.attention_output_bias = f.mlp_bias = flag_rule::must_be_0;
        f.bias_reason = "transformers' Phi-3 has no biases: qkv_proj, o_proj, gate_up_proj and down_proj are bias=False";
        t.push_back(std::move(f));
    }

    {  // GPT-2: learned positions, LayerNorm with bias, Conv1D weights [in, out], every projection biased
        family_info f{};
        f.id = CDAS_MODEL_FAMILY_GPT2;
        f.name = "gpt2";
        f.display = "GPT-2";
        f.optional_prefix = "transformer.";
        f.model_first = {{"transformer.wte.weight", {D::vocab, D::hidden}, P::always, R::embed},
                         {"transformer.wpe.weight", {D::positions, D::hidden}, P::always, R::positions}};
        f.layer_prefix = "transformer.h.";
        f.layer = {
            {"ln_1.weight", {D::hidden}, P::always, R::attn_norm_w},
            {"ln_1.bias", {D::hidden}, P::always, R::attn_norm_b},
            {"attn.c_attn.weight", {D::hidden, D::hidden3}, P::always, R::qkv_w},
            {"attn.c_attn.bias", {D::hidden3}, P::always, R::qkv_b},
            {"attn.c_proj.weight", {D::hidden, D::hidden}, P::always, R::o_w},
            {"attn.c_proj.bias", {D::hidden}, P::always, R::o_b},
            {"ln_2.weight", {D::hidden}, P::always, R::ffn_norm_w},
            {"ln_2.bias", {D::hidden}, P::always, R::ffn_norm_b},
            {"mlp.c_fc.weight", {D::hidden, D::ffn}, P::always, R::up_w},
            {"mlp.c_fc.bias", {D::ffn}, P::always, R::up_b},
            {"mlp.c_proj.weight", {D::ffn, D::hidden}, P::always, R::down_w},
            {"mlp.c_proj.bias", {D::hidden}, P::always, R::down_b},
        };
        f.model_last = {{"transformer.ln_f.weight", {D::hidden}, P::always, R::final_norm_w},
                        {"transformer.ln_f.bias", {D::hidden}, P::always, R::final_norm_b},
                        kHead};
        f.norm = norm_kind::layer;
        f.learned_positions = true;
        f.conv1d_weights = true;
        f.full_heads_only = true;
        f.attention_bias = f.attention_output_bias = f.mlp_bias = flag_rule::must_be_1;
        f.bias_reason = "GPT-2 layers always carry biases";
        t.push_back(std::move(f));
    }
    return t;
}

}  // namespace

const std::vector<family_info>& families() {
    static const std::vector<family_info> table = make_table();
    return table;
}

const family_info* find_family(int32_t id) {
    for (const family_info& f : families())
        if (f.id == id) return &f;
    return nullptr;
}

}  // namespace cdas::model
