// glibc malloc settings for CPU models (native/src/cpu/malloc_tuning.h): the rule, and that once a
// CPU model exists a large freed block stays in the process, so that taking it again costs no page
// faults (without the settings glibc maps such a block afresh each time: thousands of faults).
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "cdas.h"
#include "cpu/malloc_tuning.h"
#include "harness.h"
#include "model_reference.h"

TEST(malloc_tuning_rule) {
    using cdas::cpu::malloc_tuning_veto;
    CHECK(malloc_tuning_veto(nullptr, nullptr, nullptr, nullptr, nullptr).empty());
    CHECK(malloc_tuning_veto("1", "glibc.rtld.optional_static_tls=2048", nullptr, nullptr, nullptr).empty());
    for (const char* off : {"0", "off", "OFF", "false", "No"})
        CHECK_MSG(malloc_tuning_veto(off, nullptr, nullptr, nullptr, nullptr) == std::string("CDAS_MALLOC_TUNING=") + off,
                  std::string("CDAS_MALLOC_TUNING=") + off + " must leave malloc alone");
    for (const char* on : {"1", "on", "", "00"})
        CHECK_MSG(malloc_tuning_veto(on, nullptr, nullptr, nullptr, nullptr).empty(), std::string("CDAS_MALLOC_TUNING=") + on);
    CHECK(malloc_tuning_veto(nullptr, "glibc.malloc.arena_max=2", nullptr, nullptr, nullptr) ==
          "GLIBC_TUNABLES sets malloc: glibc.malloc.arena_max=2");
    CHECK(malloc_tuning_veto(nullptr, nullptr, "1048576", nullptr, nullptr) == "MALLOC_MMAP_THRESHOLD_ is set");
    CHECK(malloc_tuning_veto(nullptr, nullptr, nullptr, "0", nullptr) == "MALLOC_TRIM_THRESHOLD_ is set");
    CHECK(malloc_tuning_veto(nullptr, nullptr, nullptr, nullptr, "0") == "MALLOC_TOP_PAD_ is set");
}

#if defined(__GLIBC__)
namespace {
long minor_faults() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

// Writes every byte, in a way the compiler must keep: a memset just before free() is a dead store
// it may drop, and then the pages are first touched after the free (faults that prove nothing).
void touch(char* p, size_t bytes, char value) {
    std::memset(p, value, bytes);
    asm volatile("" : : "r"(p) : "memory");
}
}  // namespace
#endif

TEST(malloc_tuning_keeps_a_freed_block_after_a_cpu_model) {
#if !defined(__GLIBC__)
    SKIP("not glibc: malloc is left as is");
#else
    auto rng = cdas_test::make_rng("malloc_tuning_keeps_a_freed_block_after_a_cpu_model");
    std::vector<cdas_test::tiny_model> models = cdas_test::tiny_models(rng);
    cdas_test::model_handle model(models.front());  // on the CPU: applies the settings (once per process)
    if (model.status == CDAS_STATUS_UNSUPPORTED) SKIP("no model runtime in this libcdas");
    CHECK_STATUS(model.status, CDAS_STATUS_OK);
    const std::string summary = cdas_build_info();
    if (summary.find("malloc: glibc, freed blocks kept") == std::string::npos) {
        const size_t at = summary.find("malloc: ");
        SKIP("malloc tuning is off in this environment: " + summary.substr(at, summary.find('\n', at) - at));
    }
    const size_t bytes = size_t(64) << 20;  // above glibc's own largest mmap threshold (32 MB)
    const size_t hblks = mallinfo2().hblks;
    char* p = static_cast<char*>(std::malloc(bytes));
    CHECK(p != nullptr);
    CHECK_MSG(mallinfo2().hblks == hblks, "a 64 MB block was mapped on its own (the mmap threshold is not raised)");
    touch(p, bytes, 1);
    std::free(p);
    // Taking it again touches memory the process kept: (almost) no page faults. glibc's defaults
    // would map and zero-fill 16384 pages again.
    const long before = minor_faults();
    p = static_cast<char*>(std::malloc(bytes));
    touch(p, bytes, 2);
    const long faults = minor_faults() - before;
    std::free(p);
    CHECK_MSG(faults < 1000, "taking a freed 64 MB block again cost " + std::to_string(faults) +
                                 " page faults (the block went back to the system)");

    // A large model's step frees more than 512 MB at the heap's top (d = 2048, 8 blocks: 12-15%
    // slower step when that went back). 5 x 128 MB blocks, each under the mmap threshold, freed
    // together, then taken again: still kept.
    // Nothing else may be allocated between them: a live small block above the last one would keep
    // them from joining the heap's top (hence a plain array and no message built in between).
    constexpr int count = 5;
    const size_t block = size_t(128) << 20;
    char* blocks[count] = {};
    for (char*& b : blocks) {
        b = static_cast<char*>(std::malloc(block));
        if (b != nullptr) touch(b, block, 1);
    }
    for (char* b : blocks) CHECK(b != nullptr);
    for (int i = count - 1; i >= 0; --i) std::free(blocks[i]);
    const long before_large = minor_faults();
    for (char*& b : blocks) {
        b = static_cast<char*>(std::malloc(block));
        if (b != nullptr) touch(b, block, 2);
    }
    const long large_faults = minor_faults() - before_large;
    for (char* b : blocks) std::free(b);
    CHECK_MSG(large_faults < 1000, "taking 640 MB freed at the heap's top again cost " + std::to_string(large_faults) +
                                       " page faults (the trim threshold gave it back to the system)");
#endif
}
