// Layer split (cdas.h split_*, docs/scale-out.md "Layer split"): every family's tiny model split
// over CPU placement stages (cpu:0, cpu:1, cpu:2: each stage its own weights and attention inputs,
// every boundary through the same transfer as between CUDA devices, a real copy here) against the
// unsplit model: logits, hidden states, generated tokens, the CDAS and DAS objectives with their
// gradient, and steered log-probabilities with theirs, bit for bit. Split before and after the
// intervention layer and right before the head. Then the config's checks and the automatic
// placement by free memory (model/placement.h) on constructed sizes.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cdas.h"
#include "core/error.h"
#include "harness.h"
#include "model/placement.h"
#include "model/spec.h"
#include "model_reference.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

std::vector<int32_t> tokens_of(std::mt19937_64& rng, int64_t n, int32_t vocab) {
    std::uniform_int_distribution<int32_t> dist(0, vocab - 1);
    std::vector<int32_t> t(static_cast<size_t>(n));
    for (auto& x : t) x = dist(rng);
    return t;
}

// Rows left-padded with token 0 to the longest; the vectors own what view() points at.
struct rows_batch {
    int64_t batch = 0, seq_len = 0;
    std::vector<int32_t> tokens;
    std::vector<uint8_t> mask;
    explicit rows_batch(const std::vector<std::vector<int32_t>>& rows) {
        batch = int64_t(rows.size());
        for (const auto& r : rows) seq_len = std::max(seq_len, int64_t(r.size()));
        tokens.assign(size_t(batch * seq_len), 0);
        mask.assign(size_t(batch * seq_len), 0);
        for (int64_t b = 0; b < batch; ++b) {
            const int64_t off = seq_len - int64_t(rows[size_t(b)].size());
            for (size_t t = 0; t < rows[size_t(b)].size(); ++t) {
                tokens[size_t(b * seq_len + off) + t] = rows[size_t(b)][t];
                mask[size_t(b * seq_len + off) + t] = 1;
            }
        }
    }
    cdas_token_batch view() const { return cdas_token_batch{batch, seq_len, tokens.data(), mask.data()}; }
};

// The largest |a - b| (0 only when equal to the bit, NaN aside).
template <typename T>
double max_difference(const std::vector<T>& a, const std::vector<T>& b) {
    if (a.size() != b.size()) return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(double(a[i]) - double(b[i])));
    return worst;
}

// Bit-identical, reported with the largest difference when not.
template <typename T>
void check_same(const std::string& what, const std::vector<T>& split, const std::vector<T>& whole) {
    CHECK_MSG(split.size() == whole.size() && std::memcmp(split.data(), whole.data(), split.size() * sizeof(T)) == 0,
              what + ": split differs from unsplit by up to " + std::to_string(max_difference(split, whole)));
}

// Everything the test compares, from one model.
struct outputs {
    std::vector<float> logits, hidden, final_hidden, steered_logits;
    std::vector<int32_t> greedy, greedy_lengths, sampled, sampled_lengths;
    float jsd_loss = 0, ce_loss = 0;
    std::vector<float> jsd_grad, ce_grad;
    std::vector<float> logprobs, logprob_grad;
};

outputs run_all(cdas_model* model, const tiny_model& m, std::mt19937_64 rng) {
    const int32_t V = m.config.vocab_size, d = m.config.hidden_size, rank = 2, layer = 1;
    outputs o;
    const std::string label = m.label;
    // Two rows of different lengths: padding, positions from the first real token.
    rows_batch in({tokens_of(rng, 7, V), tokens_of(rng, 4, V)});
    const cdas_token_batch view = in.view();
    const size_t BT = size_t(in.batch * in.seq_len);
    o.logits.resize(BT * size_t(V));
    o.hidden.resize(BT * size_t(d));
    o.final_hidden.resize(BT * size_t(d));
    CHECK_STATUS(cdas_model_forward(model, &view, nullptr, layer, o.hidden.data(), o.final_hidden.data(), o.logits.data()),
                 CDAS_STATUS_OK);

    // The clamp at `layer` with values read from the batch (source positions).
    std::vector<double> w = random_normal(rng, rank * d, 1.0 / std::sqrt(double(d)));
    std::vector<float> W(w.begin(), w.end());
    std::vector<int32_t> source_pos = {2, 1}, prefix = {1, 0};
    cdas_intervention iv{};
    iv.layer = layer;
    iv.rank = rank;
    iv.directions = W.data();
    iv.source_positions = source_pos.data();
    iv.prefix_len = prefix.data();
    o.steered_logits.resize(BT * size_t(V));
    CHECK_STATUS(cdas_model_forward(model, &view, &iv, -1, nullptr, nullptr, o.steered_logits.data()), CDAS_STATUS_OK);

    // Generation with the KV cache (per block, on the block's stage), greedy and sampled.
    cdas_generation_options g{};
    CHECK_STATUS(cdas_generation_options_default(&g), CDAS_STATUS_OK);
    g.max_new_tokens = 5;
    o.greedy.resize(size_t(in.batch * g.max_new_tokens));
    o.greedy_lengths.resize(size_t(in.batch));
    CHECK_STATUS(cdas_model_generate(model, &view, &iv, &g, o.greedy.data(), o.greedy_lengths.data()), CDAS_STATUS_OK);
    g.temperature = 0.9f;
    g.top_k = 7;
    g.seed = 11;
    o.sampled.resize(o.greedy.size());
    o.sampled_lengths.resize(o.greedy_lengths.size());
    CHECK_STATUS(cdas_model_generate(model, &view, nullptr, &g, o.sampled.data(), o.sampled_lengths.data()), CDAS_STATUS_OK);

    // The CDAS objective (JSD against the target pass) and DAS's (cross-entropy), with gradients.
    std::vector<std::vector<int32_t>> x = {tokens_of(rng, 4, V), tokens_of(rng, 6, V)};
    std::vector<std::vector<int32_t>> xc = {tokens_of(rng, 5, V), tokens_of(rng, 3, V)};
    std::vector<std::vector<int32_t>> yc = {tokens_of(rng, 3, V), tokens_of(rng, 4, V)};
    std::vector<std::vector<int32_t>> base_rows = x, target_rows = xc;
    for (int b = 0; b < 2; ++b) {
        base_rows[size_t(b)].insert(base_rows[size_t(b)].end(), yc[size_t(b)].begin(), yc[size_t(b)].end());
        target_rows[size_t(b)].insert(target_rows[size_t(b)].end(), yc[size_t(b)].begin(), yc[size_t(b)].end());
    }
    rows_batch base(base_rows), source(xc), target(target_rows);
    std::vector<int32_t> o_prefix = {1, 0}, o_source = {4, 2}, base_start = {3, 5}, target_start = {4, 2}, count = {3, 4};
    std::vector<int32_t> ce_count = {2, 3};  // the next token must be in the row
    cdas_objective_batch batch{base.view(), source.view(), target.view(), o_prefix.data(), o_source.data(),
                               base_start.data(), target_start.data(), count.data(), CDAS_LOSS_JSD};
    o.jsd_grad.resize(size_t(rank * d));
    CHECK_STATUS(cdas_model_cdas_objective(model, layer, rank, W.data(), &batch, 0.5f, &o.jsd_loss, o.jsd_grad.data()),
                 CDAS_STATUS_OK);
    batch.loss = CDAS_LOSS_CROSS_ENTROPY;
    batch.compare_count = ce_count.data();
    o.ce_grad.resize(size_t(rank * d));
    CHECK_STATUS(cdas_model_cdas_objective(model, layer, rank, W.data(), &batch, 1.0f, &o.ce_loss, o.ce_grad.data()),
                 CDAS_STATUS_OK);

    // Steered log-probabilities of responses (the baselines' objective) with their gradient.
    std::vector<float> values = {0.5f, -1.0f, 2.0f, 0.25f};
    cdas_intervention add{};
    add.layer = layer;
    add.rank = rank;
    add.directions = W.data();
    add.values = values.data();
    add.mode = CDAS_INTERVENTION_ADD;
    std::vector<int32_t> score_start = {4, 2}, score_count = {3, 3};
    cdas_logprob_batch lp{base.view(), nullptr, score_start.data(), score_count.data()};
    std::vector<float> upstream = {1.0f, -0.5f};
    o.logprobs.resize(2);
    o.logprob_grad.resize(size_t(rank * d));
    CHECK_STATUS(cdas_model_sequence_logprobs(model, &add, &lp, upstream.data(), o.logprobs.data(), o.logprob_grad.data()),
                 CDAS_STATUS_OK);
    return o;
}

struct split_config {
    std::vector<int32_t> types, indices, map;
    void apply(cdas_model_config& c) const {
        c.split_count = int32_t(types.size());
        c.split_device_types = types.data();
        c.split_device_indices = indices.data();
        c.split_layer_device = map.empty() ? nullptr : map.data();
    }
};

split_config cpu_stages(std::vector<int32_t> map) {
    split_config s;
    const int32_t n = map.empty() ? 2 : *std::max_element(map.begin(), map.end()) + 1;
    for (int32_t k = 0; k < n; ++k) {
        s.types.push_back(CDAS_DEVICE_CPU);
        s.indices.push_back(k);
    }
    s.map = std::move(map);
    return s;
}

std::vector<int32_t> layer_devices(cdas_model* model, int64_t layers) {
    std::vector<int32_t> out(size_t(layers), -1);
    int64_t count = -1;
    CHECK_STATUS(cdas_model_layer_devices(model, out.data(), layers, &count), CDAS_STATUS_OK);
    CHECK(count == layers);
    return out;
}

}  // namespace

TEST(split_cpu_stages_equal_unsplit_for_every_family) {
    auto rng = make_rng("split_cpu_stages_equal_unsplit_for_every_family");
    // The tiny models have 3 blocks and the objective's layer is 1: split right before it, right
    // after it (the head's stage holding only the last block), and one block per stage.
    const std::vector<std::vector<int32_t>> maps = {{0, 1, 1}, {0, 0, 1}, {0, 1, 2}};
    int compared = 0;
    for (tiny_model& m : tiny_models(rng)) {
        const std::mt19937_64 inputs = rng;
        model_handle whole(m);
        CHECK_MSG(whole.ptr, m.label + ": create: " + cdas_last_error());
        if (!whole.ptr) continue;
        const outputs want = run_all(whole.ptr, m, inputs);
        for (const std::vector<int32_t>& map : maps) {
            const split_config split = cpu_stages(map);
            cdas_model_config config = m.config;
            split.apply(config);
            model_handle staged(config, m.make_views());
            const std::string label = m.label + " split " + std::to_string(map[0]) + std::to_string(map[1]) +
                                      std::to_string(map[2]);
            CHECK_MSG(staged.ptr, label + ": create: " + cdas_last_error());
            if (!staged.ptr) continue;
            CHECK(layer_devices(staged.ptr, 3) == map);
            const outputs got = run_all(staged.ptr, m, inputs);
            check_same(label + " logits", got.logits, want.logits);
            check_same(label + " hidden", got.hidden, want.hidden);
            check_same(label + " final hidden", got.final_hidden, want.final_hidden);
            check_same(label + " steered logits", got.steered_logits, want.steered_logits);
            check_same(label + " greedy tokens", got.greedy, want.greedy);
            check_same(label + " greedy lengths", got.greedy_lengths, want.greedy_lengths);
            check_same(label + " sampled tokens", got.sampled, want.sampled);
            check_same(label + " sampled lengths", got.sampled_lengths, want.sampled_lengths);
            check_same(label + " JSD loss", std::vector<float>{got.jsd_loss}, std::vector<float>{want.jsd_loss});
            check_same(label + " JSD gradient", got.jsd_grad, want.jsd_grad);
            check_same(label + " cross-entropy loss", std::vector<float>{got.ce_loss}, std::vector<float>{want.ce_loss});
            check_same(label + " cross-entropy gradient", got.ce_grad, want.ce_grad);
            check_same(label + " log-probs", got.logprobs, want.logprobs);
            check_same(label + " log-prob gradient", got.logprob_grad, want.logprob_grad);
            ++compared;
        }
        // The gradient is not zero (a split that dropped it would agree with nothing above, but
        // say it plainly).
        CHECK_MSG(max_difference(want.jsd_grad, std::vector<float>(want.jsd_grad.size(), 0.0f)) > 0,
                  m.label + ": zero JSD gradient");
    }
    CHECK(compared >= 3 * 5);
}

TEST(split_tied_head_gets_its_own_copy_and_one_entry_is_no_split) {
    auto rng = make_rng("split_tied_head_gets_its_own_copy_and_one_entry_is_no_split");
    int tied = 0;
    for (tiny_model& m : tiny_models(rng)) {
        if (!m.config.tie_word_embeddings) continue;
        ++tied;
        // Even ranges when no map is given (split_auto 0): blocks {0, 0, 1}.
        split_config even = cpu_stages({});
        cdas_model_config config = m.config;
        even.apply(config);
        model_handle staged(config, m.make_views());
        CHECK_MSG(staged.ptr, m.label + ": " + cdas_last_error());
        if (!staged.ptr) continue;
        CHECK(layer_devices(staged.ptr, 3) == (std::vector<int32_t>{0, 0, 1}));
        // The head on the last stage is a copy: the model still reads the caller's embedding in place.
        int32_t borrows = 0;
        CHECK_STATUS(cdas_model_borrows_host_memory(staged.ptr, &borrows), CDAS_STATUS_OK);
        CHECK(borrows == 1);
        std::vector<int32_t> tokens = tokens_of(rng, 6, m.config.vocab_size);
        cdas_token_batch in{1, 6, tokens.data(), nullptr};
        std::vector<float> a(size_t(6 * m.config.vocab_size)), b(a.size()), c(a.size());
        model_handle whole(m);
        CHECK_STATUS(cdas_model_forward(whole.ptr, &in, nullptr, -1, nullptr, nullptr, a.data()), CDAS_STATUS_OK);
        CHECK_STATUS(cdas_model_forward(staged.ptr, &in, nullptr, -1, nullptr, nullptr, b.data()), CDAS_STATUS_OK);
        check_same(m.label + " even split, tied head", b, a);
        // One entry is the same as device_type/device_index.
        split_config one;
        one.types = {CDAS_DEVICE_CPU};
        one.indices = {0};
        cdas_model_config single = m.config;
        one.apply(single);
        model_handle one_device(single, m.make_views());
        CHECK_MSG(one_device.ptr, m.label + ": " + cdas_last_error());
        if (!one_device.ptr) continue;
        CHECK(layer_devices(one_device.ptr, 3) == (std::vector<int32_t>{0, 0, 0}));
        CHECK_STATUS(cdas_model_forward(one_device.ptr, &in, nullptr, -1, nullptr, nullptr, c.data()), CDAS_STATUS_OK);
        check_same(m.label + " one-entry split", c, a);
    }
    CHECK(tied > 0);
}

TEST(split_config_is_checked) {
    auto rng = make_rng("split_config_is_checked");
    tiny_model m = tiny_models(rng).front();
    const std::vector<cdas_tensor_view> views = m.make_views();
    auto create_fails = [&](const split_config& s, int32_t auto_flag, cdas_status want, const char* needle) {
        cdas_model_config c = m.config;
        s.apply(c);
        c.split_auto = auto_flag;
        cdas_model* model = nullptr;
        CHECK_FAILS(cdas_model_create(&c, views.data(), int64_t(views.size()), &model), want, needle);
        CHECK(model == nullptr);
        cdas_model_destroy(model);
    };
    split_config four = cpu_stages({});
    four.types = {0, 0, 0, 0};
    four.indices = {0, 1, 2, 3};
    create_fails(four, 0, CDAS_STATUS_INVALID_ARGUMENT, "more devices than the model's 3 blocks");
    split_config twice = cpu_stages({});
    twice.indices = {1, 1};
    create_fails(twice, 0, CDAS_STATUS_INVALID_ARGUMENT, "cpu:1 is listed twice");
    split_config unknown = cpu_stages({});
    unknown.types = {CDAS_DEVICE_CPU, 7};
    create_fails(unknown, 0, CDAS_STATUS_INVALID_ARGUMENT, "split_device_types[1]");
    split_config negative = cpu_stages({});
    negative.indices = {0, -1};
    create_fails(negative, 0, CDAS_STATUS_INVALID_ARGUMENT, "split_device_indices[1]");
    create_fails(cpu_stages({0, 1, 0}), 0, CDAS_STATUS_INVALID_ARGUMENT, "split_layer_device[2]");
    create_fails(cpu_stages({1, 1, 1}), 0, CDAS_STATUS_INVALID_ARGUMENT, "split_layer_device[0]");
    split_config unused = cpu_stages({0, 0, 1});
    unused.types.push_back(CDAS_DEVICE_CPU);
    unused.indices.push_back(2);
    create_fails(unused, 0, CDAS_STATUS_INVALID_ARGUMENT, "without blocks");
    create_fails(cpu_stages({0, 1, 1}), 1, CDAS_STATUS_INVALID_ARGUMENT, "split_auto must be 0");
    // A CUDA device this libtorch or machine lacks: a status, never an abort.
    split_config cuda = cpu_stages({});
    cuda.types = {CDAS_DEVICE_CPU, CDAS_DEVICE_CUDA};
    cuda.indices = {0, 63};
    cdas_model_config c = m.config;
    cuda.apply(c);
    cdas_model* model = nullptr;
    const cdas_status s = cdas_model_create(&c, views.data(), int64_t(views.size()), &model);
    CHECK_MSG(s == CDAS_STATUS_UNSUPPORTED || s == CDAS_STATUS_INVALID_ARGUMENT,
              std::string("cuda:63: status ") + std::to_string(s) + " " + cdas_last_error());
    CHECK_MSG(std::string(cdas_last_error()).find("cuda:63") != std::string::npos, cdas_last_error());
    CHECK(model == nullptr);
    // The lists are zero without a split.
    cdas_model_config stray = m.config;
    const int32_t type = CDAS_DEVICE_CPU;
    stray.split_device_types = &type;
    CHECK_FAILS(cdas_model_create(&stray, views.data(), int64_t(views.size()), &model), CDAS_STATUS_INVALID_ARGUMENT,
                "split_count is 0");
}

namespace {

// Each device's share of a placement: what the map puts there (embedding with block 0, head with
// the last block).
std::vector<int64_t> shares(const cdas::model::model_bytes& b, const std::vector<int32_t>& map, size_t devices) {
    std::vector<int64_t> s(devices, 0);
    for (size_t i = 0; i < map.size(); ++i) s[size_t(map[i])] += b.blocks[i];
    s[size_t(map.front())] += b.embed;
    s[size_t(map.back())] += b.head;
    return s;
}

bool contiguous(const std::vector<int32_t>& map) {
    for (size_t i = 1; i < map.size(); ++i)
        if (map[i] < map[i - 1]) return false;
    return true;
}

}  // namespace

TEST(split_placement_by_free_memory) {
    using cdas::model::model_bytes;
    using cdas::model::place_by_memory;
    const std::vector<std::string> two = {"cuda:0", "cuda:1"};
    model_bytes b;
    b.embed = 50;
    b.blocks.assign(4, 100);
    b.head = 50;
    // Plenty of room: the largest share as small as whole blocks allow (250 of 500).
    std::vector<int32_t> map = place_by_memory(b, {1000, 1000}, two);
    CHECK(map == (std::vector<int32_t>{0, 0, 1, 1}));
    // A small first device gets what fits (the embedding and block 0), never more.
    map = place_by_memory(b, {160, 1000}, two);
    CHECK(map == (std::vector<int32_t>{0, 1, 1, 1}));
    CHECK(shares(b, map, 2)[0] <= 160);
    // A device with room for no block is left out; the rest go on.
    map = place_by_memory(b, {10, 1000, 1000}, {"cuda:0", "cuda:1", "cuda:2"});
    CHECK(map == (std::vector<int32_t>{1, 1, 2, 2}));
    // Unbounded (CPU) entries balance too.
    map = place_by_memory(b, {-1, -1}, two);
    CHECK(map == (std::vector<int32_t>{0, 0, 1, 1}));
    // 28 blocks over 3 devices, one of them smaller: balanced within one block, none over its room.
    model_bytes big;
    big.embed = 700;
    big.blocks.assign(28, 250);
    big.head = 700;
    const std::vector<int64_t> room = {3600, 2500, 4000};
    map = place_by_memory(big, room, {"a", "b", "c"});
    CHECK(map.size() == 28 && contiguous(map));
    const std::vector<int64_t> s = shares(big, map, 3);
    int64_t total = 0;
    for (size_t k = 0; k < 3; ++k) {
        CHECK_MSG(s[k] <= room[k], "device " + std::to_string(k) + " share " + std::to_string(s[k]));
        total += s[k];
    }
    CHECK(total == 700 + 28 * 250 + 700);
    // The largest share is the least of every contiguous placement that fits (all cut points).
    int64_t best = INT64_MAX;
    for (int64_t c1 = 0; c1 <= 28; ++c1)
        for (int64_t c2 = c1; c2 <= 28; ++c2) {
            std::vector<int32_t> m(28);
            for (int64_t i = 0; i < 28; ++i) m[size_t(i)] = i < c1 ? 0 : i < c2 ? 1 : 2;
            std::vector<int64_t> t = shares(big, m, 3);
            if (t[0] <= room[0] && t[1] <= room[1] && t[2] <= room[2]) best = std::min(best, *std::max_element(t.begin(), t.end()));
        }
    CHECK_MSG(*std::max_element(s.begin(), s.end()) == best,
              "largest share " + std::to_string(*std::max_element(s.begin(), s.end())) + ", best " + std::to_string(best));
    // Too big: one error naming what it needs and every device's room.
    try {
        place_by_memory(b, {200, 200}, two);
        CHECK_MSG(false, "a model of 500 bytes placed in 2 x 200");
    } catch (const cdas::error& e) {
        const std::string what = e.what();
        CHECK(e.status() == CDAS_STATUS_OUT_OF_MEMORY);
        CHECK_MSG(what.find("does not fit") != std::string::npos && what.find("cuda:0") != std::string::npos &&
                      what.find("cuda:1") != std::string::npos && what.find('\n') == std::string::npos,
                  what);
    }
    // Even ranges: lengths differ by at most one, every device used.
    std::vector<int32_t> halves(28, 0);
    std::fill(halves.begin() + 14, halves.end(), 1);
    CHECK(cdas::model::place_evenly(28, 2) == halves);
    CHECK(cdas::model::place_evenly(3, 3) == (std::vector<int32_t>{0, 1, 2}));
    CHECK(cdas::model::place_evenly(5, 2) == (std::vector<int32_t>{0, 0, 0, 1, 1}));
}

TEST(split_weight_bytes_count_every_tensor) {
    auto rng = make_rng("split_weight_bytes_count_every_tensor");
    for (tiny_model& m : tiny_models(rng)) {
        const cdas::model::model_spec spec = cdas::model::spec_from_config(m.config);
        const cdas::model::model_bytes b = cdas::model::weight_bytes(spec);
        int64_t blocks = 0, all = 0;
        for (int64_t x : b.blocks) blocks += x;
        for (const auto& [name, shape] : m.shapes) {
            int64_t n = 4;
            for (int64_t s : shape) n *= s;
            all += n;
        }
        // Every tensor of the checkpoint once, plus the tied head's copy.
        const int64_t tied = m.config.tie_word_embeddings && !m.shapes.count("lm_head.weight")
                                 ? int64_t(4) * m.config.vocab_size * m.config.hidden_size
                                 : 0;
        CHECK_MSG(b.embed + blocks + b.head == all + tied, m.label + ": " + std::to_string(b.embed + blocks + b.head) +
                                                              " bytes counted, " + std::to_string(all + tied) + " in the checkpoint");
    }
}

// ---- The model runtime on a CUDA device against the CPU ------------------------------------------
// Every family's tiny model on cuda:0 and split cpu:0 | cuda:0 (embedding and block 0 on the CPU,
// the rest and the head on the GPU) against the same model on the CPU: the same outputs as
// split_cpu_stages_equal_unsplit_for_every_family compares, within fp32 rounding (cuBLAS and the
// CPU's GEMMs sum in other orders; libtorch's TF32 for matmuls is off by default, and the model
// runtime does not turn it on). Greedy tokens must agree; sampled tokens come from each device's own
// random stream, so only their lengths and range are checked. Skipped without a GPU or with a
// CPU-only libtorch (benchmarks/gpu/model-check.sh runs these on a GPU machine).

namespace {

// |got - want| <= tol * max(1, max |want|) everywhere; reported with the worst difference.
void check_close(const std::string& what, const std::vector<float>& got, const std::vector<float>& want, double tol) {
    double scale = 1;
    for (float v : want) scale = std::max(scale, std::fabs(double(v)));
    const double diff = max_difference(got, want);
    CHECK_MSG(got.size() == want.size() && diff <= tol * scale,
              what + ": differs from the CPU by " + std::to_string(diff) + " (allowed " + std::to_string(tol * scale) + ")");
}

// Whether cuda:0 exists and libtorch has CUDA.
bool have_cuda_torch() {
    int32_t gpus = 0;
    cdas_cuda_device_count(&gpus);
    return gpus > 0 && !torch_is_cpu_only();
}

void compare_with_cpu(const std::string& label, const outputs& got, const outputs& want, int32_t vocab) {
    check_close(label + " logits", got.logits, want.logits, 1e-4);
    check_close(label + " hidden", got.hidden, want.hidden, 1e-4);
    check_close(label + " final hidden", got.final_hidden, want.final_hidden, 1e-4);
    check_close(label + " steered logits", got.steered_logits, want.steered_logits, 1e-4);
    check_same(label + " greedy tokens", got.greedy, want.greedy);
    check_same(label + " greedy lengths", got.greedy_lengths, want.greedy_lengths);
    CHECK(got.sampled_lengths.size() == want.sampled_lengths.size());
    for (size_t b = 0; b < got.sampled_lengths.size(); ++b) {
        CHECK_MSG(got.sampled_lengths[b] >= 1 && got.sampled_lengths[b] <= 5, label + " sampled length out of range");
    }
    for (int32_t t : got.sampled) CHECK_MSG(t >= 0 && t < vocab, label + " sampled token outside the vocabulary");
    check_close(label + " JSD loss", {got.jsd_loss}, {want.jsd_loss}, 1e-5);
    check_close(label + " JSD gradient", got.jsd_grad, want.jsd_grad, 1e-3);
    check_close(label + " cross-entropy loss", {got.ce_loss}, {want.ce_loss}, 1e-5);
    check_close(label + " cross-entropy gradient", got.ce_grad, want.ce_grad, 1e-3);
    check_close(label + " log-probs", got.logprobs, want.logprobs, 1e-4);
    check_close(label + " log-prob gradient", got.logprob_grad, want.logprob_grad, 1e-3);
}

// Every family's tiny model created with `place` applied to its config, against the same model on
// the CPU; `map`, when not empty, is the block-to-stage map the placed model must report.
void compare_placed_with_cpu(const char* case_name, const std::string& where,
                             void (*place)(cdas_model_config&, split_config&), const std::vector<int32_t>& map) {
    auto rng = make_rng(case_name);
    int compared = 0;
    for (tiny_model& m : tiny_models(rng)) {
        const std::mt19937_64 inputs = rng;
        model_handle cpu(m);
        CHECK_MSG(cpu.ptr, m.label + ": create on the CPU: " + cdas_last_error());
        if (!cpu.ptr) continue;
        const outputs want = run_all(cpu.ptr, m, inputs);
        cdas_model_config config = m.config;
        split_config split;  // owns what a split config points at, for as long as the model is created
        place(config, split);
        model_handle placed(config, m.make_views());
        CHECK_MSG(placed.ptr, m.label + ": create " + where + ": " + cdas_last_error());
        if (!placed.ptr) continue;
        if (!map.empty()) CHECK(layer_devices(placed.ptr, 3) == map);
        compare_with_cpu(m.label + " " + where, run_all(placed.ptr, m, inputs), want, m.config.vocab_size);
        ++compared;
    }
    CHECK(compared >= 5);
}

}  // namespace

TEST(cuda_model_matches_cpu_for_every_family) {
    if (!have_cuda_torch()) SKIP("needs a CUDA device and a libtorch with CUDA");
    compare_placed_with_cpu("cuda_model_matches_cpu_for_every_family", "on cuda:0",
                            [](cdas_model_config& config, split_config&) {
                                config.device_type = CDAS_DEVICE_CUDA;
                                config.device_index = 0;
                            },
                            {});
}

TEST(cuda_split_cpu_then_gpu_matches_cpu_for_every_family) {
    if (!have_cuda_torch()) SKIP("needs a CUDA device and a libtorch with CUDA");
    compare_placed_with_cpu("cuda_split_cpu_then_gpu_matches_cpu_for_every_family", "split cpu:0 | cuda:0",
                            [](cdas_model_config& config, split_config& split) {
                                split.types = {CDAS_DEVICE_CPU, CDAS_DEVICE_CUDA};
                                split.indices = {0, 0};
                                split.map = {0, 1, 1};
                                split.apply(config);
                            },
                            {0, 1, 1});
}
