// Tests of the CUDA emulation itself (native/src/cuda/emu): correct kernels give the right answers,
// and each kind of bug the emulation exists to catch makes a deliberately broken kernel fail:
// a missing __syncthreads, a barrier reached by part of the block, a shuffle whose lanes do not
// all arrive, too much shared memory, WMMA code that assumes a fragment mapping, a transposed or
// mis-strided cuBLAS operand, out-of-bounds device reads and writes. Also the 16-bit conversions
// bit for bit. Built with the emulation's cuda_runtime.h, like the project's kernels.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

#ifndef CDAS_LAUNCH
#define CDAS_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<grid, block, smem, stream>>>
#endif

namespace {

#if defined(__x86_64__)
__attribute__((target("f16c"))) unsigned short hw_f32_to_f16(float f) {
    return static_cast<unsigned short>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_f16_to_f32(unsigned short h) { return _cvtsh_ss(h); }
#endif

int g_failed = 0, g_checks = 0;
#define EXPECT(cond, ...)                                                          \
    do {                                                                           \
        ++g_checks;                                                                \
        if (!(cond)) {                                                             \
            ++g_failed;                                                            \
            std::printf("    FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
            std::printf(__VA_ARGS__);                                              \
            std::printf("\n");                                                     \
        }                                                                          \
    } while (0)

bool fault_mentions(const char* text) { return std::strstr(cdas_emu_last_fault(), text) != nullptr; }

// Runs a launch that must fail; returns the error cudaGetLastError/cudaDeviceSynchronize report
// and clears the emulated device for the next test.
cudaError_t failing(const std::function<void()>& launch_it) {
    cdas_emu_reset();
    launch_it();
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaDeviceSynchronize();
    return e;
}

template <class T>
struct Device {
    T* p = nullptr;
    size_t n = 0;
    explicit Device(size_t count) : n(count) { cudaMalloc(&p, count * sizeof(T)); }
    ~Device() { cudaFree(p); }
    void put(const std::vector<T>& v) { cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice); }
    std::vector<T> get() const {
        std::vector<T> v(n);
        cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
        return v;
    }
};

// ---- kernels -------------------------------------------------------------------------------------

// out[b] = sum of in[b * blockDim.x ...] through shared memory, with or without the barrier that
// separates the writes from the reads.
__global__ void block_sum_kernel(const float* in, float* out, int with_barrier) {
    CDAS_SHARED(float, buf, [256]);
    buf[threadIdx.x] = in[blockIdx.x * blockDim.x + threadIdx.x];
    if (with_barrier) __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (unsigned i = 0; i < blockDim.x; ++i) s += buf[i];
        out[blockIdx.x] = s;
    }
}

// Threads past `active` return before a barrier the others reach.
__global__ void partial_barrier_kernel(float* out, int active) {
    if (static_cast<int>(threadIdx.x) >= active) return;
    __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// Lane 0 leaves; the others shuffle with the full mask.
__global__ void partial_shuffle_kernel(float* out) {
    float v = static_cast<float>(threadIdx.x);
    if (threadIdx.x % 32 == 0) return;
    v += __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

__global__ void warp_ops_kernel(const int* in, int* sums, unsigned* ballots, int* downs) {
    int v = in[threadIdx.x];
    int s = v;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    sums[threadIdx.x] = s;
    ballots[threadIdx.x] = __ballot_sync(0xffffffffu, v % 2 == 0);
    downs[threadIdx.x] = __shfl_down_sync(0xffffffffu, v, 3);
    __syncwarp();
}

__global__ void dynamic_shared_kernel(float* out, int n) {
    CDAS_DYNAMIC_SHARED(float, buf);
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = static_cast<float>(i);
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.0f;
        for (int i = 0; i < n; ++i) s += buf[i];
        out[0] = s;
    }
}

__global__ void static_plus_dynamic_kernel(float* out) {
    CDAS_DYNAMIC_SHARED(float, buf);
    CDAS_SHARED(float, scratch, [64]);
    buf[threadIdx.x] = 1.0f;
    scratch[threadIdx.x % 64] = 2.0f;
    __syncthreads();
    out[threadIdx.x] = buf[threadIdx.x] + scratch[threadIdx.x % 64];
}

__global__ void shared_overrun_kernel(float* out, int n) {
    CDAS_DYNAMIC_SHARED(float, buf);
    buf[n + threadIdx.x % 4] = 1.0f;  // past the dynamic area
    out[threadIdx.x] = 0.0f;
}

// One warp: D = A B (16x16, row-major in global memory) through WMMA.
template <class T>
__global__ void wmma_kernel(const T* a, const T* b, float* d) {
    namespace wmma = nvcuda::wmma;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);  // b holds B column-major, i.e. B^T row-major
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

// A "scaled accumulator" that assumes element i of lane l is row l / 2, column (l % 2) * 8 + i
// (a mapping no documentation promises): multiplies row r of D by r + 1.
__global__ void wmma_assumed_mapping_kernel(const __half* a, const __half* b, float* d) {
    namespace wmma = nvcuda::wmma;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.0f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    const int lane = threadIdx.x % 32;
    for (int i = 0; i < acc.num_elements; ++i) acc.x[i] *= static_cast<float>(lane / 2 + 1);
    wmma::store_matrix_sync(d, acc, 16, wmma::mem_row_major);
}

__global__ void copy_kernel(const float* in, float* out, int n, int extra) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n + extra) out[i] = in[i < n ? i : 0];
}

__global__ void read_kernel(const float* in, float* out, int n, int offset) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = in[i + offset];
}

// ---- tests ---------------------------------------------------------------------------------------

void test_conversions() {
    // f16: against the CPU's own IEEE conversion (F16C), round to nearest even, on a dense sample
    // of all floats plus every boundary.
#if defined(__x86_64__)
    unsigned eax, ebx, ecx, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
#else
    bool f16c = false;
#endif
    long mismatches = 0, tested = 0, not_nearest = 0;
    std::vector<uint32_t> cases;
    for (uint64_t u = 0; u < (1ull << 32); u += 4099) cases.push_back(static_cast<uint32_t>(u));
    for (uint32_t e = 100; e < 145; ++e)  // every exponent near the f16 range, mantissas around the halfway points
        for (uint32_t m : {0u, 1u, 0xfffu, 0x1000u, 0x1001u, 0x2fffu, 0x3000u, 0x3001u, 0x7fffffu, 0x7fe000u, 0x7ff000u})
            for (uint32_t s : {0u, 0x80000000u}) cases.push_back(s | (e << 23) | m);
    for (uint32_t u : cases) {
        float f;
        std::memcpy(&f, &u, 4);
        unsigned short mine = __float2half_rn(f).__x;
        float back = __half2float(__half{mine});
        if (std::isnan(f)) {
            if (mine != 0x7fff) ++not_nearest;
            continue;
        }
#if defined(__x86_64__)
        if (f16c) {
            unsigned short hw = hw_f32_to_f16(f);
            float hw_back = hw_f16_to_f32(hw);
            if (hw != mine || !(hw_back == back || (std::isnan(hw_back) && std::isnan(back)))) ++mismatches;
            ++tested;
        }
#endif
        // Round-trip: the nearest f16 (ties to even) in double arithmetic.
        if (std::fabs(f) < 65520.0f) {
            double err = std::fabs(static_cast<double>(back) - f);
            unsigned short up = static_cast<unsigned short>(mine + 1), down = static_cast<unsigned short>(mine - 1);
            for (unsigned short nb : {up, down}) {
                if ((nb & 0x7c00) == 0x7c00) continue;
                float other = __half2float(__half{nb});
                if ((mine & 0x8000) != (nb & 0x8000)) continue;
                double e2 = std::fabs(static_cast<double>(other) - f);
                if (!(err < e2 || (err == e2 && (mine & 1) == 0))) ++not_nearest;
            }
        } else if ((mine & 0x7fff) != 0x7c00) {
            ++not_nearest;  // should overflow to infinity
        }
    }
    EXPECT(not_nearest == 0, "%ld f16 conversions are not round-to-nearest-even", not_nearest);
    if (f16c) {
        EXPECT(mismatches == 0, "%ld of %ld f16 conversions differ from the CPU's F16C", mismatches, tested);
        std::printf("    f16: %ld conversions equal to F16C hardware\n", tested);
    } else {
        std::printf("    SKIP: no F16C on this CPU; f16 checked against the round-trip rule only\n");
    }
    // bf16: nearest even by exhaustive neighbour comparison.
    long bad = 0;
    for (uint32_t u : cases) {
        float f;
        std::memcpy(&f, &u, 4);
        unsigned short b = __float2bfloat16_rn(f).__x;
        if (std::isnan(f)) {
            if (b != 0x7fff) ++bad;
            continue;
        }
        float back = __bfloat162float(__nv_bfloat16{b});
        if (std::isinf(back) && !std::isinf(f)) {
            if (std::fabs(f) < 3.3961775e38f) ++bad;  // below the rounding boundary of the largest bf16
            continue;
        }
        double err = std::fabs(static_cast<double>(back) - f);
        for (int dlt : {-1, 1}) {
            unsigned short nb = static_cast<unsigned short>(b + dlt);
            if ((nb & 0x8000) != (b & 0x8000) || (nb & 0x7f80) == 0x7f80) continue;
            double e2 = std::fabs(static_cast<double>(__bfloat162float(__nv_bfloat16{nb})) - f);
            if (err > e2 || (err == e2 && (b & 1))) ++bad;
        }
    }
    EXPECT(bad == 0, "%ld bf16 conversions are not round-to-nearest-even", bad);
    EXPECT(__float2half_rn(65519.0f).__x == 0x7bff && __float2half_rn(65520.0f).__x == 0x7c00, "f16 overflow boundary");
    EXPECT(__float2half_rn(5.9604645e-08f).__x == 0x0001 && __float2half_rn(2.9802322e-08f).__x == 0x0000,
           "f16 smallest subnormal and the tie below it");
}

void test_barrier() {
    const int blocks = 3, threads = 256;
    std::vector<float> in(blocks * threads);
    for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 7);
    Device<float> din(in.size()), dout(blocks);
    din.put(in);
    CDAS_LAUNCH(blocks, threads, 0, nullptr, block_sum_kernel)(din.p, dout.p, 1);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "%s", cdas_emu_last_fault());
    std::vector<float> out = dout.get();
    for (int b = 0; b < blocks; ++b) {
        float want = 0.0f;
        for (int t = 0; t < threads; ++t) want += in[b * threads + t];
        EXPECT(out[b] == want, "block %d: %g, want %g", b, out[b], want);
    }
    // Without the barrier thread 0 reads shared memory the others have not written yet.
    CDAS_LAUNCH(blocks, threads, 0, nullptr, block_sum_kernel)(din.p, dout.p, 0);
    out = dout.get();
    int wrong = 0;
    for (int b = 0; b < blocks; ++b) {
        float want = 0.0f;
        for (int t = 0; t < threads; ++t) want += in[b * threads + t];
        wrong += !(out[b] == want);
    }
    EXPECT(wrong == blocks, "a missing __syncthreads went unnoticed in %d of %d blocks", blocks - wrong, blocks);

    Device<float> o(256);
    cudaError_t e = failing([&] { CDAS_LAUNCH(1, 256, 0, nullptr, partial_barrier_kernel)(o.p, 200); });
    EXPECT(e == cudaErrorLaunchFailure && fault_mentions("only part of the block"), "error %d: %s", e, cdas_emu_last_fault());
    cdas_emu_reset();
}

void test_warps() {
    std::vector<int> in(64);
    for (int i = 0; i < 64; ++i) in[i] = i * 3 + 1;
    Device<int> din(64), sums(64), downs(64);
    Device<unsigned> ballots(64);
    din.put(in);
    CDAS_LAUNCH(1, 64, 0, nullptr, warp_ops_kernel)(din.p, sums.p, ballots.p, downs.p);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "%s", cdas_emu_last_fault());
    std::vector<int> s = sums.get(), d = downs.get();
    std::vector<unsigned> bl = ballots.get();
    for (int w = 0; w < 2; ++w) {
        int want = 0;
        unsigned ballot = 0;
        for (int l = 0; l < 32; ++l) {
            want += in[w * 32 + l];
            if (in[w * 32 + l] % 2 == 0) ballot |= 1u << l;
        }
        for (int l = 0; l < 32; ++l) {
            const int t = w * 32 + l;
            EXPECT(s[t] == want, "xor-reduce lane %d: %d want %d", t, s[t], want);
            EXPECT(bl[t] == ballot, "ballot lane %d: %08x want %08x", t, bl[t], ballot);
            const int dwant = l + 3 < 32 ? in[t + 3] : in[t];
            EXPECT(d[t] == dwant, "shfl_down lane %d: %d want %d", t, d[t], dwant);
        }
    }
    Device<float> o(64);
    cudaError_t e = failing([&] { CDAS_LAUNCH(1, 64, 0, nullptr, partial_shuffle_kernel)(o.p); });
    EXPECT(e == cudaErrorLaunchFailure && fault_mentions("exited"), "error %d: %s", e, cdas_emu_last_fault());
    cdas_emu_reset();
}

void test_shared_limits() {
    Device<float> out(256);
    // 40 KiB dynamic: fine without opt-in.
    CDAS_LAUNCH(1, 128, 10240 * sizeof(float), nullptr, dynamic_shared_kernel)(out.p, 10240);
    EXPECT(cudaGetLastError() == cudaSuccess, "%s", cdas_emu_last_fault());
    float want = 0.0f;
    for (int i = 0; i < 10240; ++i) want += static_cast<float>(i);
    EXPECT(out.get()[0] == want, "dynamic shared sum %g want %g", out.get()[0], want);
    // 64 KiB dynamic: refused without the attribute, accepted with it.
    cudaError_t e = failing([&] { CDAS_LAUNCH(1, 128, 16384 * sizeof(float), nullptr, dynamic_shared_kernel)(out.p, 16384); });
    EXPECT(e == cudaErrorInvalidValue, "64 KiB without opt-in gave %d", e);
    cdas_emu_reset();
    EXPECT(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 65536) == cudaSuccess, "opt-in");
    CDAS_LAUNCH(1, 128, 16384 * sizeof(float), nullptr, dynamic_shared_kernel)(out.p, 16384);
    EXPECT(cudaGetLastError() == cudaSuccess, "64 KiB with opt-in: %s", cdas_emu_last_fault());
    // static + dynamic over 48 KiB: the static part counts.
    e = failing([&] { CDAS_LAUNCH(1, 64, 48 * 1024 - 64, nullptr, static_plus_dynamic_kernel)(out.p); });
    EXPECT(e == cudaErrorInvalidValue && fault_mentions("static"), "static+dynamic over 48 KiB gave %d: %s", e,
           cdas_emu_last_fault());
    cdas_emu_reset();
    CDAS_LAUNCH(1, 64, 48 * 1024 - 512, nullptr, static_plus_dynamic_kernel)(out.p);
    EXPECT(cudaGetLastError() == cudaSuccess, "static+dynamic under 48 KiB: %s", cdas_emu_last_fault());
    e = failing([&] { CDAS_LAUNCH(1, 32, 64 * sizeof(float), nullptr, shared_overrun_kernel)(out.p, 64); });
    EXPECT(e == cudaErrorLaunchFailure && fault_mentions("past the end of the"), "shared overrun gave %d: %s", e,
           cdas_emu_last_fault());
    cdas_emu_reset();
}

template <class T, class Conv>
void wmma_case(Conv to, const char* name) {
    std::mt19937 rng(5);
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<T> a(256), bt(256);
    std::vector<float> af(256), bf(256);
    for (int i = 0; i < 256; ++i) {
        a[i] = to(n(rng));
        bt[i] = to(n(rng));
    }
    Device<T> da(256), db(256);
    Device<float> dd(256);
    da.put(a);
    db.put(bt);
    CDAS_LAUNCH(1, 32, 0, nullptr, wmma_kernel<T>)(da.p, db.p, dd.p);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "%s", cdas_emu_last_fault());
    std::vector<float> d = dd.get();
    double worst = 0.0;
    for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 16; ++c) {
            double want = 0.0;
            for (int k = 0; k < 16; ++k) {
                float x, y;
                if constexpr (std::is_same<T, __half>::value) {
                    x = __half2float(a[r * 16 + k]);
                    y = __half2float(bt[c * 16 + k]);
                } else {
                    x = __bfloat162float(a[r * 16 + k]);
                    y = __bfloat162float(bt[c * 16 + k]);
                }
                want += static_cast<double>(x) * y;
            }
            worst = std::max(worst, std::fabs(want - d[r * 16 + c]));
        }
    EXPECT(worst < 1e-4, "%s WMMA product off by %g", name, worst);
}

void test_wmma() {
    wmma_case<__half>([](float v) { return __float2half_rn(v); }, "f16");
    wmma_case<__nv_bfloat16>([](float v) { return __float2bfloat16_rn(v); }, "bf16");
    // Code that assumes where fragment elements live gets a wrong answer.
    std::vector<__half> a(256), bt(256);
    for (int i = 0; i < 256; ++i) {
        a[i] = __float2half_rn(i / 16 == i % 16 ? 1.0f : 0.0f);  // identity
        bt[i] = __float2half_rn(static_cast<float>(i % 5));
    }
    Device<__half> da(256), db(256);
    Device<float> dd(256);
    da.put(a);
    db.put(bt);
    CDAS_LAUNCH(1, 32, 0, nullptr, wmma_assumed_mapping_kernel)(da.p, db.p, dd.p);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "%s", cdas_emu_last_fault());
    std::vector<float> d = dd.get();
    int right = 0;
    for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 16; ++c) right += d[r * 16 + c] == static_cast<float>((c * 16 + r) % 5) * (r + 1);
    EXPECT(right < 200, "an assumed fragment mapping gave %d of 256 right elements: the mapping is not scrambled", right);
    // Misaligned leading dimension: refused.
    cudaError_t e = failing([&] { CDAS_LAUNCH(1, 32, 0, nullptr, wmma_kernel<__half>)(da.p + 1, db.p, dd.p); });
    EXPECT(e == cudaErrorLaunchFailure && fault_mentions("aligned"), "misaligned WMMA pointer gave %d: %s", e, cdas_emu_last_fault());
    cdas_emu_reset();
}

void test_cublas() {
    cublasHandle_t h;
    EXPECT(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS, "create");
    const int m = 7, n = 5, k = 3;
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (int ta = 0; ta < 2; ++ta)
        for (int tb = 0; tb < 2; ++tb) {
            const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
            std::vector<float> A(lda * (ta ? m : k)), B(ldb * (tb ? k : n)), C(ldc * n);
            for (auto& v : A) v = u(rng);
            for (auto& v : B) v = u(rng);
            for (auto& v : C) v = u(rng);
            Device<float> dA(A.size()), dB(B.size()), dC(C.size());
            dA.put(A);
            dB.put(B);
            dC.put(C);
            const float alpha = 0.5f, beta = -2.0f;
            cublasStatus_t st = cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                             &alpha, dA.p, CUDA_R_32F, lda, dB.p, CUDA_R_32F, ldb, &beta, dC.p,
                                             CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            EXPECT(st == CUBLAS_STATUS_SUCCESS, "gemm %d", st);
            std::vector<float> got = dC.get();
            double worst = 0.0;
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j) {
                    double acc = 0.0;
                    for (int p = 0; p < k; ++p) {
                        double x = ta ? A[p + i * lda] : A[i + p * lda];
                        double y = tb ? B[j + p * ldb] : B[p + j * ldb];
                        acc += x * y;
                    }
                    double want = alpha * acc + beta * C[i + j * ldc];
                    worst = std::max(worst, std::fabs(want - got[i + j * ldc]));
                }
            // rows of C beyond m (ldc padding) untouched
            for (int j = 0; j < n; ++j)
                for (int i = m; i < ldc; ++i) EXPECT(got[i + j * ldc] == C[i + j * ldc], "padding of C written");
            EXPECT(worst < 1e-5, "op(A)=%s op(B)=%s off by %g", ta ? "T" : "N", tb ? "T" : "N", worst);
        }
    // cuBLAS's own argument checks.
    Device<float> d(64);
    const float one = 1.0f, zero = 0.0f;
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, &one, d.p, CUDA_R_32F, 3, d.p, CUDA_R_32F, 3, &zero, d.p,
                        CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE,
           "lda < m accepted");
    EXPECT(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, 4, 2, 3, &one, d.p, CUDA_R_32F, 2, d.p, CUDA_R_32F, 3, &zero, d.p,
                        CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE,
           "transposed lda < k accepted");
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, &one, d.p, CUDA_R_32F, 4, d.p, CUDA_R_32F, 3, &zero, d.p,
                        CUDA_R_32F, 3, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE,
           "ldc < m accepted");
    // An operand that runs past its allocation (a leading dimension too large for the buffer).
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 2, 3, &one, d.p, CUDA_R_32F, 40, d.p, CUDA_R_32F, 3, &zero, d.p,
                        CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_EXECUTION_FAILED &&
               fault_mentions("operand A"),
           "A past its allocation accepted: %s", cdas_emu_last_fault());
    // bf16 inputs with fp32 output and compute; unsupported mixes refused.
    std::vector<__nv_bfloat16> hb(16);
    for (int i = 0; i < 16; ++i) hb[i] = __float2bfloat16_rn(static_cast<float>(i));
    Device<__nv_bfloat16> db(16);
    db.put(hb);
    Device<float> dc(16);
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_T, 4, 4, 4, &one, db.p, CUDA_R_16BF, 4, db.p, CUDA_R_16BF, 4, &zero,
                        dc.p, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS,
           "bf16 gemm");
    std::vector<float> c = dc.get();
    float want = 0.0f;
    for (int p = 0; p < 4; ++p) want += static_cast<float>(1 + 4 * p) * static_cast<float>(2 + 4 * p);
    EXPECT(c[1 + 2 * 4] == want, "bf16 gemm C(1,2) = %g want %g", c[1 + 2 * 4], want);
    EXPECT(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, db.p, CUDA_R_16BF, 4, d.p, CUDA_R_32F, 4, &zero,
                        dc.p, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED,
           "mixed input types accepted");
    cublasDestroy(h);
    cdas_emu_reset();
}

// A 16-byte vector copy from in + offset (floats): misaligned unless offset % 4 == 0.
__global__ void vector_copy_kernel(const float* in, float* out, int offset) {
    *reinterpret_cast<float4*>(out) = *reinterpret_cast<const float4*>(in + offset);
}

void test_memory() {
    const int n = 100;
    Device<float> in(n), out(n);
    std::vector<float> v(n, 3.0f);
    in.put(v);
    CDAS_LAUNCH(1, 128, 0, nullptr, copy_kernel)(in.p, out.p, n, 0);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "in-bounds copy: %s", cdas_emu_last_fault());
    // One element past the end: caught (red zone or guard page), sticky like a GPU fault.
    cudaError_t e = failing([&] { CDAS_LAUNCH(1, 128, 0, nullptr, copy_kernel)(in.p, out.p, n, 1); });
    EXPECT(e == cudaErrorIllegalAddress && fault_mentions("past the end"), "write past the end gave %d: %s", e,
           cdas_emu_last_fault());
    EXPECT(cudaMemcpy(v.data(), out.p, 4, cudaMemcpyDeviceToHost) == cudaErrorIllegalAddress, "the error is sticky");
    cdas_emu_reset();
    // A read 2 KiB past the end lands in the guard page.
    Device<float> small(1024);
    e = failing([&] { CDAS_LAUNCH(1, 32, 0, nullptr, read_kernel)(small.p, out.p, 32, 1024 + 512); });
    EXPECT(e == cudaErrorIllegalAddress && fault_mentions("illegal memory access"), "read past the end gave %d: %s", e,
           cdas_emu_last_fault());
    cdas_emu_reset();
    // A 16-byte load through a misaligned float4 pointer (a GPU's "misaligned address"): the
    // aligned vector instruction faults, and the message says what it was.
    CDAS_LAUNCH(1, 1, 0, nullptr, vector_copy_kernel)(in.p, out.p, 4);
    EXPECT(cudaDeviceSynchronize() == cudaSuccess, "aligned vector copy: %s", cdas_emu_last_fault());
    e = failing([&] { CDAS_LAUNCH(1, 1, 0, nullptr, vector_copy_kernel)(in.p, out.p, 1); });
    EXPECT(e != cudaSuccess && fault_mentions("misaligned vector access"), "misaligned float4 load gave %d: %s", e,
           cdas_emu_last_fault());
    cdas_emu_reset();
    // Copies are checked against their allocations.
    EXPECT(cudaMemcpy(in.p, v.data(), (n + 1) * sizeof(float), cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
           "an over-long copy was accepted");
    EXPECT(cudaMemcpy(v.data(), v.data() + 1, 4, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue,
           "a host pointer was accepted as a device source");
    cudaGetLastError();
    // Fresh device memory is poisoned (NaN), not zero.
    Device<float> fresh(4);
    std::vector<float> f = fresh.get();
    EXPECT(std::isnan(f[0]) && std::isnan(f[3]), "fresh allocations are not poisoned");
    // Invalid launch configurations.
    e = failing([&] { CDAS_LAUNCH(0, 32, 0, nullptr, copy_kernel)(in.p, out.p, n, 0); });
    EXPECT(e == cudaErrorInvalidConfiguration, "an empty grid gave %d", e);
    e = failing([&] { CDAS_LAUNCH(1, 2048, 0, nullptr, copy_kernel)(in.p, out.p, n, 0); });
    EXPECT(e == cudaErrorInvalidConfiguration, "2048 threads per block gave %d", e);
    cdas_emu_reset();
}

}  // namespace

int main() {
    std::printf("CUDA emulation self-test (seed %llu)\n", cdas_emu_seed());
    struct Case {
        const char* name;
        void (*fn)();
    } cases[] = {{"conversions", test_conversions}, {"barrier", test_barrier},         {"warps", test_warps},
                 {"shared_limits", test_shared_limits}, {"wmma", test_wmma},         {"cublas", test_cublas},
                 {"memory", test_memory}};
    for (const Case& c : cases) {
        int before = g_failed;
        std::printf("  %s\n", c.name);
        c.fn();
        std::printf("  %s: %s\n", c.name, g_failed == before ? "ok" : "FAILED");
    }
    std::printf("%d checks, %d failed (%llu emulated launches, %llu threads)\n", g_checks, g_failed,
                cdas_emu_launch_count(), cdas_emu_thread_count());
    return g_failed == 0 ? 0 : 1;
}
