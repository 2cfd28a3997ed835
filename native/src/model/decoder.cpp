#include "model/decoder.h"

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "core/error.h"

namespace cdas::model {

namespace {

constexpr double kPi = 3.14159265358979323846;

at::ScalarType scalar_type_of(int32_t dtype) {
    switch (dtype) {
        case CDAS_DTYPE_BF16: return at::kBFloat16;
        case CDAS_DTYPE_F16: return at::kHalf;
        default: return at::kFloat;
    }
}

int64_t element_size(int32_t dtype) { return dtype == CDAS_DTYPE_F32 ? 4 : 2; }

at::Tensor rotate_half(const at::Tensor& x) {
    const int64_t half = x.size(-1) / 2;
    return at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// transformers' apply_rotary_pos_emb, with Phi-3's pass-through of unrotated dimensions.
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
    const int64_t rot = cos.size(-1);
    if (rot == x.size(-1)) return x * cos + rotate_half(x) * sin;
    at::Tensor xr = x.narrow(-1, 0, rot);
    return at::cat({xr * cos + rotate_half(xr) * sin, x.narrow(-1, rot, x.size(-1) - rot)}, -1);
}

// Bytewise equality of two views of the same shape and dtype (torch.equal for finite values;
// a head equal to the embeddings up to the sign of zeros is bound separately, to the same effect).
bool same_bytes(const cdas_tensor_view& a, const cdas_tensor_view& b) {
    if (a.dtype != b.dtype || a.ndim != b.ndim) return false;
    int64_t n = element_size(a.dtype);
    for (int32_t k = 0; k < a.ndim; ++k) {
        if (a.shape[k] != b.shape[k]) return false;
        n *= a.shape[k];
    }
    return a.data == b.data || std::memcmp(a.data, b.data, size_t(n)) == 0;
}

// 1.0 / t as Python evaluates it (Tensor.__rtruediv__ is reciprocal() * other).
at::Tensor rdiv(double numerator, const at::Tensor& t) { return at::reciprocal(t) * numerator; }

}  // namespace

// ---- construction ---------------------------------------------------------------------------

namespace {

bool is_norm_weight(role r) {
    switch (r) {
        case role::final_norm_w: case role::attn_norm_w: case role::post_attn_norm_w: case role::ffn_norm_w:
        case role::post_ffn_norm_w: return true;
        default: return false;
    }
}

at::Tensor& layer_slot(layer_weights& w, role r) {
    switch (r) {
        case role::attn_norm_w: return w.attn_norm_w;
        case role::attn_norm_b: return w.attn_norm_b;
        case role::post_attn_norm_w: return w.post_attn_norm_w;
        case role::ffn_norm_w: return w.ffn_norm_w;
        case role::ffn_norm_b: return w.ffn_norm_b;
        case role::post_ffn_norm_w: return w.post_ffn_norm_w;
        case role::q_w: return w.q_w;
        case role::q_b: return w.q_b;
        case role::k_w: return w.k_w;
        case role::k_b: return w.k_b;
        case role::v_w: return w.v_w;
        case role::v_b: return w.v_b;
        case role::qkv_w: return w.qkv_w;
        case role::qkv_b: return w.qkv_b;
        case role::o_w: return w.o_w;
        case role::o_b: return w.o_b;
        case role::gate_w: return w.gate_w;
        case role::gate_b: return w.gate_b;
        case role::up_w: return w.up_w;
        case role::up_b: return w.up_b;
        case role::gate_up_w: return w.gate_up_w;
        case role::gate_up_b: return w.gate_up_b;
        case role::down_w: return w.down_w;
        case role::down_b: return w.down_b;
        default: fail(CDAS_STATUS_INTERNAL, "family table: a model-level role bound to a layer");
    }
}

}  // namespace

at::Tensor& decoder::model_slot(role r) {
    switch (r) {
        case role::embed: return embed_;
        case role::positions: return positions_;
        case role::final_norm_w: return final_norm_w_;
        case role::final_norm_b: return final_norm_b_;
        case role::head: return head_;
        default: fail(CDAS_STATUS_INTERNAL, "family table: a layer role bound to the model");
    }
}

decoder::decoder(const model_spec& spec, const cdas_tensor_view* views, int64_t count) : spec_(spec) {
    if (spec_.layer_device.size() != size_t(spec_.num_layers) || spec_.devices.empty())
        fail(CDAS_STATUS_INTERNAL, "decoder: the blocks' placement was not resolved before create");
    const bool split = spec_.devices.size() > 1;
    for (const model_spec::device_entry& e : spec_.devices) {
        if (e.type == CDAS_DEVICE_CUDA) {
            const std::string field = split ? "config.split_device_indices: device " + device_name(e)
                                            : "config.device_index " + std::to_string(e.index);
            if (!at::hasCUDA())
                fail(CDAS_STATUS_UNSUPPORTED, (split ? "config.split_device_types has " + device_name(e)
                                                     : std::string("config.device_type is CUDA")) +
                                                  " but this libcdas is linked against a libtorch without CUDA (or no "
                                                  "GPU is visible); build it against a CUDA torch");
            if (e.index >= int32_t(at::getNumGPUs()))
                fail(CDAS_STATUS_INVALID_ARGUMENT, field + " but only " + std::to_string(at::getNumGPUs()) +
                                                       " CUDA device(s)");
            stage_devices_.emplace_back(at::kCUDA, int8_t(e.index));
        } else {
            stage_devices_.emplace_back(at::kCPU);  // CPU stages are placement stages on the one CPU
        }
    }
    if (spec_.num_threads > 0) at::set_num_threads(spec_.num_threads);
    if (count < 0) fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor_count must be >= 0, got " + std::to_string(count));
    if (count > 0 && !views) fail(CDAS_STATUS_INVALID_ARGUMENT, "tensors must not be NULL");

    std::unordered_map<std::string, const cdas_tensor_view*> given;
    for (int64_t i = 0; i < count; ++i) {
        const cdas_tensor_view& v = views[i];
        const std::string where = "tensors[" + std::to_string(i) + "]";
        if (!v.name) fail(CDAS_STATUS_INVALID_ARGUMENT, where + ".name must not be NULL");
        const std::string name = v.name;
        if (v.dtype != CDAS_DTYPE_F32 && v.dtype != CDAS_DTYPE_BF16 && v.dtype != CDAS_DTYPE_F16)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + name + ": dtype must be F32, BF16 or F16 (cdas_dtype), got " +
                                                   std::to_string(v.dtype));
        if (v.ndim < 1 || v.ndim > 4)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + name + ": ndim must be 1..4, got " + std::to_string(v.ndim));
        for (int32_t k = 0; k < v.ndim; ++k)
            if (v.shape[k] <= 0)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + name + ": shape " + shape_string(v.shape, v.ndim) +
                                                       " has a non-positive dimension");
        if (!v.data) fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + name + ": data must not be NULL");
        if (!given.emplace(name, &v).second)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + name + " is given twice");
    }

    const std::vector<weight_spec> expected = expected_weights(spec_);
    std::unordered_set<std::string> known;
    for (const weight_spec& w : expected) {
        known.insert(w.name);
        auto it = given.find(w.name);
        if (it == given.end()) {
            if (w.optional) continue;
            fail(CDAS_STATUS_INVALID_ARGUMENT, "missing tensor " + w.name + " (expected shape " + shape_string(w.shape) +
                                                   " for this " + family_name(spec_.family) + " config)");
        }
        const cdas_tensor_view& v = *it->second;
        if (std::vector<int64_t>(v.shape, v.shape + v.ndim) != w.shape)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "tensor " + w.name + " has shape " + shape_string(v.shape, v.ndim) +
                                                   " but the config implies " + shape_string(w.shape));
    }
    for (const auto& [name, v] : given)
        if (!known.count(name))
            fail(CDAS_STATUS_INVALID_ARGUMENT, "unexpected tensor " + name + " " + shape_string(v->shape, v->ndim) +
                                                   ": not part of a " + family_name(spec_.family) +
                                                   " checkpoint with this config");

    // Bind each tensor by its role in the family table. Conv1D weights ([in, out]) are held as
    // transposed views; (1 + w) norms (Gemma2RMSNorm) are precomputed once in fp32.
    const family_info& f = spec_.traits();
    layers_.resize(size_t(spec_.num_layers));
    // Model-level tensors: the embeddings on the first stage, the final norm and head on the last.
    auto stage_of_weight = [&](const weight_spec& w) {
        if (w.layer >= 0) return stage_of(w.layer);
        return w.binds == role::embed || w.binds == role::positions ? 0 : last_stage();
    };
    const cdas_tensor_view* embed_view = nullptr;
    for (const weight_spec& w : expected)
        if (w.binds == role::embed) embed_view = given.at(w.name);
    for (const weight_spec& w : expected) {
        auto it = given.find(w.name);
        if (it == given.end()) continue;  // an optional tensor left out
        if (w.binds == role::head && spec_.tie_word_embeddings && embed_view && same_bytes(*it->second, *embed_view))
            continue;  // identical to the embeddings: tied, as transformers does
        const int32_t stage = stage_of_weight(w);
        at::Tensor t = load(*it->second, stage);
        if (f.conv1d_weights && w.layer >= 0 && t.dim() == 2) t = t.t();
        if (f.norm == norm_kind::rms_unit_offset && is_norm_weight(w.binds)) t = t.to(at::kFloat) + 1.0;
        if (split) ledger_.tag(t, stage);
        if (w.layer < 0) {
            model_slot(w.binds) = t;
        } else {
            layer_slot(layers_[size_t(w.layer)], w.binds) = t;
        }
    }
    // tie_word_embeddings as transformers (v5) applies it when loading a checkpoint
    // (PreTrainedModel.tie_weights with the checkpoint's missing keys): the head is tied to the
    // embeddings when lm_head.weight is absent or torch.equal to them; when the checkpoint holds a
    // different lm_head.weight, transformers warns that the config does not reflect the checkpoint
    // and does NOT tie, so the saved head is the one used (bound in the loop above).
    // Split: the head's own copy on the last stage (the transfer every boundary uses).
    if (spec_.tie_word_embeddings && !head_.defined()) head_ = transfer(embed_, 0, last_stage());

    if (spec_.rope_type != CDAS_ROPE_NONE) {
        inv_freq_short_ = inverse_frequencies(0).to(device());
        if (spec_.rope_type == CDAS_ROPE_LONGROPE)
            inv_freq_long_ = inverse_frequencies(spec_.rope_original_max_positions).to(device());
    }
}

at::TensorOptions decoder::options() const {
    return at::TensorOptions().dtype(scalar_type_of(spec_.dtype)).device(device());
}

at::Device decoder::device() const { return stage_devices_.front(); }

const at::Tensor& decoder::head() const {
    expect_stage(head_, last_stage(), "the LM head", -1);
    return head_;
}

at::Tensor decoder::transfer(const at::Tensor& t, int32_t from, int32_t to) const {
    if (from == to || !t.defined()) return t;
    at::Tensor out = t.to(stage_devices_[size_t(to)], /*non_blocking=*/false, /*copy=*/true);
    ledger_.tag(out, to);
    return out;
}

void decoder::expect_stage(const at::Tensor& t, int32_t stage, const char* what, int64_t layer) const {
    if (!t.defined() || stage_devices_.size() == 1) return;
    const int32_t known = ledger_.stage_of(t);
    if ((known < 0 || known == stage) && t.device() == stage_devices_[size_t(stage)]) return;
    const std::string where = layer >= 0 ? "block " + std::to_string(layer) : std::string("the head");
    const std::string from = known >= 0 ? device_name(spec_.devices[size_t(known)]) + " (stage " + std::to_string(known) + ")"
                                        : t.device().str();
    fail(CDAS_STATUS_INTERNAL, "layer split: " + where + " on " + device_name(spec_.devices[size_t(stage)]) + " (stage " +
                                   std::to_string(stage) + ") was given " + what + " from " + from);
}

void stage_ledger::tag(const at::Tensor& t, int32_t stage) {
    if (!t.defined()) return;
    std::lock_guard<std::mutex> lock(mutex_);
    if (tags_.size() >= prune_at_) {
        for (auto it = tags_.begin(); it != tags_.end();) it = it->second.first.expired() ? tags_.erase(it) : std::next(it);
        prune_at_ = std::max<size_t>(4096, 2 * tags_.size());
    }
    tags_.insert_or_assign(
        t.unsafeGetTensorImpl(),
        std::make_pair(c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>(t.getIntrusivePtr()), stage));
}

int32_t stage_ledger::stage_of(const at::Tensor& t) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = tags_.find(t.unsafeGetTensorImpl());
    // A live entry is this tensor: the weak reference keeps a dead one's address from being reused.
    return it == tags_.end() || it->second.first.expired() ? -1 : it->second.second;
}

// Used in place when it already is what the model computes with (the zero-copy path for
// memory-mapped checkpoints); converted or copied to the stage's device otherwise.
at::Tensor decoder::load(const cdas_tensor_view& v, int32_t stage) {
    const at::TensorOptions target = options().device(stage_devices_[size_t(stage)]);
    std::vector<int64_t> shape(v.shape, v.shape + v.ndim);
    const at::ScalarType type = scalar_type_of(v.dtype);
    const bool aligned = reinterpret_cast<uintptr_t>(v.data) % uintptr_t(element_size(v.dtype)) == 0;
    if (!aligned) {
        at::Tensor copy = at::empty(shape, at::TensorOptions().dtype(type));
        std::memcpy(copy.data_ptr(), v.data, size_t(copy.nbytes()));
        return copy.to(target);
    }
    at::Tensor host = at::from_blob(const_cast<void*>(v.data), shape, at::TensorOptions().dtype(type));
    if (type == scalar_type_of(spec_.dtype) && target.device().is_cpu()) {
        borrows_ = true;
        return host;
    }
    return host.to(target, /*non_blocking=*/false, /*copy=*/true);
}

// ---- rotary tables --------------------------------------------------------------------------

at::Tensor decoder::inverse_frequencies(int64_t max_position) const {
    const int64_t dim = spec_.rotary_dim;
    const double base = spec_.rope_theta;
    at::Tensor exponents = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / double(dim);
    at::Tensor inv_freq = rdiv(1.0, at::pow(base, exponents));
    switch (spec_.rope_type) {
        case CDAS_ROPE_LINEAR: return inv_freq / spec_.rope_factor;
        case CDAS_ROPE_LLAMA3: {  // _compute_llama3_parameters
            const double factor = spec_.rope_factor, low = spec_.rope_low_freq_factor, high = spec_.rope_high_freq_factor;
            const double old_context = double(spec_.rope_original_max_positions);
            const double low_wavelen = old_context / low, high_wavelen = old_context / high;
            at::Tensor wavelen = rdiv(2 * kPi, inv_freq);
            at::Tensor scaled = at::where(wavelen > low_wavelen, inv_freq / factor, inv_freq);
            at::Tensor smooth = (rdiv(old_context, wavelen) - low) / (high - low);
            at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
            at::Tensor medium = (wavelen < high_wavelen).logical_not() & (wavelen > low_wavelen).logical_not();
            return at::where(medium, smoothed, scaled);
        }
        case CDAS_ROPE_LONGROPE: {  // _compute_longrope_parameters
            const bool use_long = max_position + 1 > spec_.rope_original_max_positions;
            const std::vector<float>& f = use_long ? spec_.rope_long_factor : spec_.rope_short_factor;
            at::Tensor ext = at::from_blob(const_cast<float*>(f.data()), {int64_t(f.size())}, at::kFloat).clone();
            return rdiv(1.0, ext * at::pow(base, exponents));
        }
        case CDAS_ROPE_YARN: {  // _compute_yarn_parameters (truncate = true, no mscale)
            auto correction_dim = [&](double rotations) {
                return (double(dim) * std::log(double(spec_.rope_original_max_positions) / (rotations * 2 * kPi))) /
                       (2 * std::log(base));
            };
            double low = std::max(std::floor(correction_dim(spec_.rope_beta_fast)), 0.0);
            double high = std::min(std::ceil(correction_dim(spec_.rope_beta_slow)), double(dim - 1));
            if (low == high) high += 0.001;
            at::Tensor pos_freqs = at::pow(base, exponents);
            at::Tensor extrapolation = rdiv(1.0, pos_freqs);
            at::Tensor interpolation = rdiv(1.0, spec_.rope_factor * pos_freqs);
            at::Tensor ramp = at::clamp((at::arange(dim / 2, at::kFloat) - low) / (high - low), 0, 1);
            at::Tensor extrapolation_factor = 1 - ramp;
            return interpolation * (1 - extrapolation_factor) + extrapolation * extrapolation_factor;
        }
        default: return inv_freq;
    }
}

attention_inputs decoder::prepare(const at::Tensor& positions, const at::Tensor& key_real, int64_t query_slot0) const {
    attention_inputs out;
    out.query_slot0 = query_slot0;
    out.stage.reserve(stage_devices_.size());
    out.stage.resize(1);
    stage_inputs& in = out.stage[0];
    const int64_t tq = positions.size(1), tk = key_real.size(1);
    if (spec_.rope_type != CDAS_ROPE_NONE) {
        const at::Tensor& inv_freq =
            spec_.rope_type == CDAS_ROPE_LONGROPE && positions.max().item<int64_t>() + 1 > spec_.rope_original_max_positions
                ? inv_freq_long_
                : inv_freq_short_;
        // fp32 whatever the model dtype, like the rotary embeddings' forward
        at::Tensor freqs = positions.to(at::kFloat).unsqueeze(-1) * inv_freq;
        at::Tensor emb = at::cat({freqs, freqs}, -1);
        in.cos = (emb.cos() * spec_.rope_attention_factor).to(options().dtype()).unsqueeze(1);
        in.sin = (emb.sin() * spec_.rope_attention_factor).to(options().dtype()).unsqueeze(1);
    }
    auto long_options = at::TensorOptions().dtype(at::kLong).device(device());
    at::Tensor q_slots = at::arange(query_slot0, query_slot0 + tq, long_options).view({tq, 1});
    at::Tensor k_slots = at::arange(tk, long_options).view({1, tk});
    at::Tensor causal = k_slots <= q_slots;
    at::Tensor self = k_slots == q_slots;
    at::Tensor allowed = causal.unsqueeze(0) & (key_real.unsqueeze(1) | self.unsqueeze(0));  // [B, Tq, Tk]
    in.allowed_full = allowed.unsqueeze(1);
    bool any_sliding = false;
    for (int64_t i = 0; i < spec_.num_layers; ++i) any_sliding = any_sliding || spec_.sliding(i);
    if (any_sliding) in.allowed_sliding = (allowed & (k_slots > q_slots - spec_.sliding_window).unsqueeze(0)).unsqueeze(1);
    if (stage_devices_.size() > 1) {
        for (at::Tensor* t : {&in.cos, &in.sin, &in.allowed_full, &in.allowed_sliding}) ledger_.tag(*t, 0);
        // Every later stage gets its own copy, through the boundary transfer.
        for (int32_t s = 1; s <= last_stage(); ++s) {
            const stage_inputs& first = out.stage[0];
            out.stage.push_back({transfer(first.cos, 0, s), transfer(first.sin, 0, s), transfer(first.allowed_full, 0, s),
                                 transfer(first.allowed_sliding, 0, s)});
        }
    }
    return out;
}

// ---- the block ------------------------------------------------------------------------------

at::Tensor decoder::embed(const at::Tensor& tokens, const at::Tensor& positions) const {
    at::Tensor h = at::embedding(embed_, tokens);
    if (spec_.traits().learned_positions) {
        h = h + at::embedding(positions_, positions);
    } else if (spec_.embedding_multiplier != 1.0) {
        // Gemma2TextScaledWordEmbedding: an fp32 scalar rounded to the weight dtype (sqrt(3072) is 55.5 in bf16)
        h = h * at::scalar_tensor(spec_.embedding_multiplier, at::kFloat).to(options());
    }
    if (stage_devices_.size() > 1) ledger_.tag(h, 0);
    return h;
}

at::Tensor decoder::norm(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) const {
    if (spec_.traits().norm == norm_kind::layer) return at::layer_norm(x, {spec_.hidden}, w, b, spec_.norm_eps);
    at::Tensor xf = x.to(at::kFloat);
    xf = xf * at::rsqrt(xf.pow(2).mean({-1}, /*keepdim=*/true) + spec_.norm_eps);
    // Gemma2RMSNorm multiplies in fp32 and rounds once; LlamaRMSNorm rounds, then multiplies.
    if (spec_.traits().norm == norm_kind::rms_unit_offset) return (xf * w).to(x.scalar_type());
    return w * xf.to(x.scalar_type());
}

at::Tensor decoder::activation(const at::Tensor& x) const {
    switch (spec_.activation) {
        case CDAS_ACTIVATION_SILU: return at::silu(x);
        case CDAS_ACTIVATION_GELU_TANH: return at::gelu(x, "tanh");
        case CDAS_ACTIVATION_GELU_NEW:
            // NewGELUActivation is the tanh GELU written term by term. In fp32 torch's fused kernel
            // gives the same function to a few ulps, with one output instead of eight and one saved
            // tensor for backward instead of five. In bf16/f16 each term rounds to the dtype, as in
            // transformers, so those stay term by term.
            if (x.scalar_type() == at::kFloat) return at::gelu(x, "tanh");
            return 0.5 * x * (1.0 + at::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * at::pow(x, 3.0))));
        case CDAS_ACTIVATION_GELU: return at::gelu(x);
        default: return at::relu(x);
    }
}

at::Tensor decoder::mlp(const layer_weights& w, const at::Tensor& x) const {
    if (!spec_.traits().gated_mlp) return at::linear(activation(at::linear(x, w.up_w, w.up_b)), w.down_w, w.down_b);
    if (w.gate_up_w.defined()) {
        std::vector<at::Tensor> gate_up = at::linear(x, w.gate_up_w, w.gate_up_b).chunk(2, -1);
        return at::linear(gate_up[1] * activation(gate_up[0]), w.down_w, w.down_b);
    }
    return at::linear(activation(at::linear(x, w.gate_w, w.gate_b)) * at::linear(x, w.up_w, w.up_b), w.down_w, w.down_b);
}

at::Tensor decoder::attention(int64_t layer, const at::Tensor& x, const attention_inputs& inputs, kv_cache* cache) const {
    const layer_weights& w = layers_[size_t(layer)];
    const stage_inputs& in = inputs.stage[size_t(stage_of(layer))];
    const int64_t B = x.size(0), T = x.size(1), H = spec_.heads, KV = spec_.kv_heads, D = spec_.head_dim;
    at::Tensor q, k, v;
    if (w.qkv_w.defined()) {
        std::vector<at::Tensor> qkv = at::linear(x, w.qkv_w, w.qkv_b).split_with_sizes({H * D, KV * D, KV * D}, -1);
        q = qkv[0], k = qkv[1], v = qkv[2];
    } else {
        q = at::linear(x, w.q_w, w.q_b);
        k = at::linear(x, w.k_w, w.k_b);
        v = at::linear(x, w.v_w, w.v_b);
    }
    q = q.reshape({B, T, H, D}).transpose(1, 2);
    k = k.reshape({B, T, KV, D}).transpose(1, 2);
    v = v.reshape({B, T, KV, D}).transpose(1, 2);
    if (in.cos.defined()) {
        q = apply_rotary(q, in.cos, in.sin);
        k = apply_rotary(k, in.cos, in.sin);
    }
    if (cache) {
        at::Tensor& keys = cache->keys[size_t(layer)];
        at::Tensor& values = cache->values[size_t(layer)];
        keys.narrow(2, inputs.query_slot0, T).copy_(k);
        values.narrow(2, inputs.query_slot0, T).copy_(v);
        k = keys.narrow(2, 0, inputs.query_slot0 + T);
        v = values.narrow(2, 0, inputs.query_slot0 + T);
    }
    const at::Tensor& allowed = spec_.sliding(layer) ? in.allowed_sliding : in.allowed_full;
    at::Tensor out;
    if (spec_.attn_logit_softcap > 0) {
        // eager_attention_forward with the soft-cap (SDPA has no hook for it). Query heads are
        // grouped [B, KV, H/KV, T, D] against [B, KV, 1, Tk, D]: repeat_kv's head order, no copy of K and V.
        const int64_t G = H / KV, tk = k.size(2);
        at::Tensor qg = q.reshape({B, KV, G, T, D});
        at::Tensor scores = at::matmul(qg, k.unsqueeze(2).transpose(-1, -2)) * spec_.attention_scale;
        const double cap = spec_.attn_logit_softcap;
        scores = at::tanh(scores / cap) * cap;
        scores = scores.masked_fill(allowed.view({B, 1, 1, T, tk}).logical_not(), -std::numeric_limits<double>::infinity());
        at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
        out = at::matmul(probs, v.unsqueeze(2)).reshape({B, H, T, D});
    } else {
        out = at::scaled_dot_product_attention(q, k, v, allowed, 0.0, false, spec_.attention_scale, KV != H);
    }
    out = out.transpose(1, 2).reshape({B, T, H * D});
    return at::linear(out, w.o_w, w.o_b);
}

at::Tensor decoder::block(int64_t layer, const at::Tensor& h_arriving, const attention_inputs& in, kv_cache* cache) const {
    const layer_weights& w = layers_[size_t(layer)];
    const int32_t stage = stage_of(layer);
    const bool split = stage_devices_.size() > 1;
    at::Tensor h_in = h_arriving;
    if (split) {
        const int32_t before = layer == 0 ? 0 : stage_of(layer - 1);
        h_in = transfer(h_arriving, before, stage);
        expect_stage(h_in, stage, "its input hidden state", layer);
        if (in.stage.size() != stage_devices_.size())
            fail(CDAS_STATUS_INTERNAL, "layer split: attention inputs prepared for " + std::to_string(in.stage.size()) +
                                           " stage(s), the model has " + std::to_string(stage_devices_.size()));
        const stage_inputs& mine = in.stage[size_t(stage)];
        expect_stage(mine.cos, stage, "rotary cos", layer);
        expect_stage(mine.sin, stage, "rotary sin", layer);
        expect_stage(mine.allowed_full, stage, "the attention mask", layer);
        expect_stage(mine.allowed_sliding, stage, "the sliding-window mask", layer);
        expect_stage(w.attn_norm_w, stage, "its weights", layer);
        expect_stage(w.down_w, stage, "its weights", layer);
        if (cache) {
            expect_stage(cache->keys[size_t(layer)], stage, "its key cache", layer);
            expect_stage(cache->values[size_t(layer)], stage, "its value cache", layer);
        }
    }
    at::Tensor a = attention(layer, norm(h_in, w.attn_norm_w, w.attn_norm_b), in, cache);
    if (spec_.traits().sandwich_norms) a = norm(a, w.post_attn_norm_w, {});
    at::Tensor h = h_in + a;
    at::Tensor m = mlp(w, norm(h, w.ffn_norm_w, w.ffn_norm_b));
    if (spec_.traits().sandwich_norms) m = norm(m, w.post_ffn_norm_w, {});
    at::Tensor out = h + m;
    if (split) ledger_.tag(out, stage);
    return out;
}

at::Tensor decoder::final_norm(const at::Tensor& h) const {
    if (stage_devices_.size() == 1) return norm(h, final_norm_w_, final_norm_b_);
    expect_stage(h, last_stage(), "the hidden state for the final norm", -1);
    expect_stage(final_norm_w_, last_stage(), "the final norm's weight", -1);
    at::Tensor x = norm(h, final_norm_w_, final_norm_b_);
    ledger_.tag(x, last_stage());
    return x;
}

at::Tensor decoder::logits(const at::Tensor& normed) const {
    expect_stage(normed, last_stage(), "the final hidden state", -1);
    at::Tensor z = at::linear(normed, head());
    if (spec_.final_logit_softcap > 0) z = at::tanh(z / spec_.final_logit_softcap) * spec_.final_logit_softcap;
    return z;
}

void decoder::logits_into(const at::Tensor& normed, at::Tensor& out) const {
    if (!head_device().is_cpu() || spec_.dtype != CDAS_DTYPE_F32) {
        out.copy_(logits(normed));
        return;
    }
    expect_stage(normed, last_stage(), "the final hidden state", -1);
    at::matmul_out(out, normed, head().t());
    if (spec_.final_logit_softcap > 0) out.div_(spec_.final_logit_softcap).tanh_().mul_(spec_.final_logit_softcap);
}

kv_cache decoder::new_cache(int64_t batch, int64_t capacity) const {
    kv_cache c;
    for (int64_t i = 0; i < spec_.num_layers; ++i) {  // each block's on its stage
        const at::TensorOptions on = options().device(device_of(i));
        c.keys.push_back(at::empty({batch, spec_.kv_heads, capacity, spec_.head_dim}, on));
        c.values.push_back(at::empty({batch, spec_.kv_heads, capacity, spec_.head_dim}, on));
        if (stage_devices_.size() > 1) {
            ledger_.tag(c.keys.back(), stage_of(i));
            ledger_.tag(c.values.back(), stage_of(i));
        }
    }
    return c;
}

}  // namespace cdas::model
