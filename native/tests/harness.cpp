#include "harness.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "cdas.h"

namespace cdas_test {

namespace {
int current_failures = 0;
std::string current_skip;  // non-empty: the running case skipped, and why

bool matches(const char* name, const char* pattern) {
    if (pattern[0] == '^') return std::strncmp(name, pattern + 1, std::strlen(pattern + 1)) == 0;
    return std::strstr(name, pattern) != nullptr;
}

// The cases the arguments select (see harness.h).
bool selected(const char* name, int argc, char** argv) {
    bool any_include = false, included = false;
    for (int i = 1; i < argc; ++i) {
        if (argv[i][0] == '-') {
            if (matches(name, argv[i] + 1)) return false;
        } else {
            any_include = true;
            included = included || matches(name, argv[i]);
        }
    }
    return !any_include || included;
}
}  // namespace

void skip_current(const std::string& reason) { current_skip = reason.empty() ? "no reason given" : reason; }

std::vector<test_case>& registry() {
    static std::vector<test_case> cases;
    return cases;
}

void record_failure(const char* file, int line, const std::string& message) {
    ++current_failures;
    std::printf("    FAIL %s:%d: %s\n", file, line, message.c_str());
}

int failures_in_current() { return current_failures; }

uint64_t run_seed() {
    static uint64_t seed = [] {
        if (const char* s = std::getenv("CDAS_TEST_SEED")) return uint64_t(std::strtoull(s, nullptr, 10));
        return uint64_t(std::random_device{}()) ^ uint64_t(std::chrono::steady_clock::now().time_since_epoch().count());
    }();
    return seed;
}

std::mt19937_64 make_rng(const char* salt) {
    uint64_t h = run_seed();
    for (const char* p = salt; *p; ++p) h = h * 1099511628211ull + uint8_t(*p);
    return std::mt19937_64(h);
}

bool all_close(const char* what, const float* got, const double* want, int64_t n, double atol, double rtol,
               const char* file, int line) {
    int64_t worst = -1;
    double worst_excess = 0.0;
    for (int64_t i = 0; i < n; ++i) {
        double err = std::fabs(double(got[i]) - want[i]);
        double tol = atol + rtol * std::fabs(want[i]);
        if (!(err <= tol)) {  // NaN counts as a failure
            double excess = std::isnan(err) ? INFINITY : err - tol;
            if (worst < 0 || excess > worst_excess) {
                worst = i;
                worst_excess = excess;
            }
        }
    }
    if (worst < 0) return true;
    char buf[256];
    std::snprintf(buf, sizeof buf, "%s: element %lld of %lld: got %.9g, want %.9g (atol %.3g, rtol %.3g)", what,
                  (long long)worst, (long long)n, double(got[worst]), want[worst], atol, rtol);
    record_failure(file, line, buf);
    return false;
}

}  // namespace cdas_test

int main(int argc, char** argv) {
    using namespace cdas_test;
    std::printf("cdas native tests, seed %llu (set CDAS_TEST_SEED to repeat)\n", (unsigned long long)run_seed());
    int failed = 0, skipped = 0, run = 0;
    for (auto& c : registry()) {
        if (!selected(c.name, argc, argv)) continue;
        ++run;
        std::printf("[ RUN  ] %s\n", c.name);
        std::fflush(stdout);
        int before = failures_in_current();
        current_skip.clear();
        try {
            c.body();
        } catch (const std::exception& e) {
            record_failure(__FILE__, __LINE__, std::string("exception: ") + e.what());
        }
        if (failures_in_current() != before) {
            ++failed;
            std::printf("[ FAIL ] %s\n", c.name);
        } else if (!current_skip.empty()) {
            ++skipped;
            std::printf("[ SKIP ] %s: %s\n", c.name, current_skip.c_str());
        } else {
            std::printf("[  OK  ] %s\n", c.name);
        }
        std::fflush(stdout);
    }
    const int passed = run - failed - skipped;
    std::printf("%d of %d cases passed, %d skipped, %d failed\n", passed, run, skipped, failed);
    if (failed > 0 || run == 0) return 1;
    return passed == 0 ? 77 : 0;
}
