// GPU check-and-bench for cdas-native, through the public C ABI only (cdas.h).
//
//   gpu_check_bench --check [--size full|small|emulated] [--group G] [--filter TERMS]
//       every CUDA kernel/schedule/dtype against the CPU path of the same ABI (a CPU context),
//       fresh random inputs, awkward shapes, outputs poisoned with NaN first
//   gpu_check_bench --bench [--filter TERMS] [--tokens LIST] [--out FILE] ...
//       timings at Gemma-2-2B and Llama-3-8B head shapes, each row appended to FILE when measured
//   gpu_check_bench --help
//
// check-and-bench.sh runs --check before --bench, in separate processes with their own time
// limits. Built by CMake with the CUDA kernels (target gpu_check_bench), and against the CPU
// emulation of CUDA as gpu_check_bench_emu. Exit status: 0 all checks passed, 1 a check failed,
// 2 usage or setup error.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cdas.h"

namespace {

int g_failures = 0;
int g_checks = 0;

#define CUDA_OR_DIE(expr)                                                                      \
    do {                                                                                       \
        cudaError_t e_ = (expr);                                                               \
        if (e_ != cudaSuccess) {                                                               \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #expr, cudaGetErrorString(e_)); \
            std::exit(2);                                                                      \
        }                                                                                      \
    } while (0)

void cdas_or_die(cdas_status st, const char* what) {
    if (st != CDAS_STATUS_OK) {
        std::fprintf(stderr, "%s failed: status %d: %s\n", what, static_cast<int>(st), cdas_last_error());
        std::exit(2);
    }
}

// ---- host-side dtype conversion (round to nearest even) -------------------------------------

uint16_t f32_to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
}
float bf16_to_f32(uint16_t h) {
    uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}
uint16_t f32_to_f16(float f) {
    // Through the half-precision rules: normals, subnormals, overflow to inf.
    uint32_t u;
    std::memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    float a = std::fabs(f);
    if (std::isnan(f)) return 0x7e00;
    if (a >= 65520.0f) return static_cast<uint16_t>(sign | 0x7c00u);
    if (a < 6.103515625e-05f) {  // subnormal: multiples of 2^-24
        uint32_t m = static_cast<uint32_t>(std::nearbyint(a * 16777216.0f));
        return static_cast<uint16_t>(sign | m);
    }
    int e;
    float m = std::frexp(a, &e);  // a = m 2^e, m in [0.5, 1)
    uint32_t mant = static_cast<uint32_t>(std::nearbyint((m * 2.0f - 1.0f) * 1024.0f));
    int exp = e - 1 + 15;
    if (mant == 1024) {
        mant = 0;
        ++exp;
    }
    if (exp >= 31) return static_cast<uint16_t>(sign | 0x7c00u);
    return static_cast<uint16_t>(sign | (static_cast<uint32_t>(exp) << 10) | mant);
}
float f16_to_f32(uint16_t h) {
    uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
    else if (exp == 31) v = mant ? NAN : INFINITY;
    else v = std::ldexp(1.0f + mant / 1024.0f, static_cast<int>(exp) - 15);
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u |= sign;
    std::memcpy(&v, &u, 4);
    return v;
}

size_t dtype_size(int32_t dtype) { return dtype == CDAS_DTYPE_F32 ? 4 : 2; }
const char* dtype_name(int32_t dtype) {
    return dtype == CDAS_DTYPE_F32 ? "f32" : dtype == CDAS_DTYPE_BF16 ? "bf16" : "f16";
}
const char* schedule_name(int32_t s) {
    return s == CDAS_JSD_SCHEDULE_CHUNKED ? "CHUNKED" : "AUTO";
}

// ---- selection: --size and --filter (checks and bench) -----------------------------------------
//
// --filter takes comma-separated terms, case-insensitive; each belongs to one kind:
//   section   lmhead (also jsd, lm_head_jsd), dii
//   schedule  chunked, auto                   (imply section lmhead)
//   model     gemma, llama, tiny              (bench shapes; DII rows use the model's d)
//   dtype     f32, bf16, f16                  (the bench is bf16 only)
// Sections: those named, plus lmhead when a schedule is named; none named = all. Within the
// selected sections a row runs when, for every other kind with terms, it matches one of them.
// "chunked,llama" = the CHUNKED LM-head rows of Llama; "chunked,dii" = CHUNKED LM-head rows and
// DII rows.

std::string g_shapes = "full";  // --size full|small|emulated (run_checks' shape sets; the bench's tiny shape unless full)
bool g_verbose = false;         // --verbose: a "RUN <check>" line before each check

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

struct Filter {
    std::vector<std::string> sections, schedules, models, dtypes;  // empty: all
    static bool in(const std::vector<std::string>& set, const std::string& v) {
        return set.empty() || std::find(set.begin(), set.end(), v) != set.end();
    }
    bool section(const std::string& s) const { return in(sections, s); }
    bool schedule(int32_t s) const { return in(schedules, lower(schedule_name(s))); }
    bool dtype(int32_t d) const { return in(dtypes, dtype_name(d)); }
    // model names are "gemma-2-2b", "llama-3-8b", "tiny": a term matches the name's first word
    bool model(const std::string& name) const { return in(models, name.substr(0, name.find('-'))); }
    std::string describe() const {
        auto list = [](const std::vector<std::string>& v) {
            std::string out;
            for (const auto& x : v) out += (out.empty() ? "" : "|") + x;
            return out.empty() ? std::string("all") : out;
        };
        return "sections " + list(sections) + ", schedules " + list(schedules) + ", models " + list(models) +
               ", dtypes " + list(dtypes);
    }
};
Filter g_filter;

// Empty on success, else the reason (one line).
std::string parse_filter(const std::string& text, Filter& f) {
    std::stringstream in(text);
    std::string term;
    bool any = false;
    auto add = [](std::vector<std::string>& v, const std::string& t) {
        if (std::find(v.begin(), v.end(), t) == v.end()) v.push_back(t);
    };
    while (std::getline(in, term, ',')) {
        term = lower(term);
        if (term.empty()) continue;
        any = true;
        if (term == "lmhead" || term == "jsd" || term == "lm_head_jsd") add(f.sections, "lmhead");
        else if (term == "dii") add(f.sections, "dii");
        else if (term == "chunked" || term == "auto") add(f.schedules, term);
        else if (term == "fused") return "the FUSED LM-head schedule was removed (CHUNKED is the only one)";
        else if (term == "gemma" || term == "llama" || term == "tiny") add(f.models, term);
        else if (term == "f32" || term == "bf16" || term == "f16") add(f.dtypes, term);
        else
            return "unknown filter term '" + term +
                   "' (known: lmhead dii chunked auto gemma llama tiny f32 bf16 f16)";
    }
    if (!any) return "empty filter";
    if (!f.schedules.empty()) add(f.sections, "lmhead");
    return "";
}

// A tensor as raw bytes in its dtype, plus its values as fp32 (after rounding to the dtype).
struct HostTensor {
    int32_t dtype = CDAS_DTYPE_F32;
    std::vector<uint8_t> bytes;
    int64_t count = 0;
    float get(int64_t i) const {
        if (dtype == CDAS_DTYPE_F32) {
            float f;
            std::memcpy(&f, bytes.data() + 4 * i, 4);
            return f;
        }
        uint16_t h;
        std::memcpy(&h, bytes.data() + 2 * i, 2);
        return dtype == CDAS_DTYPE_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    void set(int64_t i, float v) {
        if (dtype == CDAS_DTYPE_F32) {
            std::memcpy(bytes.data() + 4 * i, &v, 4);
        } else {
            uint16_t h = dtype == CDAS_DTYPE_BF16 ? f32_to_bf16(v) : f32_to_f16(v);
            std::memcpy(bytes.data() + 2 * i, &h, 2);
        }
    }
};

HostTensor make_tensor(int32_t dtype, int64_t count) {
    HostTensor t;
    t.dtype = dtype;
    t.count = count;
    t.bytes.assign(static_cast<size_t>(count) * dtype_size(dtype), 0xff);  // 0xff..: NaN in every dtype
    return t;
}

HostTensor random_tensor(std::mt19937_64& rng, int32_t dtype, int64_t count, float scale) {
    std::normal_distribution<float> n(0.0f, scale);
    HostTensor t = make_tensor(dtype, count);
    for (int64_t i = 0; i < count; ++i) t.set(i, n(rng));
    return t;
}

// Device buffer poisoned with NaN (0xff bytes) before use.
struct DeviceBuffer {
    void* ptr = nullptr;
    size_t bytes = 0;
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t n) : bytes(n) {
        CUDA_OR_DIE(cudaMalloc(&ptr, std::max<size_t>(n, 16)));
        CUDA_OR_DIE(cudaMemset(ptr, 0xff, std::max<size_t>(n, 16)));
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : ptr(o.ptr), bytes(o.bytes) { o.ptr = nullptr; }
    ~DeviceBuffer() {
        if (ptr) cudaFree(ptr);
    }
    template <typename T>
    T* as() const { return static_cast<T*>(ptr); }
};

DeviceBuffer upload(const void* data, size_t bytes) {
    DeviceBuffer b(bytes);
    CUDA_OR_DIE(cudaMemcpy(b.ptr, data, bytes, cudaMemcpyHostToDevice));
    return b;
}
DeviceBuffer upload(const HostTensor& t) { return upload(t.bytes.data(), t.bytes.size()); }
template <typename T>
DeviceBuffer upload(const std::vector<T>& v) { return upload(v.data(), v.size() * sizeof(T)); }

HostTensor download(const DeviceBuffer& b, int32_t dtype, int64_t count) {
    HostTensor t = make_tensor(dtype, count);
    CUDA_OR_DIE(cudaMemcpy(t.bytes.data(), b.ptr, t.bytes.size(), cudaMemcpyDeviceToHost));
    return t;
}

// |gpu - ref| <= atol * max|ref| + rtol * |ref| elementwise; NaN never passes.
bool compare(const std::string& what, const HostTensor& gpu, const HostTensor& ref, double atol, double rtol) {
    ++g_checks;
    double scale = 0.0;
    for (int64_t i = 0; i < ref.count; ++i) scale = std::max(scale, std::fabs(static_cast<double>(ref.get(i))));
    double worst = 0.0;
    int64_t worst_i = -1, bad = 0;
    bool ref_nan = false;
    for (int64_t i = 0; i < ref.count; ++i) {
        double g = gpu.get(i), r = ref.get(i);
        if (std::isnan(r)) ref_nan = true;
        double err = std::fabs(g - r);
        double tol = atol * scale + rtol * std::fabs(r);
        if (!(err <= tol)) {
            ++bad;
            double excess = std::isnan(err) ? INFINITY : err / std::max(tol, 1e-30);
            if (worst_i < 0 || excess > worst) {
                worst = excess;
                worst_i = i;
            }
        }
    }
    if (ref_nan) {
        std::printf("FAIL %s: the CPU reference itself has NaN\n", what.c_str());
        ++g_failures;
        return false;
    }
    if (bad > 0) {
        std::printf("FAIL %s: %" PRId64 "/%" PRId64 " elements off; worst [%" PRId64 "] gpu %.8g cpu %.8g (scale %.3g)\n",
                    what.c_str(), bad, ref.count, worst_i, gpu.get(worst_i), ref.get(worst_i), scale);
        ++g_failures;
        return false;
    }
    return true;
}

void expect(bool ok, const std::string& what) {
    ++g_checks;
    if (!ok) {
        std::printf("FAIL %s\n", what.c_str());
        ++g_failures;
    }
}

struct Contexts {
    cdas_context* cpu = nullptr;
    cdas_context* gpu = nullptr;
};

cdas_context* make_context(int32_t device, int32_t schedule, int32_t chunk_rows) {
    cdas_context_options o;
    cdas_or_die(cdas_context_options_default(&o), "cdas_context_options_default");
    o.device_type = device;
    o.jsd_schedule = schedule;
    o.chunk_rows = chunk_rows;
    cdas_context* c = nullptr;
    cdas_or_die(cdas_context_create(&o, &c), "cdas_context_create");
    return c;
}

// A context with cdas_context_options.check_inputs set as given (make_context leaves the default 0).
cdas_context* make_context_checked(int32_t device, int32_t schedule, int32_t chunk_rows, int32_t check_inputs) {
    cdas_context_options o;
    cdas_or_die(cdas_context_options_default(&o), "cdas_context_options_default");
    o.device_type = device;
    o.jsd_schedule = schedule;
    o.chunk_rows = chunk_rows;
    o.check_inputs = check_inputs;
    cdas_context* c = nullptr;
    cdas_or_die(cdas_context_create(&o, &c), "cdas_context_create");
    return c;
}

// ---- DII checks -------------------------------------------------------------------------------

struct DiiShape {
    int64_t rows, dim, rank, examples;
    int64_t sets = 1;  // > 1: cdas_dii_*_sets, a random direction set per example (every set used)
};

std::vector<float> unit_rows(std::mt19937_64& rng, int64_t rank, int64_t dim) {
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> w(static_cast<size_t>(rank * dim));
    for (int64_t i = 0; i < rank; ++i) {
        double norm = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
            w[i * dim + j] = n(rng);
            norm += double(w[i * dim + j]) * w[i * dim + j];
        }
        for (int64_t j = 0; j < dim; ++j) w[i * dim + j] = static_cast<float>(w[i * dim + j] / std::sqrt(norm));
    }
    return w;
}

void check_dii(const DiiShape& s, int32_t dtype, bool with_source, bool with_mask, uint64_t seed) {
    std::mt19937_64 rng(seed);
    char label[256];
    char sets_label[32] = "";
    if (s.sets > 1) std::snprintf(sets_label, sizeof sets_label, " sets=%" PRId64, s.sets);
    std::snprintf(label, sizeof label, "dii %s T=%" PRId64 " d=%" PRId64 " r=%" PRId64 " B=%" PRId64 "%s %s %s seed=%" PRIu64,
                  dtype_name(dtype), s.rows, s.dim, s.rank, s.examples, sets_label, with_source ? "source" : "values",
                  with_mask ? "masked" : "all-rows", seed);
    const std::string name(label);
    if (!g_filter.section("dii") || !g_filter.dtype(dtype)) return;  // --filter
    if (g_verbose) std::printf("RUN %s\n", label), std::fflush(stdout);
    HostTensor h = random_tensor(rng, dtype, s.rows * s.dim, 1.0f);
    HostTensor g = random_tensor(rng, dtype, s.rows * s.dim, 0.5f);
    HostTensor src = random_tensor(rng, dtype, s.examples * s.dim, 1.0f);
    std::vector<float> w = unit_rows(rng, s.sets * s.rank, s.dim);
    std::vector<float> values(static_cast<size_t>(s.examples * s.rank));
    std::normal_distribution<float> n(0.0f, 2.0f);
    for (float& v : values) v = n(rng);
    std::vector<int32_t> index(static_cast<size_t>(s.rows));
    for (int64_t t = 0; t < s.rows; ++t) index[t] = static_cast<int32_t>((t * s.examples) / s.rows);  // contiguous
    std::shuffle(index.begin(), index.end(), rng);  // and not: nothing may assume contiguity
    std::vector<uint8_t> mask(static_cast<size_t>(s.rows));
    for (auto& m : mask) m = (rng() % 4) != 0;
    std::vector<int32_t> example_set;
    if (s.sets > 1) {
        for (int64_t e = 0; e < s.examples; ++e) example_set.push_back(static_cast<int32_t>(e % s.sets));
        std::shuffle(example_set.begin(), example_set.end(), rng);
    }
    const int64_t n_w = s.sets * s.rank * s.dim;
    // One or several direction sets through the same two entry points (sets = 1: the plain ones).
    auto forward = [&](cdas_context* c, const void* hh, const float* ww, const void* sr, const float* vv,
                       const int32_t* ix, const int32_t* es, const uint8_t* mk, void* out, float* av) {
        return s.sets == 1 ? cdas_dii_forward(c, dtype, s.rows, s.dim, s.rank, s.examples, hh, ww, sr, vv, ix, mk, out, av)
                           : cdas_dii_forward_sets(c, dtype, s.rows, s.dim, s.rank, s.examples, s.sets, hh, ww, sr, vv, ix,
                                                   es, mk, out, av);
    };
    auto backward = [&](cdas_context* c, const void* hh, const float* ww, const void* sr, const float* vv,
                        const int32_t* ix, const int32_t* es, const uint8_t* mk, const void* gg, void* gh, float* gw,
                        float* gv) {
        return s.sets == 1 ? cdas_dii_backward(c, dtype, s.rows, s.dim, s.rank, s.examples, hh, ww, sr, vv, ix, mk, gg, gh,
                                               gw, gv)
                           : cdas_dii_backward_sets(c, dtype, s.rows, s.dim, s.rank, s.examples, s.sets, hh, ww, sr, vv,
                                                    ix, es, mk, gg, gh, gw, gv);
    };

    const void* src_h = with_source ? src.bytes.data() : nullptr;
    const float* val_h = with_source ? nullptr : values.data();
    const uint8_t* mask_h = with_mask ? mask.data() : nullptr;

    // CPU reference through the same ABI.
    cdas_context* cpu = make_context(CDAS_DEVICE_CPU, CDAS_JSD_SCHEDULE_AUTO, 0);
    HostTensor ref_out = make_tensor(dtype, s.rows * s.dim), ref_gh = make_tensor(dtype, s.rows * s.dim);
    HostTensor ref_av = make_tensor(CDAS_DTYPE_F32, s.examples * s.rank);
    HostTensor ref_gw = make_tensor(CDAS_DTYPE_F32, n_w), ref_gv = make_tensor(CDAS_DTYPE_F32, s.examples * s.rank);
    const int32_t* set_h = example_set.empty() ? nullptr : example_set.data();
    cdas_or_die(forward(cpu, h.bytes.data(), w.data(), src_h, val_h, index.data(), set_h, mask_h, ref_out.bytes.data(),
                        reinterpret_cast<float*>(ref_av.bytes.data())),
                "cpu dii_forward");
    cdas_or_die(backward(cpu, h.bytes.data(), w.data(), src_h, val_h, index.data(), set_h, mask_h, g.bytes.data(),
                         ref_gh.bytes.data(), reinterpret_cast<float*>(ref_gw.bytes.data()),
                         reinterpret_cast<float*>(ref_gv.bytes.data())),
                "cpu dii_backward");
    cdas_context_destroy(cpu);

    cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
    DeviceBuffer dh = upload(h), dg = upload(g), dsrc = upload(src), dw = upload(w), dval = upload(values),
                 didx = upload(index), dmask = upload(mask);
    std::vector<int32_t> set_upload = example_set.empty() ? std::vector<int32_t>{0} : example_set;
    DeviceBuffer dset = upload(set_upload);
    const int32_t* set_d = example_set.empty() ? nullptr : dset.as<int32_t>();
    DeviceBuffer dout(h.bytes.size()), dgh(h.bytes.size()), dav(4 * s.examples * s.rank), dgw(4 * n_w),
        dgv(4 * s.examples * s.rank);
    const void* src_d = with_source ? dsrc.ptr : nullptr;
    const float* val_d = with_source ? nullptr : dval.as<float>();
    const uint8_t* mask_d = with_mask ? dmask.as<uint8_t>() : nullptr;
    cdas_status st = forward(gpu, dh.ptr, dw.as<float>(), src_d, val_d, didx.as<int32_t>(), set_d, mask_d, dout.ptr,
                             dav.as<float>());
    expect(st == CDAS_STATUS_OK, name + " forward status " + std::to_string(st) + " " + cdas_last_error());
    st = backward(gpu, dh.ptr, dw.as<float>(), src_d, val_d, didx.as<int32_t>(), set_d, mask_d, dg.ptr, dgh.ptr,
                  dgw.as<float>(), dgv.as<float>());
    expect(st == CDAS_STATUS_OK, name + " backward status " + std::to_string(st) + " " + cdas_last_error());
    cdas_or_die(cdas_context_synchronize(gpu), "synchronize");

    // Storage rounding of h' and dL/dh: one ulp of the dtype; fp32 sums in another order.
    const double store_rtol = dtype == CDAS_DTYPE_F32 ? 1e-5 : dtype == CDAS_DTYPE_BF16 ? 8e-3 : 1e-3;
    const double store_atol = dtype == CDAS_DTYPE_F32 ? 1e-5 : dtype == CDAS_DTYPE_BF16 ? 8e-3 : 1e-3;
    compare(name + " h_out", download(dout, dtype, s.rows * s.dim), ref_out, store_atol, store_rtol);
    compare(name + " source_values_out", download(dav, CDAS_DTYPE_F32, s.examples * s.rank), ref_av, 1e-5, 1e-4);
    compare(name + " grad_h", download(dgh, dtype, s.rows * s.dim), ref_gh, store_atol, store_rtol);
    compare(name + " grad_directions", download(dgw, CDAS_DTYPE_F32, n_w), ref_gw, 1e-4, 1e-3);
    compare(name + " grad_values", download(dgv, CDAS_DTYPE_F32, s.examples * s.rank), ref_gv, 1e-5, 1e-4);

    // Bitwise determinism of grad_directions on repeat (fresh poison in between).
    HostTensor first = download(dgw, CDAS_DTYPE_F32, n_w);
    for (int rep = 0; rep < 3; ++rep) {
        CUDA_OR_DIE(cudaMemset(dgw.ptr, 0xff, dgw.bytes));
        st = backward(gpu, dh.ptr, dw.as<float>(), src_d, val_d, didx.as<int32_t>(), set_d, mask_d, dg.ptr, nullptr,
                      dgw.as<float>(), nullptr);
        cdas_or_die(cdas_context_synchronize(gpu), "synchronize");
        HostTensor again = download(dgw, CDAS_DTYPE_F32, n_w);
        expect(st == CDAS_STATUS_OK && again.bytes == first.bytes, name + " grad_directions bitwise repeatable");
    }
    cdas_context_destroy(gpu);
}

// ---- LM head + JSD checks ---------------------------------------------------------------------

struct JsdShape {
    int64_t rows, dim, vocab;
};

void check_jsd(const JsdShape& s, int32_t dtype, int32_t schedule, int32_t chunk_rows, float softcap, bool with_mask,
               bool with_grad, uint64_t seed) {
    std::mt19937_64 rng(seed);
    char label[256];
    std::snprintf(label, sizeof label, "lm_head_jsd %s %s chunk=%d T=%" PRId64 " d=%" PRId64 " V=%" PRId64
                  " cap=%g %s %s seed=%" PRIu64,
                  schedule_name(schedule), dtype_name(dtype), chunk_rows, s.rows, s.dim, s.vocab, softcap,
                  with_mask ? "masked" : "all-rows", with_grad ? "fwd+bwd" : "fwd", seed);
    const std::string name(label);
    if (!g_filter.section("lmhead") || !g_filter.schedule(schedule) || !g_filter.dtype(dtype)) return;  // --filter
    if (g_verbose) std::printf("RUN %s\n", label), std::fflush(stdout);
    HostTensor xs = random_tensor(rng, dtype, s.rows * s.dim, 1.0f);
    HostTensor xt = make_tensor(dtype, s.rows * s.dim);
    std::normal_distribution<float> noise(0.0f, 0.5f);
    for (int64_t i = 0; i < xt.count; ++i) xt.set(i, xs.get(i) + noise(rng));  // a teacher that is close, not equal
    HostTensor head = random_tensor(rng, dtype, s.vocab * s.dim, 3.0f / std::sqrt(static_cast<float>(s.dim)));
    std::vector<uint8_t> mask(static_cast<size_t>(s.rows));
    for (auto& m : mask) m = (rng() % 3) != 0;
    const uint8_t* mask_h = with_mask ? mask.data() : nullptr;
    const float grad_scale = 0.7f;

    cdas_context* cpu = make_context(CDAS_DEVICE_CPU, schedule, chunk_rows);
    HostTensor ref_loss = make_tensor(CDAS_DTYPE_F32, 1), ref_rows = make_tensor(CDAS_DTYPE_F32, s.rows);
    HostTensor ref_grad = make_tensor(CDAS_DTYPE_F32, s.rows * s.dim);
    cdas_or_die(cdas_lm_head_jsd(cpu, dtype, s.rows, s.dim, s.vocab, xs.bytes.data(), xt.bytes.data(), head.bytes.data(),
                                 softcap, mask_h, grad_scale, reinterpret_cast<float*>(ref_loss.bytes.data()),
                                 reinterpret_cast<float*>(ref_rows.bytes.data()),
                                 with_grad ? reinterpret_cast<float*>(ref_grad.bytes.data()) : nullptr),
                "cpu lm_head_jsd");
    cdas_context_destroy(cpu);

    cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, schedule, chunk_rows);
    DeviceBuffer dxs = upload(xs), dxt = upload(xt), dhead = upload(head), dmask = upload(mask);
    DeviceBuffer dloss(4), drows(4 * s.rows), dgrad(4 * s.rows * s.dim);
    cdas_status st = cdas_lm_head_jsd(gpu, dtype, s.rows, s.dim, s.vocab, dxs.ptr, dxt.ptr, dhead.ptr, softcap,
                                      with_mask ? dmask.as<uint8_t>() : nullptr, grad_scale, dloss.as<float>(),
                                      drows.as<float>(), with_grad ? dgrad.as<float>() : nullptr);
    expect(st == CDAS_STATUS_OK, name + " status " + std::to_string(st) + " " + cdas_last_error());
    cdas_or_die(cdas_context_synchronize(gpu), "synchronize");
    // Logits are fp32 GEMMs of the same (dtype-rounded) inputs on both sides: only summation order
    // differs. The bf16/f16 gradient goes through a 16-bit dL/dz (the head GEMM's input type).
    const double grad_atol = dtype == CDAS_DTYPE_F32 ? 1e-4 : dtype == CDAS_DTYPE_BF16 ? 3e-2 : 1e-2;
    compare(name + " loss", download(dloss, CDAS_DTYPE_F32, 1), ref_loss, 0.0, 2e-3);
    compare(name + " row_loss", download(drows, CDAS_DTYPE_F32, s.rows), ref_rows, 1e-3, 2e-3);
    if (with_grad) compare(name + " grad_student", download(dgrad, CDAS_DTYPE_F32, s.rows * s.dim), ref_grad, grad_atol, 0.0);
    cdas_context_destroy(gpu);
}

// A NaN in an input: with check_inputs on, NON_FINITE naming the argument, whatever the schedule;
// with it off (the CUDA default: no scan, no synchronisation) the call succeeds and the outputs it
// feeds are non-finite.
void check_non_finite() {
    const int64_t T = 5, d = 24, V = 77;
    std::mt19937_64 rng(7);
    HostTensor xs = random_tensor(rng, CDAS_DTYPE_BF16, T * d, 1.0f), head = random_tensor(rng, CDAS_DTYPE_BF16, V * d, 0.2f);
    head.set(V * d - 3, NAN);
    std::vector<float> h(static_cast<size_t>(T * d), 1.0f), w(static_cast<size_t>(d), 0.0f), vals(1, 0.0f);
    w[0] = 1.0f;
    h[3] = INFINITY;
    std::vector<int32_t> idx(static_cast<size_t>(T), 0);
    DeviceBuffer dxs = upload(xs), dhead = upload(head), dloss(4), dgrad(4 * T * d);
    DeviceBuffer dh = upload(h), dw = upload(w), dv = upload(vals), di = upload(idx), dout(4 * T * d);
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        const std::string sched = schedule_name(schedule);
        cdas_context* checked = make_context_checked(CDAS_DEVICE_CUDA, schedule, 0, 1);
        cdas_status st = cdas_lm_head_jsd(checked, CDAS_DTYPE_BF16, T, d, V, dxs.ptr, dxs.ptr, dhead.ptr, 0.0f, nullptr,
                                          1.0f, dloss.as<float>(), nullptr, dgrad.as<float>());
        expect(st == CDAS_STATUS_NON_FINITE && std::strstr(cdas_last_error(), "head") != nullptr,
               "check_inputs on, " + sched + ": NaN in head -> NON_FINITE naming head; got status " +
                   std::to_string(st) + ": " + cdas_last_error());
        cdas_context_destroy(checked);

        cdas_context* fast = make_context(CDAS_DEVICE_CUDA, schedule, 0);  // check_inputs 0
        CUDA_OR_DIE(cudaMemset(dloss.ptr, 0, 4));
        CUDA_OR_DIE(cudaMemset(dgrad.ptr, 0, 4 * T * d));
        st = cdas_lm_head_jsd(fast, CDAS_DTYPE_BF16, T, d, V, dxs.ptr, dxs.ptr, dhead.ptr, 0.0f, nullptr, 1.0f,
                              dloss.as<float>(), nullptr, dgrad.as<float>());
        cdas_status sync = cdas_context_synchronize(fast);
        HostTensor loss = download(dloss, CDAS_DTYPE_F32, 1), grad = download(dgrad, CDAS_DTYPE_F32, T * d);
        bool grad_non_finite = false;
        for (int64_t i = 0; i < grad.count; ++i) grad_non_finite |= !std::isfinite(grad.get(i));
        expect(st == CDAS_STATUS_OK && sync == CDAS_STATUS_OK && !std::isfinite(loss.get(0)) && grad_non_finite,
               "check_inputs off, " + sched + ": NaN in head -> OK and non-finite loss/grad; got status " +
                   std::to_string(st) + "/" + std::to_string(sync) + ", loss " + std::to_string(loss.get(0)));
        cdas_context_destroy(fast);
    }
    cdas_context* checked = make_context_checked(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0, 1);
    cdas_status st = cdas_dii_forward(checked, CDAS_DTYPE_F32, T, d, 1, 1, dh.ptr, dw.as<float>(), nullptr,
                                      dv.as<float>(), di.as<int32_t>(), nullptr, dout.ptr, nullptr);
    expect(st == CDAS_STATUS_NON_FINITE && std::strstr(cdas_last_error(), "h") != nullptr,
           std::string("check_inputs on: Inf in h -> NON_FINITE; got status ") + std::to_string(st) + ": " + cdas_last_error());
    cdas_context_destroy(checked);
    cdas_context* fast = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
    st = cdas_dii_forward(fast, CDAS_DTYPE_F32, T, d, 1, 1, dh.ptr, dw.as<float>(), nullptr, dv.as<float>(),
                          di.as<int32_t>(), nullptr, dout.ptr, nullptr);
    cdas_status sync = cdas_context_synchronize(fast);
    HostTensor out = download(dout, CDAS_DTYPE_F32, T * d);
    expect(st == CDAS_STATUS_OK && sync == CDAS_STATUS_OK && !std::isfinite(out.get(3)) && out.get(d + 1) == 1.0f,
           std::string("check_inputs off: Inf in h -> OK, h_out non-finite where h is (h_out[3] = ") +
               std::to_string(out.get(3)) + "), finite elsewhere; status " + std::to_string(st) + "/" + std::to_string(sync));
    cdas_context_destroy(fast);
}

// ---- regression checks for the defects found in review (issue 9, section 2) ---------------------

// Relative L2 error of every row of [rows x dim] fp32 gradients, and of the whole tensor. A row
// whose reference is exactly 0 (masked) must be exactly 0. One check; prints the numbers.
bool compare_rows_relative(const std::string& what, const HostTensor& gpu, const HostTensor& ref, int64_t rows,
                           int64_t dim, double row_tol, double global_tol) {
    ++g_checks;
    double worst = 0.0, num = 0.0, den = 0.0;
    int64_t worst_row = -1;
    bool ok = true;
    for (int64_t t = 0; t < rows; ++t) {
        double e2 = 0.0, r2 = 0.0;
        for (int64_t j = 0; j < dim; ++j) {
            const double g = gpu.get(t * dim + j), r = ref.get(t * dim + j);
            e2 += (g - r) * (g - r);
            r2 += r * r;
        }
        num += e2;
        den += r2;
        const double rel = r2 > 0.0 ? std::sqrt(e2 / r2) : (e2 == 0.0 ? 0.0 : INFINITY);
        if (!(rel <= worst) || std::isnan(rel)) {
            worst = std::isnan(rel) ? INFINITY : rel;
            worst_row = t;
        }
    }
    const double global = den > 0.0 ? std::sqrt(num / den) : (num == 0.0 ? 0.0 : INFINITY);
    ok = worst <= row_tol && global <= global_tol;
    std::printf("%s %s: worst row relative L2 error %.3g (row %" PRId64 ", tolerance %.3g), whole tensor %.3g "
                "(tolerance %.3g)\n", ok ? "ok  " : "FAIL", what.c_str(), worst, worst_row, row_tol, global, global_tol);
    if (!ok) ++g_failures;
    return ok;
}

// Defect: the f16/bf16 CHUNKED backward folded grad_scale / 2 / n into the 16-bit dL/dz, which
// underflows fp16 at large n (simulated: ~0.7% whole-tensor and >100% worst-row error at n = 4096,
// ~9% whole-tensor at 65536 with these shapes). Small d and V keep it cheap; no mask, so n = rows.
void check_chunked_dz_scale(int64_t rows, uint64_t seed) {
    const int64_t d = 16, V = 64;
    const float grad_scale = 0.7f;
    for (int32_t dtype : {CDAS_DTYPE_F16, CDAS_DTYPE_BF16}) {
        std::mt19937_64 rng(seed);
        char label[160];
        std::snprintf(label, sizeof label, "dz scale: lm_head_jsd CHUNKED %s T=%" PRId64 " d=%" PRId64 " V=%" PRId64,
                      dtype_name(dtype), rows, d, V);
        const std::string name(label);
        HostTensor xs = random_tensor(rng, dtype, rows * d, 1.0f);
        HostTensor xt = make_tensor(dtype, rows * d);
        std::normal_distribution<float> noise(0.0f, 0.5f);
        for (int64_t i = 0; i < xt.count; ++i) xt.set(i, xs.get(i) + noise(rng));
        HostTensor head = random_tensor(rng, dtype, V * d, 3.0f / std::sqrt(static_cast<float>(d)));

        cdas_context* cpu = make_context(CDAS_DEVICE_CPU, CDAS_JSD_SCHEDULE_CHUNKED, 0);
        HostTensor ref_loss = make_tensor(CDAS_DTYPE_F32, 1), ref_grad = make_tensor(CDAS_DTYPE_F32, rows * d);
        cdas_or_die(cdas_lm_head_jsd(cpu, dtype, rows, d, V, xs.bytes.data(), xt.bytes.data(), head.bytes.data(), 0.0f,
                                     nullptr, grad_scale, reinterpret_cast<float*>(ref_loss.bytes.data()), nullptr,
                                     reinterpret_cast<float*>(ref_grad.bytes.data())),
                    "cpu lm_head_jsd");
        cdas_context_destroy(cpu);

        cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_CHUNKED, 0);
        DeviceBuffer dxs = upload(xs), dxt = upload(xt), dhead = upload(head), dloss(4), dgrad(4 * rows * d);
        cdas_status st = cdas_lm_head_jsd(gpu, dtype, rows, d, V, dxs.ptr, dxt.ptr, dhead.ptr, 0.0f, nullptr, grad_scale,
                                          dloss.as<float>(), nullptr, dgrad.as<float>());
        expect(st == CDAS_STATUS_OK, name + " status " + std::to_string(st) + " " + cdas_last_error());
        cdas_or_die(cdas_context_synchronize(gpu), "synchronize");
        compare(name + " loss", download(dloss, CDAS_DTYPE_F32, 1), ref_loss, 0.0, 2e-3);
        // The 16-bit dL/dz rounds each element relatively (2^-11 f16, 2^-8 bf16); fp16 subnormals (tiny Q)
        // cost a little more on a few rows (emulated worst row: 1.5% f16, 0.6% bf16).
        compare_rows_relative(name + " grad_student", download(dgrad, CDAS_DTYPE_F32, rows * d), ref_grad, rows, d,
                              5e-2, dtype == CDAS_DTYPE_F16 ? 2e-3 : 1e-2);
        cdas_context_destroy(gpu);
    }
}

// Defect (found in the former FUSED schedule, kept for the production path): a dx formed as
// (A - S B) / 2 cancels after the 16-bit rounding of the A and B coefficients when the
// distributions are nearly disjoint (JSD near ln 2): simulated worst-row errors 20% (bf16) and
// 2.5-4% (f16), against 0.35% / 0.05% with the coefficient Q (r - S) c' rounded whole, as the
// CHUNKED row kernel writes dz. Student and teacher of each row peak at different tokens
// (x = beta W_j: logits beta W_k . W_j); beta in [0.5, 1] spreads the rows' JSD over about
// 0.17..0.69, median about 0.58. The reference is the CPU path (fp32 dL/dz, nothing to cancel).
// Every third row is masked.
void check_saturated(int32_t dtype, float softcap, uint64_t seed) {
    const int64_t T = 96, d = 64, V = 200;
    const float grad_scale = 0.7f;
    std::mt19937_64 rng(seed);
    char label[160];
    std::snprintf(label, sizeof label, "saturated: lm_head_jsd CHUNKED %s T=%" PRId64 " d=%" PRId64 " V=%" PRId64 " cap=%g",
                  dtype_name(dtype), T, d, V, softcap);
    const std::string name(label);
    HostTensor head = random_tensor(rng, dtype, V * d, 3.0f / std::sqrt(static_cast<float>(d)));
    HostTensor xs = make_tensor(dtype, T * d), xt = make_tensor(dtype, T * d);
    std::uniform_int_distribution<int64_t> token(0, V - 1), offset(1, V - 1);
    std::uniform_real_distribution<float> beta(0.5f, 1.0f);
    for (int64_t t = 0; t < T; ++t) {
        const int64_t js = token(rng), jt = (js + offset(rng)) % V;
        const float b = beta(rng);
        for (int64_t k = 0; k < d; ++k) {
            xs.set(t * d + k, b * head.get(js * d + k));
            xt.set(t * d + k, b * head.get(jt * d + k));
        }
    }
    std::vector<uint8_t> mask(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) mask[t] = t % 3 != 2;

    cdas_context* cpu = make_context(CDAS_DEVICE_CPU, CDAS_JSD_SCHEDULE_CHUNKED, 0);
    HostTensor ref_loss = make_tensor(CDAS_DTYPE_F32, 1), ref_rows = make_tensor(CDAS_DTYPE_F32, T);
    HostTensor ref_grad = make_tensor(CDAS_DTYPE_F32, T * d);
    cdas_or_die(cdas_lm_head_jsd(cpu, dtype, T, d, V, xs.bytes.data(), xt.bytes.data(), head.bytes.data(), softcap,
                                 mask.data(), grad_scale, reinterpret_cast<float*>(ref_loss.bytes.data()),
                                 reinterpret_cast<float*>(ref_rows.bytes.data()),
                                 reinterpret_cast<float*>(ref_grad.bytes.data())),
                "cpu lm_head_jsd");
    cdas_context_destroy(cpu);
    expect(ref_loss.get(0) > 0.45f, name + ": the inputs are not near saturation (mean JSD " +
                                         std::to_string(ref_loss.get(0)) + ")");

    cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_CHUNKED, 0);
    DeviceBuffer dxs = upload(xs), dxt = upload(xt), dhead = upload(head), dmask = upload(mask);
    DeviceBuffer dloss(4), drows(4 * T), dgrad(4 * T * d);
    cdas_status st = cdas_lm_head_jsd(gpu, dtype, T, d, V, dxs.ptr, dxt.ptr, dhead.ptr, softcap, dmask.as<uint8_t>(),
                                      grad_scale, dloss.as<float>(), drows.as<float>(), dgrad.as<float>());
    expect(st == CDAS_STATUS_OK, name + " status " + std::to_string(st) + " " + cdas_last_error());
    cdas_or_die(cdas_context_synchronize(gpu), "synchronize");
    compare(name + " loss", download(dloss, CDAS_DTYPE_F32, 1), ref_loss, 0.0, 2e-3);
    compare(name + " row_loss", download(drows, CDAS_DTYPE_F32, T), ref_rows, 1e-3, 2e-3);
    compare_rows_relative(name + " grad_student", download(dgrad, CDAS_DTYPE_F32, T * d), ref_grad, T, d,
                          dtype == CDAS_DTYPE_BF16 ? 2e-2 : 5e-3, dtype == CDAS_DTYPE_BF16 ? 5e-3 : 1e-3);
    cdas_context_destroy(gpu);
}

// Defect: DII counted only the dynamic shared memory against 48 KiB, not the static 32-float
// scratch, and the forward had no rank limit: a rank whose shared memory does not fit must give
// UNSUPPORTED (or a correct result), never a launch failure. The warp-per-row kernels keep
// 8 warps x rank (forward) or 8 x 2 rank (backward) floats of coefficients in shared memory, up to
// the device's opt-in limit (227 KiB on an H100/H200 and in the emulation: ranks 7264 / 3632).
//   backward at rank 6129: UNSUPPORTED; the forward at that rank fits and must be right.
//   forward at rank 12257: UNSUPPORTED. rank <= dim is required, so this needs a 12257 x 12257
//             fp32 direction matrix (600 MB): not with --small.
void check_dii_shared_memory_limits(bool small) {
    const int64_t rows = 1, examples = 1;
    {
        const int64_t rank = 6129, dim = 6129;
        std::mt19937_64 rng(77);
        const std::string name = "dii shared memory: f32 T=1 d=6129 r=6129";
        HostTensor h = random_tensor(rng, CDAS_DTYPE_F32, rows * dim, 1.0f);
        HostTensor g = random_tensor(rng, CDAS_DTYPE_F32, rows * dim, 0.5f);
        std::vector<float> w(static_cast<size_t>(rank * dim));
        std::normal_distribution<float> n(0.0f, 1.0f / std::sqrt(static_cast<float>(dim)));
        for (float& v : w) v = n(rng);
        std::vector<float> values(static_cast<size_t>(examples * rank));
        for (float& v : values) v = n(rng);
        std::vector<int32_t> index(static_cast<size_t>(rows), 0);
        DeviceBuffer dh = upload(h), dg = upload(g), dw = upload(w), dv = upload(values), di = upload(index);
        DeviceBuffer dout(4 * rows * dim), dgh(4 * rows * dim), dgw(4 * rank * dim);
        cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
        cdas_status st = cdas_dii_backward(gpu, CDAS_DTYPE_F32, rows, dim, rank, examples, dh.ptr, dw.as<float>(),
                                           nullptr, dv.as<float>(), di.as<int32_t>(), nullptr, dg.ptr, dgh.ptr,
                                           dgw.as<float>(), nullptr);
        expect(st == CDAS_STATUS_UNSUPPORTED && std::strstr(cdas_last_error(), "rank") != nullptr,
               name + " backward: UNSUPPORTED naming the rank; got status " + std::to_string(st) + ": " + cdas_last_error());
        expect(cdas_context_synchronize(gpu) == CDAS_STATUS_OK, name + " backward: the context stays usable");
        if (!small) {  // the forward at this rank is within its limit and must be right
            cdas_context* cpu = make_context(CDAS_DEVICE_CPU, CDAS_JSD_SCHEDULE_AUTO, 0);
            HostTensor ref_out = make_tensor(CDAS_DTYPE_F32, rows * dim);
            cdas_or_die(cdas_dii_forward(cpu, CDAS_DTYPE_F32, rows, dim, rank, examples, h.bytes.data(), w.data(),
                                         nullptr, values.data(), index.data(), nullptr, ref_out.bytes.data(), nullptr),
                        "cpu dii_forward");
            cdas_context_destroy(cpu);
            st = cdas_dii_forward(gpu, CDAS_DTYPE_F32, rows, dim, rank, examples, dh.ptr, dw.as<float>(), nullptr,
                                  dv.as<float>(), di.as<int32_t>(), nullptr, dout.ptr, nullptr);
            expect(st == CDAS_STATUS_OK, name + " forward status " + std::to_string(st) + " " + cdas_last_error());
            cdas_or_die(cdas_context_synchronize(gpu), "synchronize");
            compare(name + " forward h_out", download(dout, CDAS_DTYPE_F32, rows * dim), ref_out, 1e-4, 1e-4);
        }
        cdas_context_destroy(gpu);
    }
    if (!small) {
        const int64_t rank = 12257, dim = 12257;
        const std::string name = "dii shared memory: f32 T=1 d=12257 r=12257";
        DeviceBuffer dh(4 * rows * dim), dw(4 * rank * dim), dv(4 * examples * rank), dout(4 * rows * dim);
        CUDA_OR_DIE(cudaMemset(dh.ptr, 0, dh.bytes));
        CUDA_OR_DIE(cudaMemset(dw.ptr, 0, dw.bytes));
        CUDA_OR_DIE(cudaMemset(dv.ptr, 0, dv.bytes));
        DeviceBuffer di = upload(std::vector<int32_t>(static_cast<size_t>(rows), 0));
        cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
        cdas_status st = cdas_dii_forward(gpu, CDAS_DTYPE_F32, rows, dim, rank, examples, dh.ptr, dw.as<float>(),
                                          nullptr, dv.as<float>(), di.as<int32_t>(), nullptr, dout.ptr, nullptr);
        expect(st == CDAS_STATUS_UNSUPPORTED && std::strstr(cdas_last_error(), "rank") != nullptr,
               name + " forward: UNSUPPORTED naming the rank; got status " + std::to_string(st) + ": " + cdas_last_error());
        expect(cdas_context_synchronize(gpu) == CDAS_STATUS_OK, name + " forward: the context stays usable");
        cdas_context_destroy(gpu);
    }
}

// Defect (with the opt-in scan): without check_inputs nothing synchronises, so an example index
// outside [0, B) cannot be refused by the call. The kernels must not read out of bounds, must
// poison the row's outputs with NaN and raise a device flag that the next synchronize reports as
// INVALID_ARGUMENT naming example_index (once: the flag is cleared). With check_inputs on, the
// call itself refuses it.
void check_example_index_out_of_range() {
    const int64_t T = 6, d = 40, r = 2, B = 3;
    std::mt19937_64 rng(99);
    HostTensor h = random_tensor(rng, CDAS_DTYPE_BF16, T * d, 1.0f), g = random_tensor(rng, CDAS_DTYPE_BF16, T * d, 0.5f);
    std::vector<float> w = unit_rows(rng, r, d), values(static_cast<size_t>(B * r), 0.5f);
    std::vector<int32_t> index = {0, 1, 2, 1, B + 5, 0};  // row 4 is out of range
    DeviceBuffer dh = upload(h), dg = upload(g), dw = upload(w), dv = upload(values), di = upload(index);
    DeviceBuffer dout(2 * T * d), dgh(2 * T * d), dgw(4 * r * d), dgv(4 * B * r);
    cdas_context* gpu = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
    cdas_status st = cdas_dii_forward(gpu, CDAS_DTYPE_BF16, T, d, r, B, dh.ptr, dw.as<float>(), nullptr, dv.as<float>(),
                                      di.as<int32_t>(), nullptr, dout.ptr, nullptr);
    expect(st == CDAS_STATUS_OK, "bad example index, checks off: forward queued (status " + std::to_string(st) + ")");
    st = cdas_context_synchronize(gpu);
    expect(st == CDAS_STATUS_INVALID_ARGUMENT && std::strstr(cdas_last_error(), "example_index") != nullptr,
           std::string("bad example index, checks off: synchronize -> INVALID_ARGUMENT naming example_index; got ") +
               std::to_string(st) + ": " + cdas_last_error());
    HostTensor out = download(dout, CDAS_DTYPE_BF16, T * d);
    bool bad_row_nan = true, others_finite = true;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < d; ++j) {
            const float v = out.get(t * d + j);
            if (t == 4) bad_row_nan &= std::isnan(v);
            else others_finite &= std::isfinite(v);
        }
    expect(bad_row_nan && others_finite, "bad example index, checks off: that row of h_out is NaN, the others finite");
    expect(cdas_context_synchronize(gpu) == CDAS_STATUS_OK, "bad example index: the flag is cleared once reported");
    st = cdas_dii_backward(gpu, CDAS_DTYPE_BF16, T, d, r, B, dh.ptr, dw.as<float>(), nullptr, dv.as<float>(),
                           di.as<int32_t>(), nullptr, dg.ptr, dgh.ptr, dgw.as<float>(), dgv.as<float>());
    cdas_status sync = cdas_context_synchronize(gpu);
    HostTensor gv = download(dgv, CDAS_DTYPE_F32, B * r);
    bool gv_finite = true;
    for (int64_t i = 0; i < gv.count; ++i) gv_finite &= std::isfinite(gv.get(i));
    expect(st == CDAS_STATUS_OK && sync == CDAS_STATUS_INVALID_ARGUMENT && gv_finite,
           "bad example index, checks off: backward OK, synchronize INVALID_ARGUMENT, grad_values of the valid "
           "examples finite; got " + std::to_string(st) + "/" + std::to_string(sync));
    cdas_context_destroy(gpu);

    cdas_context* checked = make_context_checked(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0, 1);
    st = cdas_dii_forward(checked, CDAS_DTYPE_BF16, T, d, r, B, dh.ptr, dw.as<float>(), nullptr, dv.as<float>(),
                          di.as<int32_t>(), nullptr, dout.ptr, nullptr);
    expect(st == CDAS_STATUS_INVALID_ARGUMENT && std::strstr(cdas_last_error(), "example_index") != nullptr,
           std::string("bad example index, checks on: the call -> INVALID_ARGUMENT; got ") + std::to_string(st) + ": " +
               cdas_last_error());
    cdas_context_destroy(checked);
}

// Shape sets: "full" (a GPU), "small" (compute-sanitizer), "emulated" (the CPU emulation in CI:
// awkward sizes that no tile divides, every path, affordable with one CPU fiber per CUDA thread).
// Groups split the work (dii, jsd-chunked, jsd-auto, misc; "all" runs everything).
int run_checks(const std::string& shapes, const std::string& group) {
    uint64_t seed = 1000;
    const bool small = shapes == "small", emulated = shapes == "emulated";
    auto in_group = [&](const char* g) { return group == "all" || group == g; };
    const int32_t dtypes[] = {CDAS_DTYPE_F32, CDAS_DTYPE_BF16, CDAS_DTYPE_F16};
    std::vector<DiiShape> dii_shapes = {{37, 129, 1, 3}, {257, 2304, 1, 8}, {65, 4099, 2, 1}, {33, 4099, 4, 5},
                                        {257, 2304, 1, 8, 4}};
    std::vector<JsdShape> jsd_shapes = {{41, 401, 1271}, {130, 256, 3001}};
    if (small) {
        dii_shapes = {{37, 129, 1, 3}, {19, 3001, 4, 2}};
        jsd_shapes = {{13, 72, 203}, {9, 40, 131}};
    } else if (emulated) {
        // rank 1 and 3 (shared-memory dW accumulator), rank 4 x d 3001 (global-memory accumulator),
        // rows not a multiple of the 32-row block; d 67 and 72 (vector and scalar tile loads).
        // d 2112: 16-byte units beyond what a lane keeps in registers; rank 5: two projection groups.
        // sets 3 (shared-memory dW accumulators, one block per set) and sets 2 x rank 4 x d 3001
        // (global-memory accumulators): concept packing's direction sets.
        dii_shapes = {{41, 67, 1, 3}, {70, 67, 3, 4}, {19, 3001, 4, 2}, {129, 264, 2, 9}, {37, 2112, 2, 3}, {33, 136, 5, 4},
                      {97, 136, 2, 7, 3}, {23, 3001, 4, 3, 2}};
        jsd_shapes = {{41, 67, 1271}, {13, 72, 203}, {70, 136, 1031}, {29, 40, 1032}};  // V 1032: 16-byte logit loads
    } else {
        jsd_shapes.push_back({300, 2304, 8193});
    }
    if (in_group("dii"))
        for (int32_t dtype : dtypes)
            for (const DiiShape& s : dii_shapes)
                for (int src = 0; src < 2; ++src)
                    for (int m = 0; m < 2; ++m) check_dii(s, dtype, src != 0, m != 0, seed++);
    const int32_t schedules[] = {CDAS_JSD_SCHEDULE_CHUNKED, CDAS_JSD_SCHEDULE_AUTO};
    const char* schedule_groups[] = {"jsd-chunked", "jsd-auto"};
    for (int32_t dtype : dtypes)
        for (int si = 0; si < 2; ++si) {
            const int32_t schedule = schedules[si];
            for (const JsdShape& s : jsd_shapes)
                for (float cap : {0.0f, 30.0f})
                    for (int m = 0; m < 2; ++m) {
                        const int32_t chunk = (schedule == CDAS_JSD_SCHEDULE_CHUNKED && m) ? 7 : 0;  // ragged chunks
                        const uint64_t case_seed = seed++;
                        if (in_group(schedule_groups[si])) check_jsd(s, dtype, schedule, chunk, cap, m != 0, true, case_seed);
                    }
        }
    if (in_group("misc")) {
        for (int32_t chunk : {0, 7})
            check_jsd(jsd_shapes[0], CDAS_DTYPE_BF16, CDAS_JSD_SCHEDULE_CHUNKED, chunk, 30.0f, true, false, seed++);  // forward only
        check_non_finite();
    }
    // ---- regression checks for the review defects (issue 9, section 2); each in its own function ----
    // (part of "misc", so the emulated ctest runs them; "--group defects" runs them alone)
    if (in_group("misc") || group == "defects") {
        check_chunked_dz_scale(4096, seed++);
        if (!small && !emulated) check_chunked_dz_scale(65536, seed++);
        for (int32_t dtype : {CDAS_DTYPE_BF16, CDAS_DTYPE_F16})
            for (float cap : {0.0f, 30.0f}) check_saturated(dtype, cap, seed++);
        check_dii_shared_memory_limits(small || emulated);
        check_example_index_out_of_range();
    }
    // ---- end of the review-defect checks ----
    std::printf("%d checks, %d failed\n", g_checks, g_failures);
    return g_failures == 0 ? 0 : 1;
}

// ---- benchmarks ----------------------------------------------------------------------------------
//
// Every measured row is printed and appended to --out (opened in append mode, flushed per row) the
// moment it is measured, so a run killed by a time limit keeps the rows it had. One table for all
// rows (the header is written by check-and-bench.sh, or by --header):
//
//   | op | model | T | impl | ms | rate | % of ref | extra MiB | note |
//
// op: lm_head_jsd (forward + backward, bf16), dii fwd / dii bwd (rank 1, bf16), and the reference
// rows measured in the same process: gemm (cuBLAS bf16 GEMM of the logits shape) and copy
// (cudaMemcpy device to device). rate: useful TF/s (3 x 2TdV per LM-head step) or GB/s (DII);
// % of ref: of the gemm row's TF/s (LM head) or the copy row's GB/s (DII); extra MiB: the context's
// peak workspace (memory beyond inputs and outputs).

const char* kTableHeader =
    "| op | model | T | impl | ms | rate | % of ref | extra MiB | note |\n"
    "|---|---|---|---|---|---|---|---|---|\n";

struct BenchOptions {
    std::vector<int64_t> tokens;        // empty: by size
    int warmup = 2, reps = 10;
    double row_seconds = 10.0;          // fewer reps when one call is slow (at least 3)
    std::string out_file, note;
};

FILE* g_out = nullptr;  // --out, append mode

void emit_row(const std::string& row) {
    std::fputs(row.c_str(), stdout);
    std::fflush(stdout);
    if (g_out) {
        std::fputs(row.c_str(), g_out);
        std::fflush(g_out);
    }
}

std::string row(const std::string& op, const std::string& model, int64_t T, const std::string& impl, double ms,
                const std::string& rate, const std::string& pct, const std::string& extra, const std::string& note) {
    char buf[1024];
    char t[32] = "";
    if (T > 0) std::snprintf(t, sizeof t, "%" PRId64, T);
    char m[32] = "";
    if (ms >= 0) std::snprintf(m, sizeof m, ms < 0.1 ? "%.4f" : "%.3f", ms);
    std::snprintf(buf, sizeof buf, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", op.c_str(), model.c_str(), t,
                  impl.c_str(), m, rate.c_str(), pct.c_str(), extra.c_str(), note.c_str());
    return buf;
}

std::string fmt(const char* f, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
}

// A rate with 3 significant digits at most, never in exponent form: "412", "41.2", "0.0123".
std::string rate(double v, const char* unit) {
    char buf[64];
    const double a = std::fabs(v);
    if (a >= 100) std::snprintf(buf, sizeof buf, "%.0f %s", v, unit);
    else if (a >= 10) std::snprintf(buf, sizeof buf, "%.1f %s", v, unit);
    else if (a >= 1) std::snprintf(buf, sizeof buf, "%.2f %s", v, unit);
    else std::snprintf(buf, sizeof buf, "%.3g %s", v, unit);
    return buf;
}

std::string join_note(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    if (b.empty()) return a;
    return a + "; " + b;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

// Median of CUDA-event timings. f() returns false on failure (an error status): then nothing more
// is run and -1 comes back. The first warm-up call is timed on the host: when one call takes
// long (a slow schedule, the emulation backend), fewer reps are run, at least 3, to keep a row
// within about row_seconds.
template <typename F>
double time_ms(const BenchOptions& o, F&& f, int* reps_done = nullptr) {
    auto t0 = std::chrono::steady_clock::now();
    if (!f()) return -1.0;
    CUDA_OR_DIE(cudaDeviceSynchronize());
    const double first_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (int i = 1; i < o.warmup; ++i)
        if (!f()) return -1.0;
    CUDA_OR_DIE(cudaDeviceSynchronize());
    int reps = o.reps;
    if (first_s * reps > o.row_seconds) reps = std::max(3, static_cast<int>(o.row_seconds / std::max(first_s, 1e-9)));
    reps = std::min(reps, o.reps);
    cudaEvent_t a, b;
    CUDA_OR_DIE(cudaEventCreate(&a));
    CUDA_OR_DIE(cudaEventCreate(&b));
    std::vector<double> ms;
    for (int i = 0; i < reps; ++i) {
        CUDA_OR_DIE(cudaEventRecord(a));
        const bool ok = f();
        CUDA_OR_DIE(cudaEventRecord(b));
        CUDA_OR_DIE(cudaEventSynchronize(b));
        if (!ok) {
            ms.clear();
            break;
        }
        float t = 0;
        CUDA_OR_DIE(cudaEventElapsedTime(&t, a, b));
        ms.push_back(t);
    }
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    if (reps_done) *reps_done = static_cast<int>(ms.size());
    return ms.empty() ? -1.0 : median(ms);
}

void fill_random_bf16(void* p, int64_t count, float scale, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n(0.0f, scale);
    std::vector<uint16_t> h(static_cast<size_t>(std::min<int64_t>(count, 1 << 24)));
    for (auto& v : h) v = f32_to_bf16(n(rng));
    for (int64_t off = 0; off < count; off += static_cast<int64_t>(h.size())) {
        int64_t n_now = std::min<int64_t>(static_cast<int64_t>(h.size()), count - off);
        CUDA_OR_DIE(cudaMemcpy(static_cast<uint16_t*>(p) + off, h.data(), 2 * n_now, cudaMemcpyHostToDevice));
    }
}

struct Model {
    const char* name;
    int64_t dim, vocab;
    float softcap;
};

// The bench shapes. torch_baseline.py has the same list: keep them in step.
const std::vector<Model> kModels = {{"gemma-2-2b", 2304, 256000, 30.0f}, {"llama-3-8b", 4096, 128256, 0.0f}};
const Model kTinyModel = {"tiny", 64, 1000, 30.0f};  // --size tiny: the CPU emulation backend

void log_run(const std::string& what) {
    std::fprintf(stderr, "RUN %s\n", what.c_str());
    std::fflush(stderr);
}

// The bench's selection: models, sections and schedules the filter leaves (empty models: none).
struct BenchSelection {
    std::vector<Model> models;
    std::vector<int32_t> schedules;
    bool lmhead = false, dii = false;
    bool empty() const { return models.empty() || (!lmhead && !dii) || (lmhead && schedules.empty() && !dii); }
};

BenchSelection bench_selection() {
    BenchSelection sel;
    for (const Model& m : g_shapes != "full" ? std::vector<Model>{kTinyModel} : kModels)
        if (g_filter.model(m.name)) sel.models.push_back(m);
    const bool want_bf16 = g_filter.dtype(CDAS_DTYPE_BF16);
    sel.lmhead = want_bf16 && g_filter.section("lmhead");
    sel.dii = want_bf16 && g_filter.section("dii");
    for (int32_t s : {CDAS_JSD_SCHEDULE_CHUNKED, CDAS_JSD_SCHEDULE_AUTO})
        if (g_filter.schedule(s)) {  // one production path: a row per bench, under either name
            sel.schedules.push_back(CDAS_JSD_SCHEDULE_CHUNKED);
            break;
        }
    return sel;
}

int no_bench_row() {
    std::fprintf(stderr, "gpu_check_bench: the filter (%s) selects no bench row%s\n", g_filter.describe().c_str(),
                 g_shapes != "full" ? " (--size small/emulated bench only the model 'tiny')" : "");
    return 2;
}

int run_bench(const BenchOptions& o) {
    if (!o.out_file.empty()) {
        g_out = std::fopen(o.out_file.c_str(), "a");
        if (!g_out) {
            std::fprintf(stderr, "gpu_check_bench: cannot open %s for appending: %s\n", o.out_file.c_str(), std::strerror(errno));
            return 2;
        }
    }
    const bool tiny = g_shapes != "full";  // the CPU emulation backend, or a quick try
    const BenchSelection sel = bench_selection();
    if (sel.empty()) return no_bench_row();
    const std::vector<Model>& models = sel.models;
    const std::vector<int32_t>& schedules = sel.schedules;
    const bool lmhead = sel.lmhead, dii = sel.dii;
    std::vector<int64_t> tokens = o.tokens;
    if (tokens.empty()) tokens = tiny ? std::vector<int64_t>{16, 64} : std::vector<int64_t>{1024, 8192};

    cudaDeviceProp prop;
    CUDA_OR_DIE(cudaGetDeviceProperties(&prop, 0));
    std::printf("Device: %s (%d SMs), CUDA runtime %d; filter: %s; warm-up %d, median of up to %d timed runs\n",
                prop.name, prop.multiProcessorCount, CUDART_VERSION, g_filter.describe().c_str(), o.warmup, o.reps);
    std::fflush(stdout);
    const int64_t max_t = *std::max_element(tokens.begin(), tokens.end());

    if (lmhead && !schedules.empty()) {
        cublasHandle_t blas;
        if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
            std::fprintf(stderr, "cublasCreate failed\n");
            return 2;
        }
        for (const Model& m : models) {
            DeviceBuffer head(2 * m.vocab * m.dim);
            fill_random_bf16(head.ptr, m.vocab * m.dim, 3.0f / std::sqrt(static_cast<float>(m.dim)), 11);
            // Reference: cuBLAS bf16 GEMM (fp32 output and compute) of the logits shape [n x d] x [d x V].
            double gemm_tfs = 0.0;
            {
                const int64_t n = std::min<int64_t>(2048, max_t);
                log_run(std::string("gemm ") + m.name);
                DeviceBuffer x(2 * n * m.dim), z(4 * size_t(n) * m.vocab);
                fill_random_bf16(x.ptr, n * m.dim, 1.0f, 12);
                const float one = 1.0f, zero = 0.0f;
                cublasStatus_t bst = CUBLAS_STATUS_SUCCESS;
                double ms = time_ms(o, [&] {
                    bst = cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m.vocab), static_cast<int>(n),
                                       static_cast<int>(m.dim), &one, head.ptr, CUDA_R_16BF, static_cast<int>(m.dim),
                                       x.ptr, CUDA_R_16BF, static_cast<int>(m.dim), &zero, z.ptr, CUDA_R_32F,
                                       static_cast<int>(m.vocab), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
                    return bst == CUBLAS_STATUS_SUCCESS;
                });
                if (ms > 0) gemm_tfs = 2.0 * n * m.dim * m.vocab / (ms * 1e-3) / 1e12;
                emit_row(row("gemm", m.name, n, "cuBLAS", ms, ms > 0 ? rate(gemm_tfs, "TF/s") : "", "", "",
                             join_note(o.note, ms > 0 ? "bf16 x bf16 -> fp32, [" + std::to_string(n) + " x d] x [d x V]"
                                                      : "cublasGemmEx status " + std::to_string(bst))));
            }
            for (int64_t T : tokens) {
                DeviceBuffer xs(2 * T * m.dim), xt(2 * T * m.dim), grad(4 * T * m.dim), loss(4), rows(4 * T);
                fill_random_bf16(xs.ptr, T * m.dim, 1.0f, 13);
                fill_random_bf16(xt.ptr, T * m.dim, 1.0f, 14);
                for (int32_t schedule : schedules) {
                    log_run(std::string("lm_head_jsd ") + m.name + " T=" + std::to_string(T) + " " + schedule_name(schedule));
                    cdas_context* ctx = make_context(CDAS_DEVICE_CUDA, schedule, 0);
                    cdas_status st = CDAS_STATUS_OK;
                    std::string error;
                    int reps = 0;
                    double ms = time_ms(o, [&] {
                        st = cdas_lm_head_jsd(ctx, CDAS_DTYPE_BF16, T, m.dim, m.vocab, xs.ptr, xt.ptr, head.ptr, m.softcap,
                                              nullptr, 1.0f, loss.as<float>(), rows.as<float>(), grad.as<float>());
                        if (st != CDAS_STATUS_OK && error.empty())
                            error = "error " + std::to_string(st) + ": " + cdas_last_error();
                        return st == CDAS_STATUS_OK;
                    }, &reps);
                    int64_t peak = 0;
                    cdas_context_peak_workspace_bytes(ctx, &peak);
                    cdas_context_destroy(ctx);
                    if (ms < 0) {
                        emit_row(row("lm_head_jsd", m.name, T, schedule_name(schedule), -1, "", "", "",
                                     join_note(o.note, error.empty() ? "failed" : error)));
                        continue;
                    }
                    const double useful = 3.0 * 2.0 * T * m.dim * m.vocab / (ms * 1e-3) / 1e12;
                    emit_row(row("lm_head_jsd", m.name, T, schedule_name(schedule), ms, rate(useful, "TF/s"),
                                 gemm_tfs > 0 ? fmt("%.1f%%", 100.0 * useful / gemm_tfs) : "", fmt("%.0f", peak / 1048576.0),
                                 join_note(o.note, reps < o.reps ? "median of " + std::to_string(reps) + " (slow call)" : "")));
                }
            }
        }
        cublasDestroy(blas);
    }

    if (dii) {
        // Reference: cudaMemcpy device to device (read + write).
        double copy_gbs = 0.0;
        {
            const size_t bytes = tiny ? size_t(1) << 22 : size_t(1) << 30;
            log_run("copy");
            DeviceBuffer a(bytes), b(bytes);
            double ms = time_ms(o, [&] { return cudaMemcpyAsync(b.ptr, a.ptr, bytes, cudaMemcpyDeviceToDevice) == cudaSuccess; });
            if (ms > 0) copy_gbs = 2.0 * bytes / (ms * 1e-3) / 1e9;
            emit_row(row("copy", "", 0, "cudaMemcpy", ms, ms > 0 ? rate(copy_gbs, "GB/s") : "", "", "",
                         join_note(o.note, "device to device, " + std::to_string(bytes >> 20) + " MiB, read + write")));
        }
        for (const Model& m : models) {
            const int64_t dim = m.dim;
            for (int64_t T : tokens) {
                const int64_t B = 8;
                log_run(std::string("dii ") + m.name + " T=" + std::to_string(T));
                DeviceBuffer h(2 * T * dim), g(2 * T * dim), out(2 * T * dim), gh(2 * T * dim), src(2 * B * dim);
                fill_random_bf16(h.ptr, T * dim, 1.0f, 21);
                fill_random_bf16(g.ptr, T * dim, 1.0f, 22);
                fill_random_bf16(src.ptr, B * dim, 1.0f, 23);
                std::mt19937_64 rng(24);
                DeviceBuffer w = upload(unit_rows(rng, 1, dim)), gw(4 * dim), gv(4 * B);
                std::vector<int32_t> idx(static_cast<size_t>(T));
                for (int64_t t = 0; t < T; ++t) idx[t] = static_cast<int32_t>(t * B / T);
                DeviceBuffer di = upload(idx);
                cdas_context* ctx = make_context(CDAS_DEVICE_CUDA, CDAS_JSD_SCHEDULE_AUTO, 0);
                std::string error;
                auto note_error = [&](cdas_status st) {
                    if (st != CDAS_STATUS_OK && error.empty()) error = "error " + std::to_string(st) + ": " + cdas_last_error();
                    return st == CDAS_STATUS_OK;
                };
                double fwd = time_ms(o, [&] {
                    return note_error(cdas_dii_forward(ctx, CDAS_DTYPE_BF16, T, dim, 1, B, h.ptr, w.as<float>(), src.ptr,
                                                       nullptr, di.as<int32_t>(), nullptr, out.ptr, nullptr));
                });
                double bwd = time_ms(o, [&] {
                    return note_error(cdas_dii_backward(ctx, CDAS_DTYPE_BF16, T, dim, 1, B, h.ptr, w.as<float>(), src.ptr,
                                                        nullptr, di.as<int32_t>(), nullptr, g.ptr, gh.ptr, gw.as<float>(),
                                                        gv.as<float>()));
                });
                int64_t peak = 0;
                cdas_context_peak_workspace_bytes(ctx, &peak);
                cdas_context_destroy(ctx);
                for (int pass = 0; pass < 2; ++pass) {
                    const double ms = pass == 0 ? fwd : bwd;
                    const std::string op = pass == 0 ? "dii fwd" : "dii bwd";
                    const std::string model = std::string(m.name) + " (d=" + std::to_string(dim) + ")";
                    if (ms < 0) {
                        emit_row(row(op, model, T, "cdas", -1, "", "", "", join_note(o.note, error.empty() ? "failed" : error)));
                        continue;
                    }
                    const double bytes = (pass == 0 ? 2.0 : 3.0) * 2.0 * T * dim;
                    const double gbs = bytes / (ms * 1e-3) / 1e9;
                    emit_row(row(op, model, T, "cdas", ms, rate(gbs, "GB/s"),
                                 copy_gbs > 0 ? fmt("%.1f%%", 100.0 * gbs / copy_gbs) : "", fmt("%.0f", peak / 1048576.0),
                                 o.note));
                }
            }
        }
    }
    if (g_out) std::fclose(g_out);
    g_out = nullptr;
    return 0;
}

// "1024,8192" -> {1024, 8192}; false on anything else.
bool parse_tokens(const std::string& text, std::vector<int64_t>& out) {
    std::stringstream in(text);
    std::string item;
    out.clear();
    while (std::getline(in, item, ',')) {
        char* end = nullptr;
        long long v = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || v <= 0 || v > (1 << 24)) return false;
        out.push_back(v);
    }
    return !out.empty();
}

bool parse_int(const std::string& text, long long lo, long long hi, long long& out) {
    char* end = nullptr;
    out = std::strtoll(text.c_str(), &end, 10);
    return !text.empty() && *end == '\0' && out >= lo && out <= hi;
}

const char* kUsage =
    "usage: gpu_check_bench [--check] [--bench] [options]\n"
    "  --check                 every CUDA kernel, schedule and dtype against the CPU path of the same ABI\n"
    "  --bench                 timings; each table row printed (and appended to --out) as it is measured\n"
    "  --size full|small|emulated  check shapes (default full; small: for compute-sanitizer; emulated: for the\n"
    "                          CPU emulation backend; --small, --emulated: the same); the bench runs the 'tiny'\n"
    "                          shape (d 64, V 1000, T 16,64) unless full\n"
    "  --group G               check group: all (default), dii, jsd-chunked, jsd-auto, misc\n"
    "  --filter TERMS          comma-separated: lmhead dii chunked auto gemma llama tiny f32 bf16 f16\n"
    "  --tokens T1,T2,...      bench token counts (default 1024,8192; tiny shape: 16,64)\n"
    "  --warmup N --reps N     bench warm-up calls (default 2) and timed calls (default 10; fewer when a call is slow)\n"
    "  --row-seconds S         time aimed at per bench row (default 10)\n"
    "  --out FILE              append the bench rows to FILE (flushed per row)\n"
    "  --note TEXT             added to the note column of every bench row\n"
    "  --header                print the bench table header and exit (no device needed)\n"
    "  --verbose               a RUN line before each check\n"
    "exit status: 0 ok, 1 a check failed, 2 usage or setup error\n";

int usage_error(const std::string& why) {
    std::fprintf(stderr, "gpu_check_bench: %s (--help for usage)\n", why.c_str());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    // Line-buffered even into a file: a run stopped by a time limit keeps every line it printed.
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    bool check = false, bench = false, header = false;
    std::string group = "all";
    BenchOptions bo;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const bool has_value = i + 1 < argc;
        long long v = 0;
        if (a == "--check") check = true;
        else if (a == "--bench") bench = true;
        else if (a == "--small") g_shapes = "small";
        else if (a == "--emulated") g_shapes = "emulated";
        else if (a == "--verbose") g_verbose = true;
        else if (a == "--header") header = true;
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else if (!has_value && (a == "--size" || a == "--group" || a == "--filter" || a == "--tokens" ||
                                  a == "--warmup" || a == "--reps" || a == "--row-seconds" || a == "--out" ||
                                  a == "--note" || a == "--torch"))
            return usage_error(a + " needs a value");
        else if (a == "--size") {
            g_shapes = argv[++i];
            if (g_shapes != "full" && g_shapes != "small" && g_shapes != "emulated")
                return usage_error("--size must be full, small or emulated, not '" + g_shapes + "'");
        } else if (a == "--group") {
            group = argv[++i];
            if (group != "all" && group != "dii" && group != "jsd-chunked" && group != "jsd-auto" &&
                group != "misc" && group != "defects")
                return usage_error("--group must be all, dii, jsd-chunked, jsd-auto, misc or defects, not '" + group + "'");
        } else if (a == "--filter") {
            const std::string why = parse_filter(argv[++i], g_filter);
            if (!why.empty()) return usage_error("--filter: " + why);
        } else if (a == "--tokens") {
            if (!parse_tokens(argv[++i], bo.tokens)) return usage_error(std::string("--tokens: bad list '") + argv[i] + "'");
        } else if (a == "--warmup") {
            if (!parse_int(argv[++i], 1, 100, v)) return usage_error(std::string("--warmup: bad value '") + argv[i] + "' (1..100)");
            bo.warmup = static_cast<int>(v);
        } else if (a == "--reps") {
            if (!parse_int(argv[++i], 1, 1000, v)) return usage_error(std::string("--reps: bad value '") + argv[i] + "' (1..1000)");
            bo.reps = static_cast<int>(v);
        } else if (a == "--row-seconds") {
            if (!parse_int(argv[++i], 1, 3600, v)) return usage_error(std::string("--row-seconds: bad value '") + argv[i] + "'");
            bo.row_seconds = static_cast<double>(v);
        } else if (a == "--out") bo.out_file = argv[++i];
        else if (a == "--note") bo.note = argv[++i];
        else if (a == "--torch") ++i;  // accepted for old command lines; torch rows come from torch_baseline.py
        else return usage_error("unknown argument '" + a + "'");
    }
    if (header) {
        std::fputs(kTableHeader, stdout);
        return 0;
    }
    if (!check && !bench) return usage_error("give --check and/or --bench");
    if (bench && !check && bench_selection().empty()) return no_bench_row();  // before any device work
    int32_t devices = 0;
    cdas_or_die(cdas_cuda_device_count(&devices), "cdas_cuda_device_count");
    if (devices == 0) {
        // A CUDA context says why (the backend library could not be loaded, or no device).
        cdas_context_options opts;
        cdas_context* ctx = nullptr;
        cdas_context_options_default(&opts);
        opts.device_type = CDAS_DEVICE_CUDA;
        const cdas_status st = cdas_context_create(&opts, &ctx);
        std::fprintf(stderr, "no CUDA device visible to libcdas: %s\n",
                     st != CDAS_STATUS_OK ? cdas_last_error() : "cdas_cuda_device_count says 0");
        if (ctx) cdas_context_destroy(ctx);
        return 2;
    }
    if (!(cdas_build_features() & CDAS_FEATURE_CUDA)) {
        std::fprintf(stderr, "libcdas reports no CUDA feature\n");
        return 2;
    }
    int rc = 0;
    if (check) rc = run_checks(g_shapes, group);
    if (bench) {
        const int brc = run_bench(bo);
        if (brc != 0) rc = brc;
    }
    return rc;
}
