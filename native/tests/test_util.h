// Shared helpers of the test cases: random data, dtype round trips, RAII contexts.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cdas.h"
#include "cpu/dtype.h"
#include "harness.h"

// The ABI call must fail with `expected` and leave a message that mentions `needle`.
#define CHECK_FAILS(call, expected, needle)                                                          \
    do {                                                                                             \
        cdas_status s_ = (call);                                                                     \
        std::string m_ = cdas_last_error();                                                          \
        std::printf("    %-20s -> %d: %s\n", needle, int(s_), m_.c_str());                          \
        CHECK_MSG(s_ == (expected), std::string(#call " returned ") + std::to_string(s_) + " (" + m_ + "), want " #expected); \
        CHECK_MSG(m_.find(needle) != std::string::npos, "message lacks '" + std::string(needle) + "': " + m_); \
    } while (0)

namespace cdas_test {

inline std::vector<double> random_normal(std::mt19937_64& rng, int64_t n, double scale = 1.0) {
    std::normal_distribution<double> dist(0.0, scale);
    std::vector<double> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(rng);
    return v;
}

// A dtype buffer holding `values` rounded to dtype; `values` is replaced by the rounded values so
// the reference sees exactly what the kernel sees.
struct typed_buffer {
    int32_t dtype;
    std::vector<uint8_t> bytes;
    const void* data() const { return bytes.data(); }
    void* data() { return bytes.data(); }
};

inline typed_buffer to_dtype(int32_t dtype, std::vector<double>& values) {
    typed_buffer b{dtype, std::vector<uint8_t>(values.size() * size_t(cdas::cpu::dtype_size(dtype)))};
    for (size_t i = 0; i < values.size(); ++i) {
        float f = float(values[i]);
        if (dtype == CDAS_DTYPE_F32) {
            std::memcpy(b.bytes.data() + 4 * i, &f, 4);
        } else {
            uint16_t h = dtype == CDAS_DTYPE_BF16 ? cdas::cpu::f32_to_bf16(f) : cdas::cpu::f32_to_f16(f);
            std::memcpy(b.bytes.data() + 2 * i, &h, 2);
            f = dtype == CDAS_DTYPE_BF16 ? cdas::cpu::bf16_to_f32(h) : cdas::cpu::f16_to_f32(h);
        }
        values[i] = double(f);
    }
    return b;
}

inline std::vector<double> from_dtype(const typed_buffer& b, int64_t n) {
    std::vector<float> f(static_cast<size_t>(n));
    cdas::cpu::convert_to_f32(b.dtype, b.data(), 0, n, f.data());
    return std::vector<double>(f.begin(), f.end());
}

inline std::vector<float> to_float(std::vector<double>& values) {
    std::vector<float> f(values.begin(), values.end());
    for (size_t i = 0; i < f.size(); ++i) values[i] = double(f[i]);
    return f;
}

inline void poison(std::vector<float>& v) { std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN()); }

inline void poison(typed_buffer& b) {
    // All-ones bytes are a NaN in every dtype.
    std::fill(b.bytes.begin(), b.bytes.end(), uint8_t(0xff));
}

inline const char* dtype_name(int32_t dtype) {
    return dtype == CDAS_DTYPE_F32 ? "f32" : dtype == CDAS_DTYPE_BF16 ? "bf16" : "f16";
}

struct context_handle {
    cdas_context* ptr = nullptr;
    explicit context_handle(int32_t schedule = CDAS_JSD_SCHEDULE_AUTO, int32_t threads = 0, int32_t chunk_rows = 0) {
        cdas_context_options o;
        cdas_context_options_default(&o);
        o.jsd_schedule = schedule;
        o.num_threads = threads;
        o.chunk_rows = chunk_rows;
        if (cdas_context_create(&o, &ptr) != CDAS_STATUS_OK) {
            record_failure(__FILE__, __LINE__, std::string("cdas_context_create: ") + cdas_last_error());
        }
    }
    ~context_handle() { cdas_context_destroy(ptr); }
    context_handle(const context_handle&) = delete;
    context_handle& operator=(const context_handle&) = delete;
};

inline std::vector<uint8_t> random_mask(std::mt19937_64& rng, int64_t n, double keep = 0.7) {
    std::bernoulli_distribution dist(keep);
    std::vector<uint8_t> m(static_cast<size_t>(n));
    for (auto& x : m) x = dist(rng) ? 1 : 0;
    if (n > 0) m[0] = 1;
    if (n > 1) m[size_t(n - 1)] = 0;
    return m;
}

// Per-dtype tolerances of fp32-computed results against the double references, relative to the
// largest reference magnitude (atol) and to each element (rtol).
// Whether the libtorch this process runs on lacks CUDA ("CPU only" on cdas_build_info()'s
// "torch at run time:" line). False when that line is absent (a build without torch).
inline bool torch_is_cpu_only() {
    const std::string info = cdas_build_info();
    const size_t runtime = info.find("torch at run time:");
    return runtime != std::string::npos && info.find("CPU only", runtime) < info.find('\n', runtime);
}

inline double atol_for(int32_t dtype, double max_abs) { return (dtype == CDAS_DTYPE_F32 ? 2e-5 : 4e-5) * max_abs + 1e-7; }
inline double rtol_for(int32_t dtype) { return dtype == CDAS_DTYPE_F32 ? 1e-4 : 2e-4; }

inline double max_abs(const std::vector<double>& v) {
    double m = 0.0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

}  // namespace cdas_test
