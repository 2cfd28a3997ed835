// Concept packing at the ABI: one training step of K concepts as K cdas_model_cdas_objective
// calls (one by one, as `train --concepts` without --pack) against one call with the K direction
// sets stacked (direction_index, as --pack K), on a GPT-2-shaped model with random weights at the
// demo's size by default. The w-independent states are given, as the trainer's state cache gives
// them. Checks first that each concept's packed loss and gradient equal its own call's (the bench
// refuses to time a wrong result), then prints medians and concepts per hour of steps.
// Not a test: run by hand or by benchmarks/gpu/check-and-bench.sh (step pack).
//   cdas_bench_pack [--device cpu|cuda] [--dtype f32|bf16|f16] [--concepts K] [--batch B]
//                   [--prompt P] [--response R] [--layer L] [--repeats N] [--threads N]
//                   [--hidden d] [--layers N] [--vocab V]
// Exit: 0 done, 1 a call failed or packed differs from one by one, 2 bad arguments,
// 77 this libcdas has no model runtime or no such device (a skip, not a pass).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cdas.h"
#include "model_reference.h"

namespace {

using cdas_test::tiny_model;

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "cdas_bench_pack: %s\n", what.c_str());
    std::exit(1);
}

void check(cdas_status s, const char* call) {
    if (s != CDAS_STATUS_OK) fail(std::string(call) + " failed: " + cdas_last_error());
}

double median_seconds(int repeats, const std::function<void()>& run) {
    run();  // warm-up: allocator, BLAS buffers, kernels' first launch
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        auto start = std::chrono::steady_clock::now();
        run();  // every call returns host results, so it has finished on the device
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

// One concept's minibatch: B examples with prompt P and response R, no padding (one length), and
// the states the trainer's cache would give (from cdas_model_forward on the same rows).
struct concept_batch {
    int64_t B = 0, T = 0;
    std::vector<int32_t> base, source, target, prefix, source_pos, base_start, target_start, count;
    std::vector<float> base_hidden, source_hidden, teacher_hidden;
};

concept_batch make_concept(std::mt19937_64& rng, cdas_model* model, int32_t V, int32_t d, int32_t layer, int64_t B,
                           int64_t P, int64_t R) {
    std::uniform_int_distribution<int32_t> tok(1, V - 1);
    concept_batch c;
    c.B = B;
    c.T = P + R;
    for (int64_t b = 0; b < B; ++b) {
        std::vector<int32_t> x(static_cast<size_t>(P)), xc(static_cast<size_t>(P)), yc(static_cast<size_t>(R));
        for (auto& t : x) t = tok(rng);
        for (auto& t : xc) t = tok(rng);
        for (auto& t : yc) t = tok(rng);
        c.base.insert(c.base.end(), x.begin(), x.end());
        c.base.insert(c.base.end(), yc.begin(), yc.end());
        c.source.insert(c.source.end(), xc.begin(), xc.end());
        c.source.insert(c.source.end(), yc.begin(), yc.end());  // same length as base: one [B x T] batch
        c.target.insert(c.target.end(), xc.begin(), xc.end());
        c.target.insert(c.target.end(), yc.begin(), yc.end());
        c.prefix.push_back(int32_t(P));
        c.source_pos.push_back(int32_t(P - 1));
        c.base_start.push_back(int32_t(P - 1));   // the rows that predict the response tokens
        c.target_start.push_back(int32_t(P - 1));
        c.count.push_back(int32_t(R));
    }
    cdas_token_batch base{B, c.T, c.base.data(), nullptr}, source{B, c.T, c.source.data(), nullptr},
        target{B, c.T, c.target.data(), nullptr};
    c.base_hidden.resize(size_t(B * c.T * d));
    std::vector<float> source_all(size_t(B * c.T * d)), target_final(size_t(B * c.T * d));
    check(cdas_model_forward(model, &base, nullptr, layer, c.base_hidden.data(), nullptr, nullptr), "cdas_model_forward");
    check(cdas_model_forward(model, &source, nullptr, layer, source_all.data(), nullptr, nullptr), "cdas_model_forward");
    check(cdas_model_forward(model, &target, nullptr, -1, nullptr, target_final.data(), nullptr), "cdas_model_forward");
    for (int64_t b = 0; b < B; ++b) {
        const float* s = source_all.data() + (b * c.T + c.source_pos[size_t(b)]) * d;
        c.source_hidden.insert(c.source_hidden.end(), s, s + d);
        for (int32_t k = 0; k < c.count[size_t(b)]; ++k) {
            const float* t = target_final.data() + (b * c.T + c.target_start[size_t(b)] + k) * d;
            c.teacher_hidden.insert(c.teacher_hidden.end(), t, t + d);
        }
    }
    return c;
}

cdas_objective_batch view(const concept_batch& c) {
    cdas_objective_batch v{};
    v.base = cdas_token_batch{c.B, c.T, c.base.data(), nullptr};
    v.source = cdas_token_batch{c.B, c.T, c.source.data(), nullptr};
    v.target = cdas_token_batch{};
    v.prefix_len = c.prefix.data();
    v.source_positions = c.source_pos.data();
    v.base_start = c.base_start.data();
    v.target_start = nullptr;
    v.compare_count = c.count.data();
    v.loss = CDAS_LOSS_JSD;
    v.base_hidden = c.base_hidden.data();
    v.source_hidden = c.source_hidden.data();
    v.teacher_hidden = c.teacher_hidden.data();
    return v;
}

// The K concepts stacked in concept order (each concept's rows together), as ConceptPack stacks them.
struct packed_batch {
    concept_batch all;
    std::vector<int32_t> index;
};

packed_batch stack(const std::vector<concept_batch>& cs) {
    packed_batch p;
    p.all.T = cs.front().T;
    for (size_t k = 0; k < cs.size(); ++k) {
        const concept_batch& c = cs[k];
        p.all.B += c.B;
        auto add = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
        add(p.all.base, c.base);
        add(p.all.source, c.source);
        add(p.all.target, c.target);
        add(p.all.prefix, c.prefix);
        add(p.all.source_pos, c.source_pos);
        add(p.all.base_start, c.base_start);
        add(p.all.target_start, c.target_start);
        add(p.all.count, c.count);
        add(p.all.base_hidden, c.base_hidden);
        add(p.all.source_hidden, c.source_hidden);
        add(p.all.teacher_hidden, c.teacher_hidden);
        p.index.insert(p.index.end(), size_t(c.B), int32_t(k));
    }
    return p;
}

int usage(const std::string& why) {
    std::fprintf(stderr, "cdas_bench_pack: %s\n", why.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    std::string device = "cpu", dtype = "f32";
    int64_t K = 8, B = 8, P = 24, R = 32;
    int32_t layer = 2, repeats = 20, threads = 0, d = 192, layers = 4, V = 4096;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) return usage(a + " needs a value");
        std::string v = argv[++i];
        char* end = nullptr;
        long long n = std::strtoll(v.c_str(), &end, 10);
        bool number = end != v.c_str() && *end == '\0' && n >= 0;
        if (a == "--device") device = v;
        else if (a == "--dtype") dtype = v;
        else if (!number) return usage(a + " " + v + ": not a whole number >= 0 (or an unknown option)");
        else if (a == "--concepts") K = n;
        else if (a == "--batch") B = n;
        else if (a == "--prompt") P = n;
        else if (a == "--response") R = n;
        else if (a == "--layer") layer = int32_t(n);
        else if (a == "--repeats") repeats = int32_t(n);
        else if (a == "--threads") threads = int32_t(n);
        else if (a == "--hidden") d = int32_t(n);
        else if (a == "--layers") layers = int32_t(n);
        else if (a == "--vocab") V = int32_t(n);
        else return usage("unknown option " + a);
    }
    if (K < 1 || B < 1 || P < 1 || R < 1 || repeats < 1 || d < 8 || d % 4 || layers < 1 || V < 2 || layer >= layers)
        return usage("need --concepts, --batch, --prompt, --response, --repeats >= 1, --hidden a multiple of 4 >= 8, "
                     "--layer < --layers");
    if (P + R > 1024) return usage("--prompt + --response must be at most 1024 (the model's positions)");

    tiny_model m;
    cdas_model_config_default(&m.config);
    cdas_model_config& c = m.config;
    c.family = CDAS_MODEL_FAMILY_GPT2;  // the demo's shape: GPT-2 blocks, 4 heads, tied head
    c.num_layers = layers;
    c.hidden_size = d;
    c.num_heads = 4;
    c.num_kv_heads = 4;
    c.head_dim = d / 4;
    c.intermediate_size = 4 * d;
    c.vocab_size = V;
    c.max_positions = 1024;
    c.activation = CDAS_ACTIVATION_GELU_NEW;
    c.norm_eps = 1e-5;
    c.rope_type = CDAS_ROPE_NONE;
    c.attention_bias = c.attention_output_bias = c.mlp_bias = 1;
    c.tie_word_embeddings = 1;
    c.dtype = dtype == "f32" ? CDAS_DTYPE_F32 : dtype == "bf16" ? CDAS_DTYPE_BF16 : dtype == "f16" ? CDAS_DTYPE_F16 : -1;
    if (c.dtype < 0) return usage("--dtype " + dtype + ": f32, bf16 or f16");
    if (device == "cpu") {
        c.device_type = CDAS_DEVICE_CPU;
    } else if (device.rfind("cuda", 0) == 0) {
        c.device_type = CDAS_DEVICE_CUDA;
        c.device_index = device.size() > 5 && device[4] == ':' ? std::atoi(device.c_str() + 5) : 0;
        int32_t n = 0;
        if (cdas_cuda_device_count(&n) != CDAS_STATUS_OK || n <= c.device_index) {
            std::printf("SKIP: no CUDA device %d (this libcdas sees %d)\n", c.device_index, n);
            return 77;
        }
    } else {
        return usage("--device " + device + ": cpu or cuda[:N]");
    }
    c.num_threads = threads;
    std::mt19937_64 rng(20261202);
    cdas_test::randomize_weights(m, rng);
    cdas_model* model = nullptr;
    const std::vector<cdas_tensor_view>& views = m.make_views();
    cdas_status st = cdas_model_create(&m.config, views.data(), int64_t(views.size()), &model);
    if (st == CDAS_STATUS_UNSUPPORTED) {
        std::printf("SKIP: %s\n", cdas_last_error());
        return 77;
    }
    check(st, "cdas_model_create");

    const int32_t rank = 1;
    std::vector<concept_batch> concepts;
    std::vector<float> W(size_t(K * d));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int64_t k = 0; k < K; ++k) {
        concepts.push_back(make_concept(rng, model, V, d, layer, B, P, R));
        float* w = W.data() + k * d;  // a random unit direction per concept
        double n2 = 0;
        for (int32_t i = 0; i < d; ++i) {
            w[i] = normal(rng);
            n2 += double(w[i]) * w[i];
        }
        for (int32_t i = 0; i < d; ++i) w[i] = float(w[i] / std::sqrt(n2));
    }
    packed_batch packed = stack(concepts);
    cdas_objective_batch pv = view(packed.all);
    pv.direction_index = packed.index.data();
    pv.direction_count = int32_t(K);
    pv.pack_padding = 0;

    // Equality first: each concept's packed loss and gradient against its own call.
    std::vector<float> loss_one(static_cast<size_t>(K)), grad_one(static_cast<size_t>(K * d)), loss_packed(static_cast<size_t>(K)),
        grad_packed(static_cast<size_t>(K * d));
    auto one_by_one = [&] {
        for (int64_t k = 0; k < K; ++k) {
            cdas_objective_batch v = view(concepts[size_t(k)]);
            check(cdas_model_cdas_objective(model, layer, rank, W.data() + k * d, &v, 0.5f, &loss_one[size_t(k)],
                                            grad_one.data() + k * d), "cdas_model_cdas_objective");
        }
    };
    auto all_at_once = [&] {
        check(cdas_model_cdas_objective(model, layer, rank, W.data(), &pv, 0.5f, loss_packed.data(), grad_packed.data()),
              "cdas_model_cdas_objective (packed)");
    };
    one_by_one();
    all_at_once();
    double worst_loss = 0, worst_grad = 0, scale = 0;
    for (int64_t k = 0; k < K; ++k) worst_loss = std::max(worst_loss, double(std::fabs(loss_one[size_t(k)] - loss_packed[size_t(k)])));
    for (size_t i = 0; i < grad_one.size(); ++i) {
        worst_grad = std::max(worst_grad, double(std::fabs(grad_one[i] - grad_packed[i])));
        scale = std::max(scale, double(std::fabs(grad_one[i])));
    }
    const double tol = c.dtype == CDAS_DTYPE_F32 ? 1e-5 : 2e-2;
    std::printf("packed vs one by one: max |loss diff| %.2e, max |grad diff| %.2e (largest |grad| %.2e; limit %.0e)\n",
                worst_loss, worst_grad, scale, tol);
    if (!(worst_loss <= tol && worst_grad <= tol * std::max(1.0, scale)) || !(scale > 0))
        fail("the packed call differs from the one-by-one calls beyond the limit: not timing it");

    double t_one = median_seconds(repeats, one_by_one);
    double t_packed = median_seconds(repeats, all_at_once);
    std::printf("device %s, %s, GPT-2 shape d=%d layers=%d V=%d, layer %d; %lld concepts x %lld examples, prompt %lld + "
                "response %lld tokens; states given (the trainer's cache); median of %d\n",
                device.c_str(), dtype.c_str(), d, layers, V, layer, (long long)K, (long long)B, (long long)P, (long long)R,
                repeats);
    std::printf("%-28s %10s %14s %16s\n", "", "step ms", "ms per concept", "concept-steps/h");
    std::printf("%-28s %10.3f %14.3f %16.0f\n", "one by one (K calls)", t_one * 1e3, t_one * 1e3 / double(K),
                3600.0 * double(K) / t_one);
    std::printf("%-28s %10.3f %14.3f %16.0f\n", "packed (one call)", t_packed * 1e3, t_packed * 1e3 / double(K),
                3600.0 * double(K) / t_packed);
    std::printf("packing speed-up: %.2fx\n", t_one / t_packed);
    cdas_model_destroy(model);
    return 0;
}
