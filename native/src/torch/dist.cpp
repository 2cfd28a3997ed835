// The c10d process group behind cdas_dist_*. Compiled with CDAS_WITH_GLOO when CMake found Gloo's
// headers (libtorch exports ProcessGroupGloo but its wheel does not ship gloo/*.h) and with
// CDAS_WITH_NCCL when it found NCCL's headers next to a CUDA libtorch.
#include "torch/dist.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

#if defined(CDAS_WITH_GLOO) || defined(CDAS_WITH_NCCL)
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <c10/util/Logging.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef CDAS_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef CDAS_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace cdas::dist {

namespace {

[[maybe_unused]] std::string first_line(const std::string& text) {
    auto end = text.find('\n');
    return end == std::string::npos ? text : text.substr(0, end);
}

#if defined(CDAS_WITH_GLOO) || defined(CDAS_WITH_NCCL)

// Runs body(); a c10d/libtorch failure (timeout, refused or lost connection) becomes an IO_ERROR
// that names the operation and the group.
template <class Body>
auto guarded(const std::string& what, Body&& body) -> decltype(body()) {
    try {
        return body();
    } catch (const cdas::error&) {
        throw;
    } catch (const c10::Error& e) {
        cdas::fail(CDAS_STATUS_IO_ERROR, what + " failed: " + first_line(e.what_without_backtrace()));
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        cdas::fail(CDAS_STATUS_IO_ERROR, what + " failed: " + first_line(e.what()));
    }
}

bool loopback(const std::string& host) {
    return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

class c10d_group final : public group {
public:
    c10d_group(const group_options& o) : rank_(o.rank), world_(o.world_size), backend_(o.backend), device_(o.device_index) {
        // c10d logs its retries and timeouts to stderr, with stack traces, besides throwing: the
        // library prints nothing (the failure comes back as status and message), so only fatal
        // messages stay, unless the user asked libtorch for its log (TORCH_CPP_LOG_LEVEL).
        if (!std::getenv("TORCH_CPP_LOG_LEVEL") && FLAGS_caffe2_log_level < 3) FLAGS_caffe2_log_level = 3;
        const std::chrono::milliseconds timeout(o.timeout_ms > 0 ? o.timeout_ms : 30LL * 60 * 1000);
        where_ = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + " (store " + o.master_addr +
                 ":" + std::to_string(o.port) + ")";
        c10::intrusive_ptr<c10d::Store> store = guarded("connecting to the store for " + where_, [&] {
            c10d::TCPStoreOptions so;
            so.port = static_cast<std::uint16_t>(o.port);
            so.isServer = o.host_store;
            // Every rank counts itself in (as torch.distributed's clients do); the server waits for all.
            so.numWorkers = static_cast<std::size_t>(o.world_size);
            so.waitWorkers = true;
            so.timeout = timeout;
            return c10::intrusive_ptr<c10d::Store>(c10::make_intrusive<c10d::TCPStore>(o.master_addr, so));
        });
        store = c10::make_intrusive<c10d::PrefixStore>(o.store_prefix.empty() ? std::string("cdas") : o.store_prefix,
                                                       store);
        if (o.backend == CDAS_DIST_GLOO) {
#ifdef CDAS_WITH_GLOO
            backend_group_ = guarded("joining the Gloo group as " + where_, [&] {
                auto options = c10d::ProcessGroupGloo::Options::create(timeout);
                // GLOO_SOCKET_IFNAME (torch's variable) names the interface; a loopback store
                // means a single machine, so loopback; else this host's own address.
                const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
                if (ifname && *ifname) {
                    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
                } else if (loopback(o.master_addr)) {
                    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
                } else {
                    options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
                }
                options->threads = 1;
                return c10::intrusive_ptr<c10d::Backend>(
                    c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, options));
            });
#endif
        } else {
#ifdef CDAS_WITH_NCCL
            backend_group_ = guarded("joining the NCCL group as " + where_, [&] {
                auto options = c10d::ProcessGroupNCCL::Options::create();
                options->timeout = timeout;
                return c10::intrusive_ptr<c10d::Backend>(
                    c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, options));
            });
#endif
        }
        // The group is complete only once every rank answered: a first barrier.
        barrier();
    }

    int rank() const override { return rank_; }
    int world_size() const override { return world_; }

    void all_reduce_sum(float* data, int64_t count) override {
        guarded("all-reduce of " + std::to_string(count) + " floats on " + where_, [&] {
            at::Tensor host = at::from_blob(data, {count}, at::TensorOptions().dtype(at::kFloat));
            std::vector<at::Tensor> tensors;
            if (backend_ == CDAS_DIST_NCCL) {
                tensors.push_back(host.to(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_))));
            } else {
                tensors.push_back(host);
            }
            c10d::AllreduceOptions opts;
            opts.reduceOp = c10d::ReduceOp::SUM;
            auto work = backend_group_->allreduce(tensors, opts);
            work->wait();
            if (backend_ == CDAS_DIST_NCCL) {
                host.copy_(tensors[0].to(at::kCPU));
            }
        });
    }

    void barrier() override {
        guarded("barrier on " + where_, [&] {
            c10d::BarrierOptions opts;
            if (backend_ == CDAS_DIST_NCCL) {
                opts.device_ids = {device_};
            }
            backend_group_->barrier(opts)->wait();
        });
    }

private:
    int rank_;
    int world_;
    cdas_dist_backend backend_;
    int device_;
    std::string where_;
    c10::intrusive_ptr<c10d::Backend> backend_group_;
};

#endif

}  // namespace

std::unique_ptr<group> create(const group_options& o) {
    if (o.backend == CDAS_DIST_GLOO) {
#ifndef CDAS_WITH_GLOO
        cdas::fail(CDAS_STATUS_UNSUPPORTED,
                   "this libcdas was built without Gloo's headers, so it has no CPU process group: install them "
                   "(Debian/Ubuntu: apt-get install libgloo-dev) and rebuild (scripts/build.sh)");
#endif
    } else {
#ifndef CDAS_WITH_NCCL
        cdas::fail(CDAS_STATUS_UNSUPPORTED,
                   "this libcdas has no NCCL process group: it needs a CUDA libtorch and NCCL's headers (nccl.h, e.g. "
                   "from the nvidia-nccl wheel, NCCL_INCLUDE_DIR) at build time");
#endif
    }
#if defined(CDAS_WITH_GLOO) || defined(CDAS_WITH_NCCL)
    return std::make_unique<c10d_group>(o);
#else
    return nullptr;
#endif
}

}  // namespace cdas::dist
