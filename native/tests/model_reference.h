// A plain double-precision decoder written from the transformers formulas, one loop per
// equation, and random tiny checkpoints for it: the readable spec the libtorch model runtime is
// checked against (RoPE variants, masks, windows, soft-caps, GQA, every family's block).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cdas.h"

namespace cdas_test {

// A model config plus random fp32 weights under the checkpoint names, and views of them.
struct tiny_model {
    std::string label;
    cdas_model_config config{};
    std::vector<float> short_factor, long_factor;  // longrope arrays the config points at
    std::vector<uint8_t> layer_sliding;
    std::map<std::string, std::vector<int64_t>> shapes;
    std::map<std::string, std::vector<float>> weights;
    std::vector<cdas_tensor_view> views;

    // Views of every weight (fp32, host), in name order; rebuilt on each call.
    const std::vector<cdas_tensor_view>& make_views();
};

// The families and RoPE variants the tests sweep (small sizes, odd vocabularies).
std::vector<tiny_model> tiny_models(std::mt19937_64& rng);

// Fills weights for the config: every tensor cdas_model_create expects, seeded noise large
// enough that attention, soft-caps and activations matter.
void randomize_weights(tiny_model& m, std::mt19937_64& rng);

// Logits [T x V] of one unpadded sequence (positions 0..T-1).
std::vector<double> reference_logits(const tiny_model& m, const std::vector<int32_t>& tokens);

// RAII model handle.
struct model_handle {
    cdas_model* ptr = nullptr;
    cdas_status status = CDAS_STATUS_OK;
    explicit model_handle(tiny_model& m);
    model_handle(const cdas_model_config& config, const std::vector<cdas_tensor_view>& views);
    ~model_handle() { cdas_model_destroy(ptr); }
    model_handle(const model_handle&) = delete;
    model_handle& operator=(const model_handle&) = delete;
};

}  // namespace cdas_test
