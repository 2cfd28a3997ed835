// Which device each block of a layer split runs on (cdas.h: split_*): contiguous ranges of blocks,
// the embedding with the first block, the final norm and LM head with the last. Pure functions of
// sizes and counts, no torch and no device calls: model_create asks the devices for their free
// memory and passes the numbers in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/spec.h"

namespace cdas::model {

// Block i on entry floor(i * devices / blocks): ranges whose lengths differ by at most one, every
// device used (devices <= blocks).
std::vector<int32_t> place_evenly(int64_t blocks, int32_t devices);

// What the weights of one model take on its devices, in bytes of the compute dtype.
struct model_bytes {
    int64_t embed = 0;               // token (and GPT-2's position) embeddings
    std::vector<int64_t> blocks;     // each block's weights
    int64_t head = 0;                // final norm and LM head (a tied head counted as a copy)
};

model_bytes weight_bytes(const model_spec& spec);

// Contiguous ranges of blocks over the devices in list order, minimising the largest share (the
// embedding goes with block 0, the head with the last block), never above a device's usable
// bytes (usable[k] < 0: unbounded). A device may get no block; the result's entries index
// `usable`. Throws cdas::error CDAS_STATUS_OUT_OF_MEMORY when the model does not fit, naming
// what it needs and each device's usable bytes (names[k]).
std::vector<int32_t> place_by_memory(const model_bytes& bytes, const std::vector<int64_t>& usable,
                                     const std::vector<std::string>& names);

}  // namespace cdas::model
