// What a CPU kernel needs from its context: worker threads and reusable scratch memory.
#pragma once

#include "cpu/thread_pool.h"
#include "cpu/workspace.h"

namespace cdas::cpu {

struct runtime {
    explicit runtime(int num_threads) : pool(num_threads) {}
    thread_pool pool;
    workspace scratch;
};

}  // namespace cdas::cpu
