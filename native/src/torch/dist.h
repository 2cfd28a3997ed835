// Data parallel over torch c10d: a ProcessGroup (Gloo on CPU, NCCL on CUDA) of the linked
// libtorch that sums fp32 host buffers across processes (cdas.h, "data parallel over torch c10d").
// Which backends exist depends on the headers found at build time (CMakeLists.txt): without them
// create() fails with CDAS_STATUS_UNSUPPORTED and what to install.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cdas.h"

namespace cdas::dist {

struct group_options {
    std::string master_addr;
    int port = 0;
    int rank = 0;
    int world_size = 1;
    bool host_store = false;
    cdas_dist_backend backend = CDAS_DIST_GLOO;
    int device_index = 0;
    int64_t timeout_ms = 0;  // <= 0: 30 minutes
    std::string store_prefix;
};

class group {
public:
    virtual ~group() = default;
    virtual int rank() const = 0;
    virtual int world_size() const = 0;
    // data[0..count) = the elementwise sum over the ranks.
    virtual void all_reduce_sum(float* data, int64_t count) = 0;
    virtual void barrier() = 0;
};

// Joins the group (options already validated by the caller).
std::unique_ptr<group> create(const group_options& options);

}  // namespace cdas::dist
