// cdas.h: data parallel over torch c10d (cdas_dist_*): argument checks, then the process group of
// torch/dist.h. Only in a libcdas with libtorch; the no-torch build answers UNSUPPORTED.
#include <cstring>
#include <memory>
#include <string>

#include "cdas.h"
#include "core/error.h"
#include "torch/dist.h"

struct cdas_dist {
    std::unique_ptr<cdas::dist::group> group;
};

namespace {

using cdas::fail;

cdas_dist& require_dist(cdas_dist* dist) {
    if (!dist || !dist->group) fail(CDAS_STATUS_INVALID_ARGUMENT, "dist must not be NULL");
    return *dist;
}

}  // namespace

extern "C" {

CDAS_API cdas_status cdas_dist_create(const cdas_dist_options* options, cdas_dist** dist) {
    return cdas::abi_call("cdas_dist_create", [&] {
        if (!dist) fail(CDAS_STATUS_INVALID_ARGUMENT, "dist must not be NULL");
        *dist = nullptr;
        if (!options) fail(CDAS_STATUS_INVALID_ARGUMENT, "options must not be NULL");
        if (!options->master_addr || !*options->master_addr)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "master_addr must be a host name or address, not empty");
        if (options->master_port < 1 || options->master_port > 65535)
            fail(CDAS_STATUS_INVALID_ARGUMENT,
                 "master_port must be in 1..65535, got " + std::to_string(options->master_port));
        if (options->world_size < 1)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "world_size must be >= 1, got " + std::to_string(options->world_size));
        if (options->rank < 0 || options->rank >= options->world_size)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "rank " + std::to_string(options->rank) + " is outside 0.." +
                                                   std::to_string(options->world_size - 1));
        if (options->host_store != 0 && options->host_store != 1)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "host_store must be 0 or 1, got " + std::to_string(options->host_store));
        if (options->backend != CDAS_DIST_GLOO && options->backend != CDAS_DIST_NCCL)
            fail(CDAS_STATUS_INVALID_ARGUMENT, "backend must be CDAS_DIST_GLOO (0) or CDAS_DIST_NCCL (1), got " +
                                                   std::to_string(options->backend));
        if (options->backend == CDAS_DIST_NCCL && options->device_index < 0)
            fail(CDAS_STATUS_INVALID_ARGUMENT,
                 "device_index must be >= 0 for NCCL, got " + std::to_string(options->device_index));
        cdas::dist::group_options o;
        o.master_addr = options->master_addr;
        o.port = options->master_port;
        o.rank = options->rank;
        o.world_size = options->world_size;
        o.host_store = options->host_store == 1;
        o.backend = static_cast<cdas_dist_backend>(options->backend);
        o.device_index = options->device_index;
        o.timeout_ms = options->timeout_ms;
        o.store_prefix = options->store_prefix ? options->store_prefix : "";
        auto handle = std::make_unique<cdas_dist>();
        handle->group = cdas::dist::create(o);
        *dist = handle.release();
    });
}

CDAS_API cdas_status cdas_dist_destroy(cdas_dist* dist) {
    return cdas::abi_call("cdas_dist_destroy", [&] { delete dist; });
}

CDAS_API cdas_status cdas_dist_rank(const cdas_dist* dist, int32_t* rank, int32_t* world_size) {
    return cdas::abi_call("cdas_dist_rank", [&] {
        const cdas_dist& d = require_dist(const_cast<cdas_dist*>(dist));
        if (rank) *rank = d.group->rank();
        if (world_size) *world_size = d.group->world_size();
    });
}

CDAS_API cdas_status cdas_dist_all_reduce_sum(cdas_dist* dist, float* data, int64_t count) {
    return cdas::abi_call("cdas_dist_all_reduce_sum", [&] {
        cdas_dist& d = require_dist(dist);
        if (!data) fail(CDAS_STATUS_INVALID_ARGUMENT, "data must not be NULL");
        if (count < 1) fail(CDAS_STATUS_INVALID_ARGUMENT, "count must be >= 1, got " + std::to_string(count));
        d.group->all_reduce_sum(data, count);
    });
}

CDAS_API cdas_status cdas_dist_barrier(cdas_dist* dist) {
    return cdas::abi_call("cdas_dist_barrier", [&] { require_dist(dist).group->barrier(); });
}

}  // extern "C"
