#include "model/spec.h"

#include <cmath>
#include <sstream>

#include "core/error.h"

namespace cdas::model {

namespace {

[[noreturn]] void invalid(const std::string& message) { fail(CDAS_STATUS_INVALID_ARGUMENT, message); }


int64_t positive(int32_t value, const char* field) {
    if (value <= 0) invalid(std::string("config.") + field + " must be > 0, got " + std::to_string(value));
    return value;
}

double finite_non_negative(double value, const char* field) {
    if (!std::isfinite(value) || value < 0)
        invalid(std::string("config.") + field + " must be finite and >= 0, got " + number_string(value));
    return value;
}

double finite_positive(double value, const char* field) {
    if (!std::isfinite(value) || value <= 0)
        invalid(std::string("config.") + field + " must be finite and > 0, got " + number_string(value));
    return value;
}

bool flag(int32_t value, const char* field) {
    if (value != 0 && value != 1) invalid(std::string("config.") + field + " must be 0 or 1, got " + std::to_string(value));
    return value == 1;
}

std::vector<float> factors(const float* data, int32_t count, const char* field) {
    if (!data) invalid(std::string("config.") + field + " must not be NULL for longrope");
    std::vector<float> v(data, data + count);
    for (int32_t i = 0; i < count; ++i)
        if (!std::isfinite(v[size_t(i)]) || v[size_t(i)] <= 0)
            invalid(std::string("config.") + field + "[" + std::to_string(i) + "] must be finite and > 0, got " +
                    number_string(v[size_t(i)]));
    return v;
}

// The layer split's device lists and block map (cdas.h: split_*).
void split_from_config(const cdas_model_config& c, model_spec& s) {
    if (c.split_count < 0) invalid("config.split_count must be >= 0, got " + std::to_string(c.split_count));
    if (c.split_auto != 0 && c.split_auto != 1) invalid("config.split_auto must be 0 or 1, got " + std::to_string(c.split_auto));
    if (c.split_count == 0) {
        if (c.split_device_types || c.split_device_indices || c.split_layer_device || c.split_auto)
            invalid("config.split_count is 0 but split_device_types, split_device_indices, split_layer_device or "
                    "split_auto is set");
        s.devices = {{s.device_type, s.device_index}};
        s.layer_device.assign(size_t(s.num_layers), 0);
        return;
    }
    if (c.split_count > s.num_layers)
        invalid("config.split_count " + std::to_string(c.split_count) + " is more devices than the model's " +
                std::to_string(s.num_layers) + " blocks");
    if (!c.split_device_types || !c.split_device_indices)
        invalid("config.split_device_types and split_device_indices must not be NULL when split_count > 0");
    for (int32_t k = 0; k < c.split_count; ++k) {
        const model_spec::device_entry d{c.split_device_types[k], c.split_device_indices[k]};
        const std::string where = "config.split_device_types[" + std::to_string(k) + "]";
        if (d.type != CDAS_DEVICE_CPU && d.type != CDAS_DEVICE_CUDA)
            invalid(where + " must be CDAS_DEVICE_CPU (0) or CDAS_DEVICE_CUDA (1), got " + std::to_string(d.type));
        if (d.index < 0)
            invalid("config.split_device_indices[" + std::to_string(k) + "] must be >= 0, got " + std::to_string(d.index));
        for (const model_spec::device_entry& e : s.devices)
            if (e.type == d.type && e.index == d.index) invalid("config.split_device_*: device " + device_name(d) + " is listed twice");
        s.devices.push_back(d);
    }
    s.device_type = s.devices[0].type;
    s.device_index = s.devices[0].index;
    s.split_auto = c.split_auto == 1;
    if (!c.split_layer_device) return;  // chosen at create
    if (s.split_auto) invalid("config.split_auto must be 0 when split_layer_device is given");
    int32_t previous = 0;
    for (int64_t i = 0; i < s.num_layers; ++i) {
        const int32_t k = c.split_layer_device[i];
        if (k < 0 || k >= c.split_count || (i == 0 && k != 0) || k < previous || k > previous + 1)
            invalid("config.split_layer_device[" + std::to_string(i) + "] is " + std::to_string(k) +
                    ": blocks must go over the devices in list order, from entry 0, in contiguous ranges");
        previous = k;
        s.layer_device.push_back(k);
    }
    if (previous != c.split_count - 1)
        invalid("config.split_layer_device leaves device " + device_name(s.devices.back()) +
                " (the last of split_count " + std::to_string(c.split_count) + ") without blocks");
}

void rope_from_config(const cdas_model_config& c, model_spec& s) {
    s.rope_type = c.rope_type;
    if (s.traits().learned_positions) {
        if (c.rope_type != CDAS_ROPE_NONE)
            invalid("config.rope_type must be CDAS_ROPE_NONE (0) for " + std::string(s.traits().display) +
                    " (learned positions), got " + std::to_string(c.rope_type));
        return;
    }
    if (c.rope_type < CDAS_ROPE_DEFAULT || c.rope_type > CDAS_ROPE_YARN)
        invalid("config.rope_type must be one of CDAS_ROPE_DEFAULT (1) .. CDAS_ROPE_YARN (5) for " +
                std::string(family_name(s.family)) + ", got " + std::to_string(c.rope_type));
    s.rope_theta = finite_positive(c.rope_theta, "rope_theta");
    double partial = c.rope_partial_factor == 0 ? 1.0 : c.rope_partial_factor;
    if (!(partial > 0 && partial <= 1))
        invalid("config.rope_partial_factor must be in (0, 1], got " + number_string(c.rope_partial_factor));
    // transformers: dim = int(head_dim * partial_rotary_factor)
    s.rotary_dim = int64_t(double(s.head_dim) * partial);
    if (s.rotary_dim < 2 || s.rotary_dim % 2 != 0)
        invalid("config.rope_partial_factor " + number_string(partial) + " of head_dim " + std::to_string(s.head_dim) +
                " gives " + std::to_string(s.rotary_dim) + " rotated dimensions; it must be even and >= 2");
    s.rope_attention_factor = 1.0;
    switch (c.rope_type) {
        case CDAS_ROPE_DEFAULT: break;
        case CDAS_ROPE_LINEAR: s.rope_factor = finite_positive(c.rope_factor, "rope_factor"); break;
        case CDAS_ROPE_LLAMA3:
            s.rope_factor = finite_positive(c.rope_factor, "rope_factor");
            s.rope_low_freq_factor = finite_positive(c.rope_low_freq_factor, "rope_low_freq_factor");
            s.rope_high_freq_factor = finite_positive(c.rope_high_freq_factor, "rope_high_freq_factor");
            if (!(s.rope_high_freq_factor > s.rope_low_freq_factor))
                invalid("config.rope_high_freq_factor (" + number_string(s.rope_high_freq_factor) +
                        ") must exceed rope_low_freq_factor (" + number_string(s.rope_low_freq_factor) + ")");
            s.rope_original_max_positions = positive(c.rope_original_max_positions, "rope_original_max_positions");
            break;
        case CDAS_ROPE_LONGROPE: {
            s.rope_original_max_positions = positive(c.rope_original_max_positions, "rope_original_max_positions");
            if (c.rope_factor_count != s.rotary_dim / 2)
                invalid("config.rope_factor_count must be rotated dimensions / 2 = " + std::to_string(s.rotary_dim / 2) +
                        ", got " + std::to_string(c.rope_factor_count));
            s.rope_short_factor = factors(c.rope_short_factor, c.rope_factor_count, "rope_short_factor");
            s.rope_long_factor = factors(c.rope_long_factor, c.rope_factor_count, "rope_long_factor");
            // Phi-3 configs leave the factor out: transformers takes max / original positions.
            s.rope_factor = c.rope_factor == 0 ? double(s.max_positions) / double(s.rope_original_max_positions)
                                               : finite_positive(c.rope_factor, "rope_factor");
            s.rope_attention_factor =
                s.rope_factor <= 1.0 ? 1.0
                                     : std::sqrt(1 + std::log(s.rope_factor) / std::log(double(s.rope_original_max_positions)));
            break;
        }
        case CDAS_ROPE_YARN:
            s.rope_factor = finite_positive(c.rope_factor, "rope_factor");
            s.rope_original_max_positions = positive(c.rope_original_max_positions, "rope_original_max_positions");
            s.rope_beta_fast = c.rope_beta_fast == 0 ? 32.0 : finite_positive(c.rope_beta_fast, "rope_beta_fast");
            s.rope_beta_slow = c.rope_beta_slow == 0 ? 1.0 : finite_positive(c.rope_beta_slow, "rope_beta_slow");
            s.rope_attention_factor = s.rope_factor <= 1.0 ? 1.0 : 0.1 * std::log(s.rope_factor) + 1.0;
            break;
    }
    if (c.rope_attention_factor != 0) {
        if (c.rope_type != CDAS_ROPE_LONGROPE && c.rope_type != CDAS_ROPE_YARN)
            invalid("config.rope_attention_factor applies to longrope and yarn only; leave it 0");
        s.rope_attention_factor = finite_positive(c.rope_attention_factor, "rope_attention_factor");
    }
}

}  // namespace

const char* family_name(int32_t family) {
    const family_info* f = find_family(family);
    return f ? f->name : "unknown";
}

namespace {

// A bias flag against the family's rule (family.h).
bool bias_flag(const family_info& f, flag_rule rule, int32_t value, const char* field) {
    const bool on = flag(value, field);
    if (rule == flag_rule::must_be_0 && on)
        invalid(std::string("config.") + field + " must be 0 for " + f.display + " (" + f.bias_reason + ")");
    if (rule == flag_rule::must_be_1 && !on)
        invalid(std::string(f.bias_reason) +
                ": set config.attention_bias, attention_output_bias and mlp_bias to 1 (config." + field + " is 0)");
    return on;
}

int64_t size_of(const model_spec& s, dim d) {
    switch (d) {
        case dim::hidden: return s.hidden;
        case dim::vocab: return s.vocab;
        case dim::ffn: return s.ffn;
        case dim::q: return s.heads * s.head_dim;
        case dim::kv: return s.kv_heads * s.head_dim;
        case dim::qkv: return (s.heads + 2 * s.kv_heads) * s.head_dim;
        case dim::hidden3: return 3 * s.hidden;
        case dim::ffn2: return 2 * s.ffn;
        case dim::positions: return s.max_positions;
    }
    return 0;
}

}  // namespace

model_spec spec_from_config(const cdas_model_config& c) {
    model_spec s;
    s.info = find_family(c.family);
    if (!s.info)
        invalid("config.family must be a cdas_model_family (0.." + std::to_string(families().size() - 1) + "), got " +
                std::to_string(c.family));
    const family_info& f = *s.info;
    s.family = c.family;
    s.num_layers = positive(c.num_layers, "num_layers");
    s.hidden = positive(c.hidden_size, "hidden_size");
    s.heads = positive(c.num_heads, "num_heads");
    s.kv_heads = positive(c.num_kv_heads, "num_kv_heads");
    s.head_dim = positive(c.head_dim, "head_dim");
    s.ffn = positive(c.intermediate_size, "intermediate_size");
    s.vocab = positive(c.vocab_size, "vocab_size");
    s.max_positions = positive(c.max_positions, "max_positions");
    if (s.heads % s.kv_heads != 0)
        invalid("config.num_kv_heads (" + std::to_string(s.kv_heads) + ") must divide num_heads (" +
                std::to_string(s.heads) + ")");
    if (f.full_heads_only && (s.kv_heads != s.heads || s.heads * s.head_dim != s.hidden))
        invalid(std::string(f.display) + " needs num_kv_heads == num_heads and num_heads x head_dim == hidden_size, got " +
                std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) + " heads of " + std::to_string(s.head_dim) +
                " for hidden_size " + std::to_string(s.hidden));
    if (c.activation < CDAS_ACTIVATION_SILU || c.activation > CDAS_ACTIVATION_RELU)
        invalid("config.activation must be a cdas_activation (0..4), got " + std::to_string(c.activation));
    s.activation = c.activation;
    s.norm_eps = finite_positive(c.norm_eps, "norm_eps");
    s.attention_bias = bias_flag(f, f.attention_bias, c.attention_bias, "attention_bias");
    s.attention_output_bias = bias_flag(f, f.attention_output_bias, c.attention_output_bias, "attention_output_bias");
    s.mlp_bias = bias_flag(f, f.mlp_bias, c.mlp_bias, "mlp_bias");
    s.tie_word_embeddings = flag(c.tie_word_embeddings, "tie_word_embeddings");
    rope_from_config(c, s);

    if (c.sliding_window < 0) invalid("config.sliding_window must be >= 0, got " + std::to_string(c.sliding_window));
    s.sliding_window = c.sliding_window;
    s.layer_sliding.assign(size_t(s.num_layers), 0);
    for (int64_t i = 0; i < s.num_layers; ++i) {
        if (c.layer_sliding) {
            uint8_t v = c.layer_sliding[i];
            if (v > 1) invalid("config.layer_sliding[" + std::to_string(i) + "] must be 0 or 1, got " + std::to_string(v));
            if (v && s.sliding_window == 0)
                invalid("config.layer_sliding[" + std::to_string(i) + "] is 1 but config.sliding_window is 0");
            s.layer_sliding[size_t(i)] = v;
        } else if (s.sliding_window > 0) {
            // transformers' Gemma2Config default: layer_types alternate, sliding first
            s.layer_sliding[size_t(i)] = f.alternating_sliding ? uint8_t(i % 2 == 0) : 1;
        }
    }
    if (!f.sliding_allowed && s.sliding_window > 0)
        invalid("config.sliding_window must be 0 for " + std::string(f.display));

    double scalar = finite_non_negative(c.query_pre_attn_scalar, "query_pre_attn_scalar");
    s.attention_scale = 1.0 / std::sqrt(scalar == 0 ? double(s.head_dim) : scalar);
    s.attn_logit_softcap = finite_non_negative(c.attn_logit_softcap, "attn_logit_softcap");
    s.final_logit_softcap = finite_non_negative(c.final_logit_softcap, "final_logit_softcap");
    double multiplier = finite_non_negative(c.embedding_multiplier, "embedding_multiplier");
    s.embedding_multiplier = multiplier != 0 ? multiplier : f.scaled_embedding ? std::sqrt(double(s.hidden)) : 1.0;

    if (c.dtype != CDAS_DTYPE_F32 && c.dtype != CDAS_DTYPE_BF16 && c.dtype != CDAS_DTYPE_F16)
        invalid("config.dtype must be CDAS_DTYPE_F32 (0), CDAS_DTYPE_BF16 (1) or CDAS_DTYPE_F16 (2), got " +
                std::to_string(c.dtype));
    s.dtype = c.dtype;
    if (c.device_type != CDAS_DEVICE_CPU && c.device_type != CDAS_DEVICE_CUDA)
        invalid("config.device_type must be CDAS_DEVICE_CPU (0) or CDAS_DEVICE_CUDA (1), got " +
                std::to_string(c.device_type));
    s.device_type = c.device_type;
    if (c.device_index < 0 || (c.device_type == CDAS_DEVICE_CPU && c.device_index != 0))
        invalid("config.device_index must be 0 for CPU and >= 0 for CUDA, got " + std::to_string(c.device_index));
    s.device_index = c.device_index;
    split_from_config(c, s);
    if (c.num_threads < 0) invalid("config.num_threads must be >= 0, got " + std::to_string(c.num_threads));
    s.num_threads = c.num_threads;
    return s;
}

std::vector<weight_spec> expected_weights(const model_spec& s) {
    const family_info& f = s.traits();
    std::vector<weight_spec> w;
    auto add = [&](const tensor_rule& r, std::string name, int64_t layer) {
        bool optional = false;
        switch (r.when) {
            case presence::always: break;
            case presence::attention_bias: if (!s.attention_bias) return; break;
            case presence::attention_output_bias: if (!s.attention_output_bias) return; break;
            case presence::mlp_bias: if (!s.mlp_bias) return; break;
            case presence::untied_head: optional = s.tie_word_embeddings; break;
        }
        std::vector<int64_t> shape;
        for (dim d : r.shape) shape.push_back(size_of(s, d));
        w.push_back({std::move(name), std::move(shape), optional, r.binds, layer});
    };
    for (const tensor_rule& r : f.model_first) add(r, r.name, -1);
    for (int64_t i = 0; i < s.num_layers; ++i) {
        const std::string p = f.layer_prefix + std::to_string(i) + ".";
        for (const tensor_rule& r : f.layer) add(r, p + r.name, i);
    }
    for (const tensor_rule& r : f.model_last) add(r, r.name, -1);
    return w;
}

std::string device_name(const model_spec::device_entry& d) {
    return std::string(d.type == CDAS_DEVICE_CUDA ? "cuda:" : "cpu:") + std::to_string(d.index);
}

std::string shape_string(const int64_t* shape, int64_t ndim) {
    std::string out = "[";
    for (int64_t i = 0; i < ndim; ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
    return out + "]";
}

std::string shape_string(const std::vector<int64_t>& shape) { return shape_string(shape.data(), int64_t(shape.size())); }

std::string number_string(double value) {
    std::ostringstream s;
    s << value;
    return s.str();
}

}  // namespace cdas::model
