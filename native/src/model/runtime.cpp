#include "model/runtime.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include "core/cuda_loader.h"
#include "core/error.h"
#include "model/decoder.h"
#include "model/placement.h"
#include "torch/losses.h"
#include "torch/ops.h"

struct cdas_model {
    std::unique_ptr<cdas::model::decoder> decoder;
    std::mutex mutex;  // one call at a time: calls share the decoder's device state
};

namespace cdas::model {

namespace {

// A host token batch on the model's device, with positions counted from each row's first real
// token (0 on padding, which no real query attends).
struct device_batch {
    int64_t batch = 0, seq_len = 0;
    at::Tensor tokens;     // [B, T] int64
    at::Tensor positions;  // [B, T] int64
    at::Tensor real;       // [B, T] bool
    std::vector<int64_t> first, length;
};

device_batch to_device(const decoder& d, const cdas_token_batch& b, const std::vector<int64_t>& first) {
    device_batch out;
    const int64_t B = b.batch, T = b.seq_len;
    out.batch = B;
    out.seq_len = T;
    out.first = first;
    std::vector<int64_t> positions(size_t(B * T), 0);
    std::vector<uint8_t> real(size_t(B * T), 1);
    for (int64_t r = 0; r < B; ++r) {
        int64_t len = batch_row_length(b, r, first[size_t(r)]);
        out.length.push_back(len);
        for (int64_t t = 0; t < T; ++t) {
            bool is_real = t >= first[size_t(r)] && t < first[size_t(r)] + len;
            real[size_t(r * T + t)] = is_real;
            positions[size_t(r * T + t)] = is_real ? t - first[size_t(r)] : 0;
        }
    }
    at::Device device = d.device();
    out.tokens = at::from_blob(const_cast<int32_t*>(b.tokens), {B, T}, at::kInt).to(device, at::kLong);
    out.positions = at::from_blob(positions.data(), {B, T}, at::kLong).to(device, at::kLong, false, true);
    out.real = at::from_blob(real.data(), {B, T}, at::kByte).to(device, at::kBool, false, true);
    return out;
}

// Flat row indices (b * T + column) of positions counted from each row's first real token.
at::Tensor flat_rows(const device_batch& b, const std::vector<std::pair<int64_t, int64_t>>& example_position,
                     at::Device device) {
    std::vector<int64_t> rows;
    rows.reserve(example_position.size());
    for (auto [e, p] : example_position) rows.push_back(e * b.seq_len + b.first[size_t(e)] + p);
    return at::from_blob(rows.data(), {int64_t(rows.size())}, at::kLong).to(device, at::kLong, false, true);
}

// The rows of h [B, T, d] the clamp touches: real positions counted >= prefix_len (per row,
// from the first real token) given the positions of this call's queries.
struct clamp_rows {
    at::Tensor example_index;  // [B * T] int32
    at::Tensor mask;           // [B * T] uint8
};

clamp_rows clamp_rows_for(const at::Tensor& positions_in, const at::Tensor& real_in, const int32_t* prefix_len,
                          at::Device device) {
    const at::Tensor positions_host = positions_in.to(at::kCPU).contiguous(), real_host = real_in.to(at::kCPU).contiguous();
    const int64_t B = positions_host.size(0), T = positions_host.size(1);
    std::vector<int32_t> example(size_t(B * T));
    std::vector<uint8_t> mask(size_t(B * T));
    const int64_t* pos = positions_host.data_ptr<int64_t>();
    const bool* real = real_host.data_ptr<bool>();
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            int64_t i = b * T + t;
            example[size_t(i)] = int32_t(b);
            mask[size_t(i)] = real[i] && pos[i] >= (prefix_len ? prefix_len[b] : 0);
        }
    clamp_rows r;
    r.example_index = at::from_blob(example.data(), {B * T}, at::kInt).to(device, at::kInt, false, true);
    r.mask = at::from_blob(mask.data(), {B * T}, at::kByte).to(device, at::kByte, false, true);
    return r;
}

// Phi(h; a) on the clamp rows, by the fused DII (the autograd function, so the objective's
// gradient flows to the directions through it). Exactly one of source [B, d] and values [B, r].
at::Tensor clamp(const at::Tensor& h, const at::Tensor& directions, const at::Tensor& source, const at::Tensor& values,
                 const clamp_rows& rows) {
    const int64_t B = h.size(0), T = h.size(1), d = h.size(2);
    at::Tensor out = torch_ops::dii(h.reshape({B * T, d}), directions, source, values, rows.example_index, rows.mask);
    return out.view({B, T, d});
}

// An intervention's parameters on the model's device (fp32): directions W (or LoReFT's R), the
// values of CLAMP/ADD, LoReFT's M and b. Each is a leaf that may be asked to require a gradient.
struct intervention_tensors {
    int32_t mode = CDAS_INTERVENTION_CLAMP;
    at::Tensor directions, values, loreft_weight, loreft_bias;
};

// On `device`: the intervention layer's (layer split: its block's stage).
at::Tensor host_directions(const decoder& d, int32_t rank, const float* directions, at::Device device) {
    return at::from_blob(const_cast<float*>(directions), {rank, d.spec().hidden}, at::kFloat)
        .to(device, at::kFloat, false, /*copy=*/true);
}

intervention_tensors intervention_on_device(const decoder& d, const cdas_intervention& iv, int64_t batch) {
    const at::Device device = d.device_of(iv.layer);
    intervention_tensors t;
    t.mode = iv.mode;
    t.directions = host_directions(d, iv.rank, iv.directions, device);
    if (iv.values)
        t.values = at::from_blob(const_cast<float*>(iv.values), {batch, iv.rank}, at::kFloat).to(device, at::kFloat, false, true);
    if (iv.mode == CDAS_INTERVENTION_LOREFT) {
        t.loreft_weight = host_directions(d, iv.rank, iv.loreft_weight, device);
        t.loreft_bias = at::from_blob(const_cast<float*>(iv.loreft_bias), {iv.rank}, at::kFloat).to(device, at::kFloat, false, true);
    }
    return t;
}

// The intervention of `p.mode` on the clamp rows (row b of h is example b): the clamp (fused DII;
// values, or source [B, d] when values is undefined), or in fp32, stored in h's dtype:
//   ADD     h + W^T a_b,
//   LOREFT  h + R^T (M h + b - R h),
//   NULL    h - sum_k ReLU(w_k . h) / |w_k|^2 w_k.
at::Tensor intervene(const intervention_tensors& p, const at::Tensor& h, const at::Tensor& source, const clamp_rows& rows) {
    if (p.mode == CDAS_INTERVENTION_CLAMP) return clamp(h, p.directions, source, p.values, rows);
    const int64_t B = h.size(0), T = h.size(1);
    const at::Tensor on = rows.mask.view({B, T, 1}).to(at::kBool);
    const at::Tensor hf = h.to(at::kFloat);
    at::Tensor delta;
    switch (p.mode) {
        case CDAS_INTERVENTION_ADD: delta = p.values.matmul(p.directions).unsqueeze(1); break;  // [B, 1, d]
        case CDAS_INTERVENTION_LOREFT:
            delta = (at::linear(hf, p.loreft_weight, p.loreft_bias) - at::linear(hf, p.directions)).matmul(p.directions);
            break;
        default: {  // NULL
            at::Tensor coefficient = at::relu(at::linear(hf, p.directions)) / p.directions.square().sum(1);  // [B, T, r]
            delta = -coefficient.matmul(p.directions);
        }
    }
    return at::where(on, hf + delta, hf).to(h.scalar_type());
}

void zero_padding(at::Tensor& host, const at::Tensor& real) {
    host.masked_fill_(real.logical_not().unsqueeze(-1).to(at::kCPU), 0);
}

void write_out(const at::Tensor& t, const at::Tensor& real, float* out) {
    at::Tensor host = at::from_blob(out, t.sizes(), at::kFloat);
    host.copy_(t);
    zero_padding(host, real);
}

// h_L before the clamp at each row's source position: [B, d].
at::Tensor source_states(const at::Tensor& h, const device_batch& b, const int32_t* source_positions, at::Device device) {
    std::vector<std::pair<int64_t, int64_t>> at_source;
    for (int64_t e = 0; e < b.batch; ++e) at_source.emplace_back(e, source_positions[e]);
    return h.reshape({b.batch * b.seq_len, h.size(2)}).index_select(0, flat_rows(b, at_source, device));
}

// Sampling on the host in fp32 with a CPU generator, so a seed means the same tokens on every
// device. transformers' order: temperature, top-k, top-p (keeping at least one token).
at::Tensor sample_next(const at::Tensor& logits, const cdas_generation_options& o, at::Generator& generator) {
    at::Tensor z = logits.to(at::kCPU, at::kFloat);
    if (o.temperature == 0) return z.argmax(-1);
    const double neg_inf = -std::numeric_limits<double>::infinity();
    const int64_t V = z.size(-1);
    z = z / double(o.temperature);
    if (o.top_k > 0 && o.top_k < V) {
        at::Tensor kth = std::get<0>(z.topk(o.top_k, -1)).narrow(-1, o.top_k - 1, 1);
        z = z.masked_fill(z < kth, neg_inf);
    }
    if (o.top_p < 1) {
        auto [sorted, order] = z.sort(-1, /*descending=*/false);
        at::Tensor remove = sorted.softmax(-1).cumsum(-1) <= (1.0 - double(o.top_p));
        remove.narrow(-1, V - 1, 1).fill_(false);
        z = z.masked_fill(remove.scatter(1, order, remove), neg_inf);
    }
    return at::multinomial(z.softmax(-1), 1, false, generator).squeeze(-1);
}

// A layer split without a block map: even ranges, or (split_auto) ranges balanced by the devices'
// free memory, 90% of it usable (the rest for activations, the KV cache and libtorch's caching
// allocator); devices left without a block are dropped from the list.
void resolve_placement(model_spec& spec) {
    const int32_t n = int32_t(spec.devices.size());
    if (!spec.split_auto) {
        spec.layer_device = place_evenly(spec.num_layers, n);
        return;
    }
    std::vector<int64_t> usable;
    std::vector<std::string> names;
    for (const model_spec::device_entry& e : spec.devices) {
        names.push_back(device_name(e));
        if (e.type == CDAS_DEVICE_CPU) {
            usable.push_back(-1);
            continue;
        }
        const char* why = nullptr;
        const cdas_cuda_backend* cuda = cuda_backend_load(&why);
        if (!cuda) fail(CDAS_STATUS_UNSUPPORTED, "config.split_auto needs the free memory of " + device_name(e) + ": " + why);
        int64_t free_bytes = 0, total = 0;
        char error[256] = {0};
        const cdas_status status = cuda->memory_info(e.index, &free_bytes, &total, error, sizeof error);
        if (status != CDAS_STATUS_OK) fail(status, std::string("config.split_auto: ") + error);
        usable.push_back(free_bytes / 10 * 9);
    }
    const std::vector<int32_t> map = place_by_memory(weight_bytes(spec), usable, names);
    std::vector<model_spec::device_entry> used;
    std::vector<int32_t> renumbered(size_t(n), -1);
    for (int32_t k : map)
        if (renumbered[size_t(k)] < 0) {
            renumbered[size_t(k)] = int32_t(used.size());
            used.push_back(spec.devices[size_t(k)]);
        }
    spec.devices = used;
    spec.device_type = used[0].type;
    spec.device_index = used[0].index;
    for (int32_t k : map) spec.layer_device.push_back(renumbered[size_t(k)]);
}

}  // namespace

const std::vector<int32_t>& model_layer_devices(const cdas_model& model) { return model.decoder->spec().layer_device; }

cdas_model* model_create(const cdas_model_config& config, const cdas_tensor_view* tensors, int64_t count) {
    model_spec spec = spec_from_config(config);
    if (spec.layer_device.empty()) resolve_placement(spec);
    auto model = std::make_unique<cdas_model>();
    model->decoder = std::make_unique<decoder>(spec, tensors, count);
    return model.release();
}

void model_destroy(cdas_model* model) noexcept { delete model; }

const model_spec& model_spec_of(const cdas_model& model) { return model.decoder->spec(); }

bool model_borrows_host_memory(const cdas_model& model) { return model.decoder->borrows_host_memory(); }

void model_forward(cdas_model& model, const cdas_token_batch& input, const std::vector<int64_t>& first_real,
                   const cdas_intervention* iv, int32_t hidden_layer, float* hidden_out, float* final_hidden_out,
                   float* logits_out) {
    std::lock_guard<std::mutex> lock(model.mutex);
    at::NoGradGuard no_grad;
    const decoder& d = *model.decoder;
    const model_spec& spec = d.spec();
    device_batch b = to_device(d, input, first_real);
    const bool top = final_hidden_out || logits_out;
    const int64_t last = top ? spec.num_layers - 1 : hidden_layer;

    intervention_tensors params;
    clamp_rows rows;
    const bool intervening = iv && iv->layer <= last;
    if (intervening) {
        params = intervention_on_device(d, *iv, b.batch);
        rows = clamp_rows_for(b.positions, b.real, iv->prefix_len, d.device_of(iv->layer));
    }

    attention_inputs in = d.prepare(b.positions, b.real, 0);
    at::Tensor h = d.embed(b.tokens, b.positions);
    for (int64_t i = 0; i <= last; ++i) {
        h = d.block(i, h, in, nullptr);
        if (intervening && i == iv->layer) {
            at::Tensor source =
                iv->source_positions ? source_states(h, b, iv->source_positions, d.device_of(iv->layer)) : at::Tensor();
            h = intervene(params, h, source, rows);
        }
        if (hidden_out && i == hidden_layer) write_out(h, b.real, hidden_out);
    }
    if (!top) return;
    at::Tensor x = d.final_norm(h);
    if (final_hidden_out) write_out(x, b.real, final_hidden_out);
    if (logits_out) {
        at::Tensor host = at::from_blob(logits_out, {b.batch, b.seq_len, spec.vocab}, at::kFloat);
        d.logits_into(x, host);
        zero_padding(host, b.real);
    }
}

void model_generate(cdas_model& model, const cdas_token_batch& prompt, const std::vector<int64_t>& first_real,
                    const cdas_intervention* iv, const cdas_generation_options& o, int32_t* new_tokens_out,
                    int32_t* lengths_out) {
    std::lock_guard<std::mutex> lock(model.mutex);
    at::NoGradGuard no_grad;
    const decoder& d = *model.decoder;
    const model_spec& spec = d.spec();
    const at::Device device = d.device();
    device_batch b = to_device(d, prompt, first_real);
    const int64_t B = b.batch, T0 = b.seq_len, steps = o.max_new_tokens;
    if (spec.traits().learned_positions)
        for (int64_t r = 0; r < B; ++r)
            if (b.length[size_t(r)] + steps - 1 > spec.max_positions)
                fail(CDAS_STATUS_INVALID_ARGUMENT,
                     "prompt row " + std::to_string(r) + " (" + std::to_string(b.length[size_t(r)]) +
                         " tokens) + options.max_new_tokens (" + std::to_string(steps) + ") - 1 exceeds " + std::string(spec.traits().display) + "'s " +
                         std::to_string(spec.max_positions) + " learned positions");
    std::fill(new_tokens_out, new_tokens_out + B * steps, -1);
    std::fill(lengths_out, lengths_out + B, 0);

    // Keys: the prompt's real slots, then one generated token per row per step (the last one is never fed).
    const int64_t capacity = T0 + steps - 1;
    kv_cache cache = d.new_cache(B, capacity);
    at::Tensor key_real = at::ones({B, capacity}, at::TensorOptions().dtype(at::kBool).device(device));
    key_real.narrow(1, 0, T0).copy_(b.real);

    intervention_tensors params;
    if (iv) params = intervention_on_device(d, *iv, B);

    // One pass over the query positions [B, Tq] starting at cache slot `slot0`; returns the
    // logits of each row's last query.
    auto run = [&](const at::Tensor& tokens, const at::Tensor& positions, int64_t slot0) {
        const int64_t tq = tokens.size(1);
        attention_inputs in = d.prepare(positions, key_real.narrow(1, 0, slot0 + tq), slot0);
        at::Tensor h = d.embed(tokens, positions);
        for (int64_t i = 0; i < spec.num_layers; ++i) {
            h = d.block(i, h, in, &cache);
            if (iv && i == iv->layer) {
                if (iv->source_positions && !params.values.defined()) {
                    // a = W h_L(source) from the prompt's un-clamped states, then fixed for every step
                    params.values = at::matmul(
                        source_states(h, b, iv->source_positions, d.device_of(iv->layer)).to(at::kFloat),
                        params.directions.t());
                }
                h = intervene(params, h, at::Tensor(),
                              clamp_rows_for(positions, key_real.narrow(1, slot0, tq), iv->prefix_len, d.device_of(iv->layer)));
            }
        }
        return d.logits(d.final_norm(h.narrow(1, tq - 1, 1))).squeeze(1);
    };

    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(uint64_t(o.seed));
    at::Tensor logits = run(b.tokens, b.positions, 0);
    std::vector<bool> done(size_t(B), false);
    std::vector<int64_t> next_position(b.length);
    for (int64_t step = 0; step < steps; ++step) {
        at::Tensor next = sample_next(logits, o, generator).to(at::kLong).contiguous();
        const int64_t* ids = next.data_ptr<int64_t>();
        bool all_done = true;
        for (int64_t r = 0; r < B; ++r) {
            if (done[size_t(r)]) continue;
            new_tokens_out[r * steps + step] = int32_t(ids[r]);
            lengths_out[r] += 1;
            for (int32_t e = 0; e < o.eos_count; ++e) done[size_t(r)] = done[size_t(r)] || ids[r] == o.eos_ids[e];
            all_done = all_done && done[size_t(r)];
        }
        if (all_done || step + 1 == steps) break;
        at::Tensor positions = at::from_blob(next_position.data(), {B, 1}, at::kLong).to(device, at::kLong, false, true);
        logits = run(next.view({B, 1}).to(device), positions, T0 + step);
        for (auto& p : next_position) ++p;
    }
}

namespace {

// Whether the target pass can supply the source states: every row's real source tokens are the
// first real tokens of its target row, and the rotary embedding is the same for both passes
// (longrope picks its factors from the longest sequence of the call).
bool source_states_in_target(const model_spec& spec, const cdas_objective_batch& batch, const objective_rows& rows) {
    int64_t longest_source = 0, longest_target = 0;
    for (int64_t r = 0; r < batch.source.batch; ++r) {
        const int64_t s_first = rows.source_first[size_t(r)], t_first = rows.target_first[size_t(r)];
        const int64_t s_len = batch_row_length(batch.source, r, s_first);
        const int64_t t_len = batch_row_length(batch.target, r, t_first);
        if (s_len > t_len) return false;
        const int32_t* s = batch.source.tokens + r * batch.source.seq_len + s_first;
        const int32_t* t = batch.target.tokens + r * batch.target.seq_len + t_first;
        if (!std::equal(s, s + s_len, t)) return false;
        longest_source = std::max(longest_source, s_len);
        longest_target = std::max(longest_target, t_len);
    }
    if (spec.rope_type == CDAS_ROPE_LONGROPE)
        return (longest_source > spec.rope_original_max_positions) ==
               (longest_target > spec.rope_original_max_positions);
    return true;
}

}  // namespace

// Packing (cdas_objective_batch.direction_index): the final hidden states at the compared rows
// (base_rows order) of several direction sets' examples. Each set's examples span their own padded
// length (the longest of them, as alone). Sets are grouped by that length: ascending, a group takes
// every set at most pack_padding tokens longer than its shortest, and goes through the layers as
// one batch [examples, the group's longest] (its last columns of the stacked batch, whose examples
// are left-padded). With pack_padding 0 each group has one length, so attention, padding and every
// shape are those of the call alone; no example is padded to the longest of the whole pack. The
// clamp is one fused DII per group: the plain one for a group of one set, the direction-set DII
// (each example with its set's W, one dW reduction per set over its own rows) otherwise.
// h: h_L of the stacked batch when the caller gave it (undefined: computed per group).
at::Tensor packed_student_rows(const decoder& d, int64_t layer, int64_t rank, int64_t sets, const at::Tensor& directions,
                               const at::Tensor& h_given, const at::Tensor& source, const device_batch& base,
                               const cdas_objective_batch& batch, const std::vector<std::pair<int64_t, int64_t>>& base_rows) {
    const model_spec& spec = d.spec();
    const at::Device device = d.device();
    const int64_t B = base.batch, T = base.seq_len;
    std::vector<int64_t> set_length(static_cast<size_t>(sets), 0);
    for (int64_t e = 0; e < B; ++e) {
        int64_t& l = set_length[size_t(batch.direction_index[e])];
        l = std::max(l, base.length[size_t(e)]);
    }
    // Groups of set lengths, ascending; examples in batch order.
    std::vector<int64_t> distinct(set_length);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    std::vector<int64_t> lengths;             // each group's padded length
    std::vector<size_t> group_of_length(distinct.size());
    for (size_t i = 0, g = 0; i < distinct.size(); ++i) {
        if (lengths.empty() || distinct[i] > distinct[g] + batch.pack_padding) {
            g = i;
            lengths.push_back(distinct[i]);
        }
        lengths.back() = distinct[i];
        group_of_length[i] = lengths.size() - 1;
    }
    std::vector<std::vector<int64_t>> members(lengths.size());
    for (int64_t e = 0; e < B; ++e) {
        const int64_t l = set_length[size_t(batch.direction_index[e])];
        members[group_of_length[size_t(std::lower_bound(distinct.begin(), distinct.end(), l) - distinct.begin())]].push_back(e);
    }
    std::vector<int64_t> slot(static_cast<size_t>(B));  // example e's first row in the concatenation of the groups' rows
    std::vector<int64_t> column0(static_cast<size_t>(B));
    std::vector<at::Tensor> normed;
    int64_t offset = 0;
    for (size_t g = 0; g < members.size(); ++g) {
        const std::vector<int64_t>& ex = members[g];
        const int64_t Bg = int64_t(ex.size()), Tg = lengths[g];
        // Left padding: every example's tokens end at the stacked batch's last column.
        const int64_t c0 = T - Tg;
        for (int64_t e : ex)
            if (base.first[size_t(e)] < c0 || base.first[size_t(e)] + base.length[size_t(e)] != T)
                fail(CDAS_STATUS_INVALID_ARGUMENT, "packing: batch.base must be left-padded (example " + std::to_string(e) +
                                                       " does not end at the last column)");
        const at::Tensor index = at::from_blob(const_cast<int64_t*>(ex.data()), {Bg}, at::kLong).to(device, at::kLong, false, true);
        const at::Tensor positions = base.positions.index_select(0, index).narrow(1, c0, Tg).contiguous();
        const at::Tensor real = base.real.index_select(0, index).narrow(1, c0, Tg).contiguous();
        const attention_inputs in = d.prepare(positions, real, 0);
        at::Tensor h;
        {
            at::NoGradGuard no_grad;
            if (h_given.defined()) {
                h = h_given.index_select(0, index).narrow(1, c0, Tg).contiguous();
            } else {
                h = d.embed(base.tokens.index_select(0, index).narrow(1, c0, Tg).contiguous(), positions);
                for (int64_t i = 0; i <= layer; ++i) h = d.block(i, h, in, nullptr);
            }
        }
        std::vector<int32_t> prefix(static_cast<size_t>(Bg)), set_of(static_cast<size_t>(Bg));
        bool one_set = true;
        for (int64_t j = 0; j < Bg; ++j) {
            prefix[size_t(j)] = batch.prefix_len ? batch.prefix_len[ex[size_t(j)]] : 0;
            set_of[size_t(j)] = batch.direction_index[ex[size_t(j)]];
            one_set = one_set && set_of[size_t(j)] == set_of[0];
            slot[size_t(ex[size_t(j)])] = offset + j * Tg;
            column0[size_t(ex[size_t(j)])] = c0;
        }
        const clamp_rows at_rows = clamp_rows_for(positions, real, batch.prefix_len ? prefix.data() : nullptr, device);
        const at::Tensor source_g = source.index_select(0, index);
        if (one_set) {
            h = clamp(h, directions.narrow(0, int64_t(set_of[0]) * rank, rank), source_g, at::Tensor(), at_rows);
        } else {
            const at::Tensor example_set = at::from_blob(set_of.data(), {Bg}, at::kInt).to(device, at::kInt, false, true);
            h = torch_ops::dii_sets(h.reshape({Bg * Tg, spec.hidden}), directions, sets, example_set, source_g, at::Tensor(),
                                    at_rows.example_index, at_rows.mask)
                    .view({Bg, Tg, spec.hidden});
        }
        for (int64_t i = layer + 1; i < spec.num_layers; ++i) h = d.block(i, h, in, nullptr);
        normed.push_back(d.final_norm(h).reshape({Bg * Tg, spec.hidden}));
        offset += Bg * Tg;
    }
    std::vector<int64_t> rows;
    rows.reserve(base_rows.size());
    for (auto [e, p] : base_rows) rows.push_back(slot[size_t(e)] + base.first[size_t(e)] - column0[size_t(e)] + p);
    const at::Tensor row_index =
        at::from_blob(rows.data(), {int64_t(rows.size())}, at::kLong).to(device, at::kLong, false, true);
    return (normed.size() == 1 ? normed[0] : at::cat(normed, 0)).index_select(0, row_index);
}

void model_cdas_objective(cdas_model& model, int32_t layer, int32_t rank, const float* directions_in,
                          const cdas_objective_batch& batch, const objective_rows& rows, float grad_scale,
                          float* loss_out, float* grad_directions_out) {
    std::lock_guard<std::mutex> lock(model.mutex);
    const decoder& d = *model.decoder;
    const model_spec& spec = d.spec();
    const at::Device layer_device = d.device_of(layer), head_device = d.head_device();
    const int64_t B = batch.base.batch;

    const bool cross_entropy = batch.loss == CDAS_LOSS_CROSS_ENTROPY;
    std::vector<std::pair<int64_t, int64_t>> base_rows, target_rows;
    std::vector<int64_t> labels;  // cross-entropy: the base row's next token at each compared row
    for (int64_t e = 0; e < B; ++e)
        for (int64_t k = 0; k < batch.compare_count[e]; ++k) {
            base_rows.emplace_back(e, batch.base_start[e] + k);
            if (cross_entropy)
                labels.push_back(batch.base.tokens[e * batch.base.seq_len + rows.base_first[size_t(e)] + batch.base_start[e] + k + 1]);
            else if (!batch.teacher_hidden)
                target_rows.emplace_back(e, batch.target_start[e] + k);
        }

    // Packing: set k's compared rows (indices into base_rows, in batch order).
    const bool packed = batch.direction_index != nullptr;
    // The packed pass (packed_student_rows) runs every group on one device.
    if (packed && d.stage_of(spec.num_layers - 1) != 0)
        fail(CDAS_STATUS_INVALID_ARGUMENT,
             "packing several direction sets (direction_index) is not supported on a model split over devices");
    const int32_t sets = packed ? batch.direction_count : 1;
    std::vector<std::vector<int64_t>> rows_of_set(static_cast<size_t>(sets));
    for (int64_t e = 0, row = 0; e < B; ++e)
        for (int64_t k = 0; k < batch.compare_count[e]; ++k, ++row)
            rows_of_set[size_t(packed ? batch.direction_index[e] : 0)].push_back(row);

    at::Tensor source, teacher, h, base_index;
    device_batch base;
    attention_inputs base_in;
    clamp_rows clamp_at;
    {
        at::NoGradGuard no_grad;
        const at::ScalarType dtype = d.options().dtype().toScalarType();
        // Read in place when already fp32 on the CPU: the caller's buffers outlive the call and
        // nothing below writes into its inputs.
        // Layer split: the states at the layer on its block's device, the teacher on the head's.
        auto given = [&](const float* data, at::IntArrayRef shape, at::Device on) {
            return at::from_blob(const_cast<float*>(data), shape, at::kFloat).to(on, dtype);
        };
        const int64_t compared = int64_t(base_rows.size());
        if (batch.source_hidden) source = given(batch.source_hidden, {B, spec.hidden}, layer_device);
        if (batch.teacher_hidden && !cross_entropy)
            teacher = given(batch.teacher_hidden, {compared, spec.hidden}, head_device);
        const bool target_pass = !cross_entropy && !teacher.defined();
        // The target sequence normally starts with the source prompt (xc + yc after xc); with
        // causal attention and positions counted from the first real token, its h_L at the source
        // position is the source state, so one pass gives both (docs/method.md section 1).
        const bool source_in_target =
            !source.defined() && target_pass && source_states_in_target(spec, batch, rows);
        attention_inputs in;
        if (!source.defined() && !source_in_target) {
            device_batch src = to_device(d, batch.source, rows.source_first);
            in = d.prepare(src.positions, src.real, 0);
            h = d.embed(src.tokens, src.positions);
            for (int64_t i = 0; i <= layer; ++i) h = d.block(i, h, in, nullptr);
            source = source_states(h, src, batch.source_positions, layer_device);
        }

        if (target_pass) {
            device_batch tgt = to_device(d, batch.target, rows.target_first);
            in = d.prepare(tgt.positions, tgt.real, 0);
            h = d.embed(tgt.tokens, tgt.positions);
            for (int64_t i = 0; i < spec.num_layers; ++i) {
                h = d.block(i, h, in, nullptr);
                if (i == layer && source_in_target) source = source_states(h, tgt, batch.source_positions, layer_device);
            }
            teacher = d.final_norm(h)
                          .reshape({tgt.batch * tgt.seq_len, spec.hidden})
                          .index_select(0, flat_rows(tgt, target_rows, head_device));
        }

        base = to_device(d, batch.base, rows.base_first);
        if (batch.base_hidden) {
            h = given(batch.base_hidden, {B, base.seq_len, spec.hidden}, layer_device);
        } else if (!packed) {
            base_in = d.prepare(base.positions, base.real, 0);
            h = d.embed(base.tokens, base.positions);
            for (int64_t i = 0; i <= layer; ++i) h = d.block(i, h, base_in, nullptr);
        }
        if (!packed) {
            if (base_in.stage.empty()) base_in = d.prepare(base.positions, base.real, 0);
            clamp_at = clamp_rows_for(base.positions, base.real, batch.prefix_len, layer_device);
            base_index = flat_rows(base, base_rows, head_device);
        }
    }

    // Autograd from here on: only the directions require a gradient, so the graph holds the
    // blocks above the layer and nothing below it.
    // Packing: one fused DII clamps every example with its own set's directions (example_set), and
    // rows never mix above the layer (attention stays within a row), so loss k depends on W_k alone
    // and the gradient of the sum is each set's own.
    at::AutoGradMode grad_mode(grad_directions_out != nullptr);
    at::Tensor directions =
        packed ? at::from_blob(const_cast<float*>(directions_in), {int64_t(sets) * rank, spec.hidden}, at::kFloat)
                     .to(layer_device, at::kFloat, false, /*copy=*/true)
               : host_directions(d, rank, directions_in, layer_device);
    if (grad_directions_out) directions.requires_grad_(true);
    at::Tensor student;
    if (!packed) {
        h = clamp(h, directions, source, at::Tensor(), clamp_at);
        for (int64_t i = layer + 1; i < spec.num_layers; ++i) h = d.block(i, h, base_in, nullptr);
        student = d.final_norm(h).reshape({B * base.seq_len, spec.hidden}).index_select(0, base_index);
    } else {
        student = packed_student_rows(d, layer, rank, sets, directions, batch.base_hidden ? h : at::Tensor(), source, base,
                                      batch, base_rows);
    }
    at::Tensor label_tensor;
    if (cross_entropy)
        label_tensor = at::from_blob(labels.data(), {int64_t(labels.size())}, at::kLong).to(head_device, at::kLong, false, true);
    // Each set's loss on exactly its own rows, so its mean is over its own rows, as alone.
    auto loss_of = [&](const at::Tensor& x_student, const at::Tensor& x_teacher, const at::Tensor& row_labels) {
        switch (batch.loss) {
            case CDAS_LOSS_JSD:
                return torch_ops::lm_head_jsd(x_student, x_teacher, d.head(), spec.final_logit_softcap, at::Tensor());
            case CDAS_LOSS_JSD_COMPOSED:
                return torch_ops::lm_head_jsd_composed_rows(x_student, x_teacher, d.head(), spec.final_logit_softcap).mean();
            default:
                return torch_ops::lm_head_cross_entropy(x_student, d.head(), row_labels, spec.final_logit_softcap);
        }
    };
    std::vector<at::Tensor> losses;
    if (!packed) {
        losses.push_back(loss_of(student, teacher, label_tensor));
    } else {
        for (int32_t k = 0; k < sets; ++k) {
            const std::vector<int64_t>& rows_k = rows_of_set[size_t(k)];
            at::Tensor index = at::from_blob(const_cast<int64_t*>(rows_k.data()), {int64_t(rows_k.size())}, at::kLong)
                                   .to(head_device, at::kLong, false, /*copy=*/true);
            losses.push_back(loss_of(student.index_select(0, index), cross_entropy ? at::Tensor() : teacher.index_select(0, index),
                                     cross_entropy ? label_tensor.index_select(0, index) : at::Tensor()));
        }
    }
    if (grad_directions_out) {
        at::Tensor total = losses[0];
        for (size_t k = 1; k < losses.size(); ++k) total = total + losses[k];
        total.backward();
        at::Tensor grad = (directions.grad() * double(grad_scale)).to(at::kCPU, at::kFloat).contiguous();
        std::memcpy(grad_directions_out, grad.data_ptr<float>(), size_t(grad.numel()) * sizeof(float));
    }
    for (size_t k = 0; k < losses.size(); ++k) loss_out[k] = losses[k].detach().to(at::kCPU).item<float>();
}

void model_sequence_logprobs(cdas_model& model, const cdas_intervention* iv, const cdas_logprob_batch& batch,
                             const std::vector<int64_t>& first_real, const float* upstream, float* logprob_out,
                             float* grad_out) {
    std::lock_guard<std::mutex> lock(model.mutex);
    const decoder& d = *model.decoder;
    const model_spec& spec = d.spec();
    const at::Device head_device = d.head_device();
    const cdas_token_batch& tokens = batch.tokens;
    const int64_t B = tokens.batch, T = tokens.seq_len, dim = spec.hidden;

    // Scored token k of example e is predicted by row score_start + k - 1.
    std::vector<std::pair<int64_t, int64_t>> predicting;
    std::vector<int64_t> labels, example_of_row;
    for (int64_t e = 0; e < B; ++e)
        for (int64_t k = 0; k < batch.score_count[e]; ++k) {
            const int64_t position = batch.score_start[e] + k;
            predicting.emplace_back(e, position - 1);
            labels.push_back(tokens.tokens[e * T + first_real[size_t(e)] + position]);
            example_of_row.push_back(e);
        }
    const bool differentiate = upstream != nullptr;
    const int64_t rank = iv ? iv->rank : 0;
    const int64_t grad_count = iv && iv->mode == CDAS_INTERVENTION_LOREFT ? 2 * rank * dim + rank : rank * dim;
    std::fill(logprob_out, logprob_out + B, 0.0f);
    if (differentiate) std::fill(grad_out, grad_out + grad_count, 0.0f);
    if (predicting.empty()) return;

    device_batch b = to_device(d, tokens, first_real);
    at::Tensor h, source, rows_index, label_tensor, example_index;
    attention_inputs in;
    clamp_rows on;
    {
        at::NoGradGuard no_grad;
        in = d.prepare(b.positions, b.real, 0);
        h = d.embed(b.tokens, b.positions);
        const int64_t below = iv ? iv->layer : spec.num_layers - 1;
        for (int64_t i = 0; i <= below; ++i) h = d.block(i, h, in, nullptr);
        if (iv) {
            if (iv->source_positions) source = source_states(h, b, iv->source_positions, d.device_of(iv->layer));
            on = clamp_rows_for(b.positions, b.real, batch.prefix_len, d.device_of(iv->layer));
        }
        rows_index = flat_rows(b, predicting, head_device);
        label_tensor =
            at::from_blob(labels.data(), {int64_t(labels.size())}, at::kLong).to(head_device, at::kLong, false, true);
        example_index = at::from_blob(example_of_row.data(), {int64_t(example_of_row.size())}, at::kLong)
                            .to(head_device, at::kLong, false, true);
    }

    // Autograd from here on when asked: only the intervention's parameters require a gradient,
    // so the graph holds the blocks above the layer and nothing below it.
    at::AutoGradMode grad_mode(differentiate);
    intervention_tensors params;
    if (iv) {
        params = intervention_on_device(d, *iv, B);
        if (differentiate) {
            params.directions.requires_grad_(true);
            if (params.loreft_weight.defined()) params.loreft_weight.requires_grad_(true);
            if (params.loreft_bias.defined()) params.loreft_bias.requires_grad_(true);
        }
        h = intervene(params, h, source, on);
        for (int64_t i = iv->layer + 1; i < spec.num_layers; ++i) h = d.block(i, h, in, nullptr);
    }
    at::Tensor x = d.final_norm(h).reshape({B * T, dim}).index_select(0, rows_index);
    at::Tensor row_logprobs = torch_ops::lm_head_token_logprobs(x, d.head(), label_tensor, spec.final_logit_softcap);
    {
        at::NoGradGuard no_grad;
        at::Tensor sums = at::zeros({B}, at::TensorOptions().dtype(at::kDouble).device(head_device))
                              .index_add_(0, example_index, row_logprobs.detach().to(at::kDouble))
                              .to(at::kCPU, at::kFloat)
                              .contiguous();
        std::memcpy(logprob_out, sums.data_ptr<float>(), size_t(B) * sizeof(float));
    }
    if (!differentiate) return;
    at::Tensor weights = at::from_blob(const_cast<float*>(upstream), {B}, at::kFloat)
                             .to(head_device, at::kFloat, false, true)
                             .index_select(0, example_index);
    (row_logprobs * weights).sum().backward();
    auto copy_grad = [&](const at::Tensor& parameter, int64_t offset) {
        const at::Tensor& g = parameter.grad();
        if (!g.defined()) return;  // no row took part: the gradient is 0 (already written)
        at::Tensor host = g.to(at::kCPU, at::kFloat).contiguous();
        std::memcpy(grad_out + offset, host.data_ptr<float>(), size_t(host.numel()) * sizeof(float));
    };
    copy_grad(params.directions, 0);
    if (params.loreft_weight.defined()) {
        copy_grad(params.loreft_weight, rank * dim);
        copy_grad(params.loreft_bias, 2 * rank * dim);
    }
}

}  // namespace cdas::model
