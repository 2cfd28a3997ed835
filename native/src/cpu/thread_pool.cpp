#include "cpu/thread_pool.h"

#include <algorithm>

namespace cdas::cpu {

thread_pool::thread_pool(int num_threads) {
    if (num_threads <= 0) num_threads = int(std::max(1u, std::thread::hardware_concurrency()));
    num_workers_ = num_threads;
    threads_.reserve(size_t(num_threads - 1));
    for (int w = 1; w < num_threads; ++w) threads_.emplace_back([this, w] { worker_loop(w); });
}

thread_pool::~thread_pool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : threads_) t.join();
}

void thread_pool::run_range(int worker) {
    int64_t begin = job_count_ * worker / num_workers_;
    int64_t end = job_count_ * (worker + 1) / num_workers_;
    if (begin >= end) return;
    try {
        (*job_)(begin, end, worker);
    } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
    }
}

void thread_pool::worker_loop(int worker) {
    uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
            if (stopping_) return;
            seen = generation_;
        }
        run_range(worker);
        std::lock_guard<std::mutex> lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
    }
}

void thread_pool::parallel_for(int64_t count, const std::function<void(int64_t, int64_t, int)>& fn,
                               int64_t inline_below) {
    if (count <= 0) return;
    if (num_workers_ == 1 || count == 1 || count <= inline_below) {
        fn(0, count, 0);
        return;
    }
    // One job at a time: job_, job_count_, pending_ and generation_ describe a single job, so a
    // second caller waits here until the first has collected its result.
    std::lock_guard<std::mutex> call(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        job_ = &fn;
        job_count_ = count;
        pending_ = num_workers_ - 1;
        error_ = nullptr;
        ++generation_;
    }
    wake_.notify_all();
    run_range(0);
    std::exception_ptr error;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return pending_ == 0; });
        job_ = nullptr;
        error = error_;
        error_ = nullptr;
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace cdas::cpu
