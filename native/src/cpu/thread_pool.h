// A small persistent pool of worker threads with static partitioning.
// Why not OpenMP: libtorch brings its own libgomp and MKL threading; a second OpenMP runtime in
// the same process fights it for cores. Static partitioning (worker i always gets the same range
// for the same size) keeps every per-worker partial result reproducible.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cdas::cpu {

class thread_pool {
public:
    // num_threads <= 0: all hardware threads. The calling thread is worker 0.
    explicit thread_pool(int num_threads);
    ~thread_pool();
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    int size() const { return num_workers_; }

    // Calls fn(begin, end, worker) on disjoint contiguous ranges covering [0, count); worker i
    // gets the i-th of size() near-equal ranges. Blocks until all have returned; the first
    // exception thrown by any worker is rethrown here. When count <= inline_below the caller
    // runs fn(0, count, 0) itself: waking an idle core costs tens to hundreds of microseconds
    // (more on a virtual machine), more than small jobs take. Safe to call from several threads
    // at once (one pool is shared, e.g. by the default CPU context's validation and kernels
    // under concurrent models): callers that need the workers take turns, one job at a time.
    // fn must not call parallel_for on the same pool.
    void parallel_for(int64_t count, const std::function<void(int64_t, int64_t, int)>& fn,
                      int64_t inline_below = 1);

private:
    void worker_loop(int worker);
    void run_range(int worker);

    int num_workers_;
    std::vector<std::thread> threads_;
    std::mutex mutex_;
    std::mutex call_mutex_;  // held by the one caller whose job the workers run
    std::condition_variable wake_;
    std::condition_variable done_;
    const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
    int64_t job_count_ = 0;
    uint64_t generation_ = 0;
    int pending_ = 0;
    bool stopping_ = false;
    std::exception_ptr error_;
};

}  // namespace cdas::cpu
