// cdas_dist_*: argument checks before any network, a group of ranks as threads on 127.0.0.1 whose
// all-reduce equals a plain sum on random buffers, and a rank whose store never answers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cdas.h"
#include "harness.h"
#include "test_util.h"

using namespace cdas_test;

namespace {

// A port no one listens on right now (the kernel's choice for an ephemeral bind).
int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

cdas_dist_options options(int port, int rank, int world) {
    cdas_dist_options o{};
    o.master_addr = "127.0.0.1";
    o.master_port = port;
    o.rank = rank;
    o.world_size = world;
    o.host_store = rank == 0 ? 1 : 0;
    o.backend = CDAS_DIST_GLOO;
    o.timeout_ms = 60000;
    o.store_prefix = "test";
    return o;
}

// Whether this libcdas has the Gloo group (built with Gloo's headers).
bool gloo_built(std::string& why) {
    cdas_dist_options o = options(free_port(), 0, 1);  // a group of one: no peer to wait for
    o.timeout_ms = 20000;
    cdas_dist* d = nullptr;
    cdas_status s = cdas_dist_create(&o, &d);
    why = cdas_last_error();
    if (d) cdas_dist_destroy(d);
    return s != CDAS_STATUS_UNSUPPORTED;
}

}  // namespace

TEST(dist_argument_checks) {
    cdas_dist* d = reinterpret_cast<cdas_dist*>(0x1);
    cdas_dist_options o = options(29400, 0, 2);
    CHECK_FAILS(cdas_dist_create(nullptr, &d), CDAS_STATUS_INVALID_ARGUMENT, "options");
    CHECK(d == nullptr);
    CHECK_FAILS(cdas_dist_create(&o, nullptr), CDAS_STATUS_INVALID_ARGUMENT, "dist");
    o.master_addr = "";
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "master_addr");
    o = options(0, 0, 2);
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "master_port");
    o = options(29400, 2, 2);
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "rank 2 is outside 0..1");
    o = options(29400, 0, 0);
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "world_size");
    o = options(29400, 0, 2);
    o.backend = 7;
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "backend");
    o = options(29400, 0, 2);
    o.host_store = 2;
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_INVALID_ARGUMENT, "host_store");
    float x = 1;
    CHECK_FAILS(cdas_dist_all_reduce_sum(nullptr, &x, 1), CDAS_STATUS_INVALID_ARGUMENT, "dist");
    CHECK_FAILS(cdas_dist_barrier(nullptr), CDAS_STATUS_INVALID_ARGUMENT, "dist");
    CHECK_FAILS(cdas_dist_rank(nullptr, nullptr, nullptr), CDAS_STATUS_INVALID_ARGUMENT, "dist");
    CHECK_STATUS(cdas_dist_destroy(nullptr), CDAS_STATUS_OK);
}

// The CPU libtorch has no NCCL: the answer says what is missing, before any network.
TEST(dist_nccl_without_cuda_libtorch_is_unsupported) {
    cdas_dist_options o = options(29400, 0, 2);
    o.backend = CDAS_DIST_NCCL;
    cdas_dist* d = nullptr;
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_UNSUPPORTED, "NCCL");
    CHECK(d == nullptr);
}

TEST(dist_all_reduce_is_the_sum_over_ranks) {
    std::string why;
    if (!gloo_built(why)) SKIP("no Gloo group in this build: " + why);
    const int world = 3;
    const int64_t n = 4099;
    const int port = free_port();
    auto rng = make_rng("dist_all_reduce");
    std::vector<std::vector<float>> data(world, std::vector<float>(n));
    std::vector<double> want(n, 0.0);
    std::normal_distribution<double> normal(0.0, 1.0);
    for (int r = 0; r < world; r++)
        for (int64_t i = 0; i < n; i++) {
            data[r][i] = float(normal(rng));
            want[i] += data[r][i];
        }
    std::vector<cdas_status> status(world, CDAS_STATUS_INTERNAL);
    std::vector<std::string> errors(world);
    std::vector<int32_t> ranks(world, -1), sizes(world, -1);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; r++) {
        threads.emplace_back([&, r] {
            cdas_dist_options o = options(port, r, world);
            cdas_dist* d = nullptr;
            cdas_status s = cdas_dist_create(&o, &d);
            if (s == CDAS_STATUS_OK) s = cdas_dist_rank(d, &ranks[r], &sizes[r]);
            if (s == CDAS_STATUS_OK) s = cdas_dist_all_reduce_sum(d, data[r].data(), n);
            if (s == CDAS_STATUS_OK) s = cdas_dist_barrier(d);
            if (s != CDAS_STATUS_OK) errors[r] = cdas_last_error();
            cdas_dist_destroy(d);
            status[r] = s;
        });
    }
    for (auto& t : threads) t.join();
    for (int r = 0; r < world; r++) {
        CHECK_MSG(status[r] == CDAS_STATUS_OK, "rank " + std::to_string(r) + ": " + errors[r]);
        CHECK(ranks[r] == r && sizes[r] == world);
        CHECK_CLOSE("all-reduce sum", data[r].data(), want.data(), n, 1e-5, 1e-6);
        CHECK_MSG(data[r] == data[0], "rank " + std::to_string(r) + " ends with another buffer than rank 0");
    }
}

// A rank whose store never comes up fails within its timeout with IO_ERROR naming the store.
TEST(dist_unreachable_store_times_out) {
    std::string why;
    if (!gloo_built(why)) SKIP("no Gloo group in this build: " + why);
    cdas_dist_options o = options(free_port(), 1, 2);
    o.timeout_ms = 1500;
    cdas_dist* d = nullptr;
    CHECK_FAILS(cdas_dist_create(&o, &d), CDAS_STATUS_IO_ERROR, "store");
    CHECK(d == nullptr);
}
