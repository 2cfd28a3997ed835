// A tiny test harness: TEST(name) registers a case, CHECK/CHECK_CLOSE record failures and keep
// going, SKIP(reason) ends a case as skipped (never as passed), main() runs the selected cases
// and prints each. Arguments select cases by name: PATTERN runs the cases whose name contains it,
// ^PATTERN those whose name starts with it, -PATTERN / -^PATTERN leaves them out; no including
// pattern = every case. Exit status: 1 when a case failed or none was selected, 77 (ctest's
// SKIP_RETURN_CODE) when every selected case skipped, else 0.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace cdas_test {

struct test_case {
    const char* name;
    std::function<void()> body;
};

std::vector<test_case>& registry();
void record_failure(const char* file, int line, const std::string& message);
int failures_in_current();
// Marks the running case as skipped, with the reason printed beside it (use SKIP to also return).
void skip_current(const std::string& reason);

// The seed of this run (CDAS_TEST_SEED or random); every test draws its own engine from it.
uint64_t run_seed();
std::mt19937_64 make_rng(const char* salt);

struct registrar {
    registrar(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

// Compares arrays with |got - want| <= atol + rtol |want|; reports the worst element.
bool all_close(const char* what, const float* got, const double* want, int64_t n, double atol, double rtol,
               const char* file, int line);

}  // namespace cdas_test

#define CDAS_TEST_CONCAT2(a, b) a##b
#define CDAS_TEST_CONCAT(a, b) CDAS_TEST_CONCAT2(a, b)
#define TEST(name)                                                                             \
    static void name();                                                                        \
    static cdas_test::registrar CDAS_TEST_CONCAT(registrar_, name)(#name, name);               \
    static void name()

#define SKIP(reason)                                                                           \
    do {                                                                                       \
        cdas_test::skip_current(reason);                                                       \
        return;                                                                                \
    } while (0)

// libtorch's c10/util/Logging.h defines a CHECK of its own; the tests' is this one
#ifdef CHECK
#undef CHECK
#endif
#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) cdas_test::record_failure(__FILE__, __LINE__, "CHECK(" #cond ") failed"); \
    } while (0)

#define CHECK_MSG(cond, msg)                                                                   \
    do {                                                                                       \
        if (!(cond)) cdas_test::record_failure(__FILE__, __LINE__, std::string(msg));          \
    } while (0)

#define CHECK_NEAR(got, want, tol)                                                             \
    do {                                                                                       \
        double g_ = (got), w_ = (want);                                                        \
        if (!(std::fabs(g_ - w_) <= (tol)))                                                    \
            cdas_test::record_failure(__FILE__, __LINE__,                                      \
                                      std::string(#got " = ") + std::to_string(g_) + ", want " \
                                          + std::to_string(w_) + " +- " + std::to_string(tol)); \
    } while (0)

#define CHECK_CLOSE(what, got, want, n, atol, rtol) \
    cdas_test::all_close(what, got, want, n, atol, rtol, __FILE__, __LINE__)

#define CHECK_STATUS(call, expected)                                                           \
    do {                                                                                       \
        cdas_status s_ = (call);                                                               \
        if (s_ != (expected))                                                                  \
            cdas_test::record_failure(__FILE__, __LINE__,                                      \
                                      std::string(#call " returned ") + std::to_string(s_) +   \
                                          " (" + cdas_last_error() + "), want " #expected);    \
    } while (0)
