#include "model/placement.h"

#include <algorithm>
#include <cstdio>

#include "core/error.h"

namespace cdas::model {

std::vector<int32_t> place_evenly(int64_t blocks, int32_t devices) {
    std::vector<int32_t> out;
    for (int64_t i = 0; i < blocks; ++i) out.push_back(int32_t(i * devices / blocks));
    return out;
}

model_bytes weight_bytes(const model_spec& spec) {
    const int64_t element = spec.dtype == CDAS_DTYPE_F32 ? 4 : 2;
    model_bytes b;
    b.blocks.assign(size_t(spec.num_layers), 0);
    for (const weight_spec& w : expected_weights(spec)) {
        int64_t n = element;
        for (int64_t s : w.shape) n *= s;
        if (w.layer >= 0) {
            b.blocks[size_t(w.layer)] += n;
        } else if (w.binds == role::embed || w.binds == role::positions) {
            b.embed += n;
            if (w.binds == role::embed && spec.tie_word_embeddings) b.head += n;  // the head's own copy
        } else if (!w.optional) {
            b.head += n;
        }
    }
    return b;
}

namespace {

std::string size_string(int64_t bytes) {
    char text[48];
    if (bytes >= (int64_t(1) << 30)) {
        std::snprintf(text, sizeof text, "%.2f GiB", double(bytes) / double(int64_t(1) << 30));
    } else if (bytes >= (1 << 20)) {
        std::snprintf(text, sizeof text, "%.2f MiB", double(bytes) / double(1 << 20));
    } else {
        std::snprintf(text, sizeof text, "%lld bytes", static_cast<long long>(bytes));
    }
    return text;
}

// The items in block order: block i with the embedding (i = 0) and the head (last block).
std::vector<int64_t> items_of(const model_bytes& b) {
    std::vector<int64_t> items = b.blocks;
    items.front() += b.embed;
    items.back() += b.head;
    return items;
}

// Greedy fill in list order with each device's share capped at min(cap, usable): the longest
// prefix on each device, which fits whenever any contiguous assignment under the same caps does.
bool fill(const std::vector<int64_t>& items, const std::vector<int64_t>& usable, int64_t cap, std::vector<int32_t>* out) {
    size_t k = 0;
    int64_t load = 0;
    std::vector<int32_t> map;
    for (int64_t item : items) {
        for (;;) {
            if (k == usable.size()) return false;
            const int64_t limit = usable[k] < 0 ? cap : std::min(cap, usable[k]);
            if (load + item <= limit) break;
            ++k;
            load = 0;
        }
        load += item;
        map.push_back(int32_t(k));
    }
    if (out) *out = map;
    return true;
}

}  // namespace

std::vector<int32_t> place_by_memory(const model_bytes& bytes, const std::vector<int64_t>& usable,
                                     const std::vector<std::string>& names) {
    if (bytes.blocks.empty() || usable.empty() || names.size() != usable.size())
        fail(CDAS_STATUS_INTERNAL, "place_by_memory: no blocks, no devices or names that do not match them");
    const std::vector<int64_t> items = items_of(bytes);
    int64_t total = 0, largest = 0;
    for (int64_t item : items) {
        total += item;
        largest = std::max(largest, item);
    }
    if (!fill(items, usable, total, nullptr)) {
        std::string message = "the model does not fit on the devices: it needs " + size_string(total) + " (embedding " +
                              size_string(bytes.embed) + ", " + std::to_string(bytes.blocks.size()) + " blocks of up to " +
                              size_string(*std::max_element(bytes.blocks.begin(), bytes.blocks.end())) + ", head " +
                              size_string(bytes.head) + ") and ranges of whole blocks get at most";
        for (size_t k = 0; k < usable.size(); ++k)
            message += (k ? ", " : " ") + (usable[k] < 0 ? std::string("unbounded") : size_string(usable[k])) + " on " + names[k];
        fail(CDAS_STATUS_OUT_OF_MEMORY, message);
    }
    // The smallest cap under which the greedy fill still places everything.
    int64_t lo = largest, hi = total;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (fill(items, usable, mid, nullptr)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    std::vector<int32_t> map;
    fill(items, usable, lo, &map);
    return map;
}

}  // namespace cdas::model
