#include "model_reference.h"

#include <algorithm>
#include <cmath>

#include "model/spec.h"

namespace cdas_test {

namespace {

constexpr double kPi = 3.14159265358979323846;

using vec = std::vector<double>;

const std::vector<float>& weight(const tiny_model& m, const std::string& name) { return m.weights.at(name); }

bool has(const tiny_model& m, const std::string& name) { return m.weights.count(name) != 0; }

// y = W x (+ b) for W [out x in] row-major; conv1d: W is [in x out] (GPT-2).
vec linear(const tiny_model& m, const std::string& w_name, const std::string& b_name, const vec& x, bool conv1d = false) {
    const std::vector<int64_t>& s = m.shapes.at(w_name);
    const std::vector<float>& w = weight(m, w_name);
    const int64_t out = conv1d ? s[1] : s[0], in = conv1d ? s[0] : s[1];
    vec y(size_t(out), 0.0);
    for (int64_t o = 0; o < out; ++o) {
        double acc = 0;
        for (int64_t i = 0; i < in; ++i) acc += double(conv1d ? w[size_t(i * out + o)] : w[size_t(o * in + i)]) * x[size_t(i)];
        y[size_t(o)] = acc + (has(m, b_name) ? double(weight(m, b_name)[size_t(o)]) : 0.0);
    }
    return y;
}

vec norm(const tiny_model& m, const std::string& prefix, const vec& x) {
    const cdas_model_config& c = m.config;
    const std::vector<float>& w = weight(m, prefix + ".weight");
    vec y(x.size());
    const double n = double(x.size());
    if (c.family == CDAS_MODEL_FAMILY_GPT2) {
        double mean = 0, var = 0;
        for (double v : x) mean += v / n;
        for (double v : x) var += (v - mean) * (v - mean) / n;
        const std::vector<float>& b = weight(m, prefix + ".bias");
        for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + c.norm_eps) * w[i] + b[i];
        return y;
    }
    double ms = 0;
    for (double v : x) ms += v * v / n;
    const double offset = c.family == CDAS_MODEL_FAMILY_GEMMA2 ? 1.0 : 0.0;
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] / std::sqrt(ms + c.norm_eps) * (offset + w[i]);
    return y;
}

double act(int32_t kind, double x) {
    switch (kind) {
        case CDAS_ACTIVATION_SILU: return x / (1 + std::exp(-x));
        case CDAS_ACTIVATION_GELU_TANH:
        case CDAS_ACTIVATION_GELU_NEW:
            return 0.5 * x * (1 + std::tanh(std::sqrt(2 / kPi) * (x + 0.044715 * x * x * x)));
        case CDAS_ACTIVATION_GELU: return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
        default: return x > 0 ? x : 0;
    }
}

struct rope_table {
    int64_t rotary = 0;
    vec inv_freq;
    double scale = 1;
};

// The RoPE variants of transformers' modeling_rope_utils, in double.
rope_table rope_for(const cdas_model_config& c, int64_t max_position) {
    rope_table r;
    const double partial = c.rope_partial_factor == 0 ? 1.0 : c.rope_partial_factor;
    r.rotary = int64_t(double(c.head_dim) * partial);
    const int64_t half = r.rotary / 2;
    for (int64_t i = 0; i < half; ++i) r.inv_freq.push_back(1.0 / std::pow(c.rope_theta, double(2 * i) / double(r.rotary)));
    const double orig = c.rope_original_max_positions;
    switch (c.rope_type) {
        case CDAS_ROPE_LINEAR:
            for (double& f : r.inv_freq) f /= c.rope_factor;
            break;
        case CDAS_ROPE_LLAMA3: {
            const double low_wl = orig / c.rope_low_freq_factor, high_wl = orig / c.rope_high_freq_factor;
            for (double& f : r.inv_freq) {
                const double wavelen = 2 * kPi / f;
                if (wavelen < high_wl) continue;
                if (wavelen > low_wl) {
                    f /= c.rope_factor;
                    continue;
                }
                const double smooth = (orig / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
                f = (1 - smooth) * f / c.rope_factor + smooth * f;
            }
            break;
        }
        case CDAS_ROPE_LONGROPE: {
            const bool use_long = max_position + 1 > c.rope_original_max_positions;
            for (int64_t i = 0; i < half; ++i) r.inv_freq[size_t(i)] /= (use_long ? c.rope_long_factor : c.rope_short_factor)[i];
            const double factor = c.rope_factor > 0 ? c.rope_factor : double(c.max_positions) / orig;
            r.scale = factor <= 1 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(orig));
            break;
        }
        case CDAS_ROPE_YARN: {
            const double beta_fast = c.rope_beta_fast > 0 ? c.rope_beta_fast : 32, beta_slow = c.rope_beta_slow > 0 ? c.rope_beta_slow : 1;
            auto dim_for = [&](double rotations) {
                return double(r.rotary) * std::log(orig / (rotations * 2 * kPi)) / (2 * std::log(c.rope_theta));
            };
            double low = std::max(std::floor(dim_for(beta_fast)), 0.0);
            double high = std::min(std::ceil(dim_for(beta_slow)), double(r.rotary - 1));
            if (low == high) high += 0.001;
            for (int64_t i = 0; i < half; ++i) {
                const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
                const double extrapolation = 1 - ramp;
                const double f = r.inv_freq[size_t(i)];
                r.inv_freq[size_t(i)] = f / c.rope_factor * (1 - extrapolation) + f * extrapolation;
            }
            r.scale = c.rope_factor <= 1 ? 1.0 : 0.1 * std::log(c.rope_factor) + 1.0;
            break;
        }
        default: break;
    }
    return r;
}

// Rotates the first `rotary` dimensions of one head vector (rotate_half convention).
void rotate(vec& x, int64_t offset, const rope_table& r, int64_t position) {
    const int64_t half = r.rotary / 2;
    for (int64_t i = 0; i < half; ++i) {
        const double angle = double(position) * r.inv_freq[size_t(i)];
        const double c = std::cos(angle) * r.scale, s = std::sin(angle) * r.scale;
        const double a = x[size_t(offset + i)], b = x[size_t(offset + i + half)];
        x[size_t(offset + i)] = a * c - b * s;
        x[size_t(offset + i + half)] = b * c + a * s;
    }
}

}  // namespace

const std::vector<cdas_tensor_view>& tiny_model::make_views() {
    views.clear();
    for (auto& [name, w] : weights) {
        cdas_tensor_view v{};
        v.name = name.c_str();
        v.dtype = CDAS_DTYPE_F32;
        const std::vector<int64_t>& s = shapes.at(name);
        v.ndim = int32_t(s.size());
        for (size_t i = 0; i < s.size(); ++i) v.shape[i] = s[i];
        v.data = w.data();
        views.push_back(v);
    }
    return views;
}

void randomize_weights(tiny_model& m, std::mt19937_64& rng) {
    m.weights.clear();
    m.shapes.clear();
    cdas::model::model_spec spec = cdas::model::spec_from_config(m.config);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (const auto& w : cdas::model::expected_weights(spec)) {
        if (w.optional) continue;
        int64_t n = 1;
        for (int64_t s : w.shape) n *= s;
        std::vector<float> data(static_cast<size_t>(n));
        const bool is_norm = w.name.find("norm") != std::string::npos || w.name.find("ln_") != std::string::npos;
        const bool conv1d = m.config.family == CDAS_MODEL_FAMILY_GPT2 && w.shape.size() == 2 && w.name.find(".h.") != std::string::npos;
        const double fan_in = w.shape.size() == 2 ? double(conv1d ? w.shape[0] : w.shape[1]) : 1.0;
        for (float& x : data) {
            if (w.shape.size() == 1) {
                const bool weight_of_norm = is_norm && w.name.find(".weight") != std::string::npos;
                const double base = weight_of_norm && m.config.family != CDAS_MODEL_FAMILY_GEMMA2 ? 1.0 : 0.0;
                x = float(base + 0.2 * normal(rng));
            } else {
                x = float(normal(rng) * 1.5 / std::sqrt(fan_in));
            }
        }
        m.shapes[w.name] = w.shape;
        m.weights[w.name] = std::move(data);
    }
}

std::vector<tiny_model> tiny_models(std::mt19937_64& rng) {
    auto base = [](const char* label, int32_t family) {
        tiny_model m;
        m.label = label;
        cdas_model_config_default(&m.config);
        cdas_model_config& c = m.config;
        c.family = family;
        c.num_layers = 3;
        c.hidden_size = 32;
        c.num_heads = 4;
        c.num_kv_heads = 2;
        c.head_dim = 8;
        c.intermediate_size = 40;
        c.vocab_size = 53;
        c.max_positions = 64;
        c.activation = CDAS_ACTIVATION_SILU;
        c.norm_eps = 1e-5;
        c.rope_type = CDAS_ROPE_DEFAULT;
        c.rope_theta = 10000;
        return m;
    };
    std::vector<tiny_model> out;
    {
        tiny_model m = base("llama-llama3", CDAS_MODEL_FAMILY_LLAMA);
        // original 64 puts the 4 frequencies (wavelengths 6, 63, 628, 6283) in all three llama3 bands
        m.config.rope_type = CDAS_ROPE_LLAMA3;
        m.config.rope_factor = 8;
        m.config.rope_low_freq_factor = 1;
        m.config.rope_high_freq_factor = 4;
        m.config.rope_original_max_positions = 64;
        out.push_back(std::move(m));
    }
    {
        tiny_model m = base("llama-linear-biases", CDAS_MODEL_FAMILY_LLAMA);
        m.config.num_kv_heads = 4;
        m.config.rope_type = CDAS_ROPE_LINEAR;
        m.config.rope_factor = 2;
        m.config.attention_bias = m.config.attention_output_bias = m.config.mlp_bias = 1;
        m.config.tie_word_embeddings = 1;
        out.push_back(std::move(m));
    }
    {
        tiny_model m = base("gemma2", CDAS_MODEL_FAMILY_GEMMA2);
        m.config.head_dim = 12;  // != hidden / heads, like the real ones
        m.config.activation = CDAS_ACTIVATION_GELU_TANH;
        m.config.sliding_window = 3;
        m.config.query_pre_attn_scalar = 20;
        m.config.attn_logit_softcap = 2.5;
        m.config.final_logit_softcap = 4;
        m.config.tie_word_embeddings = 1;
        m.config.norm_eps = 1e-6;
        out.push_back(std::move(m));
    }
    {
        tiny_model m = base("qwen2-yarn-window", CDAS_MODEL_FAMILY_QWEN2);
        m.config.attention_bias = 1;
        m.config.rope_type = CDAS_ROPE_YARN;
        m.config.rope_factor = 4;
        m.config.rope_original_max_positions = 16;
        m.config.sliding_window = 4;
        m.layer_sliding = {0, 1, 1};
        m.config.layer_sliding = m.layer_sliding.data();
        out.push_back(std::move(m));
    }
    {
        tiny_model m = base("phi3-longrope-partial", CDAS_MODEL_FAMILY_PHI3);
        m.config.rope_type = CDAS_ROPE_LONGROPE;
        m.config.rope_partial_factor = 0.5;
        m.config.rope_original_max_positions = 6;  // the 11-token test sequences use the long factors
        m.short_factor = {1.0f, 1.5f};
        m.long_factor = {2.0f, 5.0f};
        m.config.rope_short_factor = m.short_factor.data();
        m.config.rope_long_factor = m.long_factor.data();
        m.config.rope_factor_count = 2;
        out.push_back(std::move(m));
    }
    {
        tiny_model m = base("gpt2", CDAS_MODEL_FAMILY_GPT2);
        m.config.num_kv_heads = 4;
        m.config.rope_type = CDAS_ROPE_NONE;
        m.config.activation = CDAS_ACTIVATION_GELU_NEW;
        m.config.attention_bias = m.config.attention_output_bias = m.config.mlp_bias = 1;
        m.config.tie_word_embeddings = 1;
        m.config.max_positions = 24;
        out.push_back(std::move(m));
    }
    for (tiny_model& m : out) {
        // the pointers into the moved vectors changed
        if (!m.layer_sliding.empty()) m.config.layer_sliding = m.layer_sliding.data();
        if (!m.short_factor.empty()) {
            m.config.rope_short_factor = m.short_factor.data();
            m.config.rope_long_factor = m.long_factor.data();
        }
        randomize_weights(m, rng);
    }
    return out;
}

std::vector<double> reference_logits(const tiny_model& m, const std::vector<int32_t>& tokens) {
    const cdas_model_config& c = m.config;
    const bool gpt2 = c.family == CDAS_MODEL_FAMILY_GPT2, gemma = c.family == CDAS_MODEL_FAMILY_GEMMA2;
    const int64_t T = int64_t(tokens.size()), d = c.hidden_size, H = c.num_heads, KV = c.num_kv_heads, D = c.head_dim;
    const int64_t V = c.vocab_size;
    const std::string emb_name = gpt2 ? "transformer.wte.weight" : "model.embed_tokens.weight";
    const std::vector<float>& emb = weight(m, emb_name);
    double multiplier = c.embedding_multiplier > 0 ? c.embedding_multiplier : gemma ? double(float(std::sqrt(double(d)))) : 1.0;
    std::vector<vec> h(static_cast<size_t>(T), vec(static_cast<size_t>(d)));
    for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < d; ++i) {
            h[size_t(t)][size_t(i)] = double(emb[size_t(tokens[size_t(t)] * d + i)]) * multiplier;
            if (gpt2) h[size_t(t)][size_t(i)] += weight(m, "transformer.wpe.weight")[size_t(t * d + i)];
        }
    const rope_table rope = c.rope_type == CDAS_ROPE_NONE ? rope_table{} : rope_for(c, T - 1);
    const double scale = 1.0 / std::sqrt(c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : double(D));
    for (int64_t layer = 0; layer < c.num_layers; ++layer) {
        const std::string p = gpt2 ? "transformer.h." + std::to_string(layer) + "." : "model.layers." + std::to_string(layer) + ".";
        bool sliding = c.sliding_window > 0 && (c.layer_sliding ? c.layer_sliding[layer] != 0 : gemma ? layer % 2 == 0 : true);
        std::vector<vec> q(static_cast<size_t>(T)), k(static_cast<size_t>(T)), v(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t) {
            vec x = norm(m, p + (gpt2 ? "ln_1" : "input_layernorm"), h[size_t(t)]);
            if (gpt2 || c.family == CDAS_MODEL_FAMILY_PHI3) {
                vec qkv = gpt2 ? linear(m, p + "attn.c_attn.weight", p + "attn.c_attn.bias", x, true)
                               : linear(m, p + "self_attn.qkv_proj.weight", "", x);
                q[size_t(t)] = vec(qkv.begin(), qkv.begin() + H * D);
                k[size_t(t)] = vec(qkv.begin() + H * D, qkv.begin() + (H + KV) * D);
                v[size_t(t)] = vec(qkv.begin() + (H + KV) * D, qkv.end());
            } else {
                q[size_t(t)] = linear(m, p + "self_attn.q_proj.weight", p + "self_attn.q_proj.bias", x);
                k[size_t(t)] = linear(m, p + "self_attn.k_proj.weight", p + "self_attn.k_proj.bias", x);
                v[size_t(t)] = linear(m, p + "self_attn.v_proj.weight", p + "self_attn.v_proj.bias", x);
            }
            if (c.rope_type != CDAS_ROPE_NONE) {
                for (int64_t head = 0; head < H; ++head) rotate(q[size_t(t)], head * D, rope, t);
                for (int64_t head = 0; head < KV; ++head) rotate(k[size_t(t)], head * D, rope, t);
            }
        }
        std::vector<vec> attn(static_cast<size_t>(T), vec(static_cast<size_t>(H * D), 0.0));
        for (int64_t t = 0; t < T; ++t)
            for (int64_t head = 0; head < H; ++head) {
                const int64_t kvh = head / (H / KV);
                vec scores(size_t(T), -INFINITY);
                double top = -INFINITY;
                for (int64_t s = 0; s <= t; ++s) {
                    if (sliding && s <= t - c.sliding_window) continue;
                    double dot = 0;
                    for (int64_t i = 0; i < D; ++i) dot += q[size_t(t)][size_t(head * D + i)] * k[size_t(s)][size_t(kvh * D + i)];
                    dot *= scale;
                    if (c.attn_logit_softcap > 0) dot = c.attn_logit_softcap * std::tanh(dot / c.attn_logit_softcap);
                    scores[size_t(s)] = dot;
                    top = std::max(top, dot);
                }
                double sum = 0;
                for (double& s : scores) sum += (s = std::isinf(s) ? 0.0 : std::exp(s - top));
                for (int64_t s = 0; s <= t; ++s)
                    for (int64_t i = 0; i < D; ++i)
                        attn[size_t(t)][size_t(head * D + i)] += scores[size_t(s)] / sum * v[size_t(s)][size_t(kvh * D + i)];
            }
        for (int64_t t = 0; t < T; ++t) {
            vec a = gpt2 ? linear(m, p + "attn.c_proj.weight", p + "attn.c_proj.bias", attn[size_t(t)], true)
                         : linear(m, p + "self_attn.o_proj.weight", p + "self_attn.o_proj.bias", attn[size_t(t)]);
            if (gemma) a = norm(m, p + "post_attention_layernorm", a);
            for (int64_t i = 0; i < d; ++i) h[size_t(t)][size_t(i)] += a[size_t(i)];
            vec x = norm(m, p + (gpt2 ? "ln_2" : gemma ? "pre_feedforward_layernorm" : "post_attention_layernorm"), h[size_t(t)]);
            vec f;
            if (gpt2) {
                vec u = linear(m, p + "mlp.c_fc.weight", p + "mlp.c_fc.bias", x, true);
                for (double& e : u) e = act(c.activation, e);
                f = linear(m, p + "mlp.c_proj.weight", p + "mlp.c_proj.bias", u, true);
            } else {
                vec gate, up;
                if (c.family == CDAS_MODEL_FAMILY_PHI3) {
                    vec gu = linear(m, p + "mlp.gate_up_proj.weight", "", x);
                    gate = vec(gu.begin(), gu.begin() + c.intermediate_size);
                    up = vec(gu.begin() + c.intermediate_size, gu.end());
                } else {
                    gate = linear(m, p + "mlp.gate_proj.weight", p + "mlp.gate_proj.bias", x);
                    up = linear(m, p + "mlp.up_proj.weight", p + "mlp.up_proj.bias", x);
                }
                for (size_t i = 0; i < gate.size(); ++i) gate[i] = act(c.activation, gate[i]) * up[i];
                f = linear(m, p + "mlp.down_proj.weight", p + "mlp.down_proj.bias", gate);
            }
            if (gemma) f = norm(m, p + "post_feedforward_layernorm", f);
            for (int64_t i = 0; i < d; ++i) h[size_t(t)][size_t(i)] += f[size_t(i)];
        }
    }
    // transformers' rule when loading: a tied config uses the embeddings unless the checkpoint
    // holds its own lm_head.weight (one that differs is kept, untied; an equal one is the same).
    const std::string head_name = c.tie_word_embeddings && !m.weights.count("lm_head.weight") ? emb_name : "lm_head.weight";
    std::vector<double> logits(static_cast<size_t>(T * V));
    for (int64_t t = 0; t < T; ++t) {
        vec x = norm(m, gpt2 ? "transformer.ln_f" : "model.norm", h[size_t(t)]);
        vec z = linear(m, head_name, "", x);
        for (int64_t j = 0; j < V; ++j) {
            double zj = z[size_t(j)];
            if (c.final_logit_softcap > 0) zj = c.final_logit_softcap * std::tanh(zj / c.final_logit_softcap);
            logits[size_t(t * V + j)] = zj;
        }
    }
    return logits;
}

model_handle::model_handle(tiny_model& m) : model_handle(m.config, m.make_views()) {}

model_handle::model_handle(const cdas_model_config& config, const std::vector<cdas_tensor_view>& views) {
    status = cdas_model_create(&config, views.data(), int64_t(views.size()), &ptr);
}

}  // namespace cdas_test
