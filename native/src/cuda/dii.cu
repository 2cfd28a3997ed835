/*
 * DII, the rank-r distributed interchange intervention, forward and backward on the GPU
 * (cdas.h: cdas_dii_forward / cdas_dii_backward; the CPU twins in native/src/cpu are the spec
 * this must match: same math, same masking, same meaning of every nullable output).
 *
 *   forward   h'_t = h_t + W^T (a_e - W h_t)                       (rows with mask != 0)
 *   backward  dL/dh_t = g_t - W^T W g_t
 *             dL/da_e = sum_{t in e} W g_t
 *             dL/dW   = sum_t (a_e - W h_t) g_t^T - (W g_t) h_t^T  +  sum_e (dL/da_e) s_e^T
 *
 * The last term is the source path a_e = W s_e folded per example: sum_t (W g_t) s_e^T =
 * sum_e (sum_{t in e} W g_t) s_e^T, so the row pass never touches s.
 *
 * What is fused and why: the operation is memory-bound, so each row kernel makes one pass over
 * its rows with one warp per row: 16-byte loads into registers, projections W h (and W g) reduced
 * by warp shuffles only, then the outputs written from those registers (units beyond what the
 * registers hold are read a second time, from L1/L2). No block barrier inside the row loop and
 * no host synchronisation anywhere (the clamp values, the row kernel and the dW passes are queued
 * on the stream back to back). All arithmetic is fp32 whatever the storage dtype.
 *
 * Bytes moved per call (2-byte storage, d = hidden size, T rows, rank r, B examples):
 *   forward   reads h (2Td), writes h' (2Td)                                      = 4Td
 *   backward  reads h and dL/dh' (4Td), writes dL/dh (2Td), dW partials
 *             (P r d x 4 bytes written and read once, P = T / 32 blocks)          = 6Td + 8 P r d
 * plus W (4rd, from L2 after the first touch) and s (2Bd). At T = 8192, d = 2304, r = 1: 38 MB
 * forward, 113 MB + 0.5 MB backward, i.e. 11 us + 34 us at 3.35 TB/s (H100 HBM3).
 *
 * Direction sets (cdas_dii_forward_sets, concept packing): directions holds `sets` blocks W_k and
 * example e uses block example_set[e] everywhere (a_e, the row passes); each warp's dW accumulator
 * is [sets x r x d], a row adding into its own set's block, and the second pass sums block k of
 * every partial into grad_directions block k. One call, whatever the number of sets.
 *
 * Determinism: dL/dW is reduced without float atomics. Rows map to warps by a fixed rule
 * (kRowsPerWarp consecutive rows per warp, a function of the shape only); each warp accumulates
 * its rows into its own [r x d] accumulator (shared memory when the block's fit, else the
 * workspace), the block sums its warps in warp order, and a second kernel sums the partials in
 * order. dL/da_e is a fixed-order block reduction over the rows. Repeating a call gives bitwise
 * identical results.
 */
#include <algorithm>
#include <type_traits>

#include "cuda/common.cuh"

namespace cdas_cuda {
namespace {

constexpr int kThreads = 256;          // the clamp-value and dW kernels
// Shared memory a block may use without opting in (cudaFuncSetAttribute): static + dynamic. The
// row kernels have no static shared memory; their coefficients take kWarps x rank (forward) or
// kWarps x 2 rank (backward) floats of dynamic shared memory, which bounds the rank.
constexpr size_t kSharedLimitBytes = 48 * 1024;

// A row whose example index is outside [0, examples) is never used to index anything: the row
// kernels set kDeviceErrorExampleIndex in the state's device error word (read back by
// synchronize), write NaN to the row's outputs and leave it out of every reduction. An example
// whose set is outside [0, sets) is treated the same way (its clamp values are NaN).

// Example e's set, or -1 when e or its set is out of range.
__device__ __forceinline__ int64_t set_of(int64_t e, int64_t examples, int64_t sets, const int32_t* example_set) {
    if (e < 0 || e >= examples) return -1;
    if (example_set == nullptr) return 0;
    const int64_t k = example_set[e];
    return k >= 0 && k < sets ? k : -1;
}

// a_e = W s_e (source given) or the given values; also copied to source_values_out.
template <typename T>
__global__ void dii_clamp_values_kernel(int64_t dim, int64_t rank, int64_t examples, int64_t sets,
                                        const float* __restrict__ directions_all, const int32_t* __restrict__ example_set,
                                        const T* __restrict__ source, const float* __restrict__ values,
                                        float* __restrict__ a, float* __restrict__ a_out, int* __restrict__ error_flag) {
    CDAS_SHARED(float, scratch, [32]);
    const int64_t e = blockIdx.x;
    const int64_t set = set_of(e, examples, sets, example_set);
    if (set < 0 && threadIdx.x == 0) atomicOr(error_flag, kDeviceErrorExampleIndex);
    const float* directions = directions_all + (set < 0 ? 0 : set) * rank * dim;
    for (int64_t i = 0; i < rank; ++i) {
        float v;
        if (set < 0) {
            v = NAN;
        } else if (source != nullptr) {
            float partial = 0.0f;
            for (int64_t j = threadIdx.x; j < dim; j += blockDim.x)
                partial += directions[i * dim + j] * to_float(source[e * dim + j]);
            v = block_sum(partial, scratch);
        } else {
            v = values[e * rank + i];
        }
        if (threadIdx.x == 0) {
            a[e * rank + i] = v;
            if (a_out != nullptr) a_out[e * rank + i] = v;
        }
    }
}

constexpr int kWarps = 8;            // warps per block of the row kernels (256 threads)
constexpr int kRowsPerWarp = 4;      // backward: rows t in [4 w, 4 w + 4) belong to warp w, on any GPU
constexpr int kCached = 8;           // 16-byte units per lane kept in registers between the two passes
constexpr int kRankGroup = 4;        // projections computed together in one pass over a row

// A row is read and written in units: 16-byte vectors of kU elements (kU = 16 / sizeof(T)) when
// the rows are 16-byte aligned, single elements otherwise.
template <typename T, int kU>
struct Units {
    // What a lane keeps in registers between the passes: the raw 16 bytes (4 registers, not kU
    // floats) or the raw element.
    typedef typename std::conditional<kU == 1, T, uint4>::type Raw;
    static __device__ __forceinline__ Raw load_raw(const T* row, int64_t u) {
        if constexpr (kU == 1) {
            return row[u];
        } else {
            return *reinterpret_cast<const uint4*>(row + u * kU);
        }
    }
    static __device__ __forceinline__ void unpack(const Raw& r, float* x) {
        if constexpr (kU == 1) {
            x[0] = to_float(r);
        } else {
            const T* e = reinterpret_cast<const T*>(&r);
#pragma unroll
            for (int q = 0; q < kU; ++q) x[q] = to_float(e[q]);
        }
    }
    static __device__ __forceinline__ void load(const T* row, int64_t u, float* x) {
        if constexpr (kU == 1) {
            x[0] = to_float(row[u]);
        } else {
            const uint4 v = *reinterpret_cast<const uint4*>(row + u * kU);
            const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
            for (int q = 0; q < kU; ++q) x[q] = to_float(e[q]);
        }
    }
    static __device__ __forceinline__ void store(T* row, int64_t u, const float* x) {
        if constexpr (kU == 1) {
            row[u] = from_float<T>(x[0]);
        } else {
            uint4 v;
            T* e = reinterpret_cast<T*>(&v);
#pragma unroll
            for (int q = 0; q < kU; ++q) e[q] = from_float<T>(x[q]);
            *reinterpret_cast<uint4*>(row + u * kU) = v;
        }
    }
    static __device__ __forceinline__ void fill(T* row, int64_t units, int lane, float value) {
        float x[kU];
#pragma unroll
        for (int q = 0; q < kU; ++q) x[q] = value;
        for (int64_t u = lane; u < units; u += 32) store(row, u, x);
    }
    static __device__ __forceinline__ void copy(T* dst, const T* src, int64_t units, int lane) {
        float x[kU];
        for (int64_t u = lane; u < units; u += 32) {
            load(src, u, x);
            store(dst, u, x);
        }
    }
};

// One warp per row, rows strided over all warps of the grid. Pass 1 reads the row with 16-byte
// loads into registers (the first kCached units per lane) and forms W h by shuffles; pass 2 writes
// h + W^T (a_e - W h) from those registers (units past kCached per lane are read again, from L1/L2).
// h_out may alias h: every unit is read by the lane that later writes it.
template <typename T, int kU>
__global__ void __launch_bounds__(kWarps * 32) dii_forward_rows_kernel(
    int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets, const T* h,
    const float* __restrict__ directions_all, const float* __restrict__ a, const int32_t* __restrict__ example_index,
    const int32_t* __restrict__ example_set, const uint8_t* __restrict__ mask, T* h_out, int* __restrict__ error_flag) {
    CDAS_DYNAMIC_SHARED(float, smem);  // [kWarps][rank] coefficients a_e - W h_t
    typedef Units<T, kU> U;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float* coeff = smem + warp * rank;
    const int64_t units = dim / kU;
    const int64_t stride = static_cast<int64_t>(gridDim.x) * kWarps;
    for (int64_t t = static_cast<int64_t>(blockIdx.x) * kWarps + warp; t < rows; t += stride) {
        const T* row = h + t * dim;
        T* out = h_out + t * dim;
        const int64_t e = example_index != nullptr ? example_index[t] : 0;
        const int64_t set = set_of(e, examples, sets, example_set);
        if (set < 0) {  // never used as an index; raised for synchronize to report
            if (lane == 0) atomicOr(error_flag, kDeviceErrorExampleIndex);
            U::fill(out, units, lane, NAN);
            continue;
        }
        const float* directions = directions_all + set * rank * dim;
        if (mask != nullptr && mask[t] == 0) {
            if (out != row) U::copy(out, row, units, lane);
            continue;
        }
        typename U::Raw cached[kCached];
        for (int64_t i0 = 0; i0 < rank; i0 += kRankGroup) {
            float part[kRankGroup] = {0.0f, 0.0f, 0.0f, 0.0f};
            const int group = static_cast<int>(min(static_cast<int64_t>(kRankGroup), rank - i0));
            auto accumulate = [&](int64_t u, const float* x) {
#pragma unroll
                for (int i = 0; i < kRankGroup; ++i) {
                    if (i >= group) break;
                    const float* w = directions + (i0 + i) * dim + u * kU;
#pragma unroll
                    for (int q = 0; q < kU; ++q) part[i] += w[q] * x[q];
                }
            };
#pragma unroll
            for (int k = 0; k < kCached; ++k) {
                const int64_t u = lane + 32 * k;
                if (u < units) {
                    if (i0 == 0) cached[k] = U::load_raw(row, u);
                    float x[kU];
                    U::unpack(cached[k], x);
                    accumulate(u, x);
                }
            }
            for (int64_t u = lane + 32 * kCached; u < units; u += 32) {
                float x[kU];
                U::load(row, u, x);
                accumulate(u, x);
            }
#pragma unroll
            for (int i = 0; i < kRankGroup; ++i) {
                const float p = warp_sum(part[i]);
                if (lane == 0 && i < group) coeff[i0 + i] = a[e * rank + i0 + i] - p;
            }
        }
        __syncwarp();
        auto write = [&](int64_t u, float* x) {
            for (int64_t i = 0; i < rank; ++i) {
                const float c = coeff[i];
                const float* w = directions + i * dim + u * kU;
#pragma unroll
                for (int q = 0; q < kU; ++q) x[q] += w[q] * c;
            }
            U::store(out, u, x);
        };
#pragma unroll
        for (int k = 0; k < kCached; ++k) {
            const int64_t u = lane + 32 * k;
            if (u < units) {
                float x[kU];
                U::unpack(cached[k], x);
                write(u, x);
            }
        }
        for (int64_t u = lane + 32 * kCached; u < units; u += 32) {
            float x[kU];
            U::load(row, u, x);
            write(u, x);
        }
        __syncwarp();  // coeff is rewritten for the next row
    }
}

// Backward rows: warp w of the grid owns rows [w R, w R + R) (R = rows_per_warp, a function of the
// shape only). Per row: pass 1 reads h and g (16-byte loads, kept in registers) and forms W h and
// W g by shuffles; pass 2 writes dL/dh = g - W^T W g and adds (a_e - W h) g^T - (W g) h^T to the
// warp's dL/dW accumulator. Accumulators live in shared memory ([kWarps][rank x dim], summed in
// warp order into the block's partial at the end) or, when they do not fit, in the workspace (one
// per warp that owns rows, which are then the partials). A second kernel sums the partials in order: bitwise
// repeatable. grad_out may alias grad_h (read before written by the same lane).
template <typename T, int kU>
__global__ void __launch_bounds__(kWarps * 32) dii_backward_rows_kernel(
    int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets, int64_t rows_per_warp, const T* h,
    const float* __restrict__ directions_all, const float* __restrict__ a, const int32_t* __restrict__ example_index,
    const int32_t* __restrict__ example_set, const uint8_t* __restrict__ mask, const T* grad_out, T* grad_h,
    float* __restrict__ wg,
    float* __restrict__ partials, int shared_accumulators, int* __restrict__ error_flag) {
    CDAS_DYNAMIC_SHARED(float, smem);  // [kWarps][2 rank] coefficients, then [kWarps][sets x rank x dim] if shared
    typedef Units<T, kU> U;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float* coeff = smem + warp * 2 * rank;  // a_e - W h_t
    float* proj = coeff + rank;             // W g_t
    const int64_t rd = rank * dim;
    const int64_t srd = sets * rd;  // one accumulator block per set
    const bool want_dw = partials != nullptr;
    const int64_t first = (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * rows_per_warp;
    // Accumulators in the workspace exist only for warps that own rows (no block barrier follows).
    if (want_dw && !shared_accumulators && first >= rows) return;
    float* acc_all = nullptr;
    if (want_dw) {
        acc_all = shared_accumulators ? smem + kWarps * 2 * rank + warp * srd
                                      : partials + (static_cast<int64_t>(blockIdx.x) * kWarps + warp) * srd;
        for (int64_t k = lane; k < srd; k += 32) acc_all[k] = 0.0f;
        __syncwarp();
    }
    const int64_t units = dim / kU;
    const int64_t last = min(rows, first + rows_per_warp);
    for (int64_t t = first; t < last; ++t) {
        const T* hr = h + t * dim;
        const T* gr = grad_out + t * dim;
        T* dh = grad_h != nullptr ? grad_h + t * dim : nullptr;
        const int64_t e = example_index != nullptr ? example_index[t] : 0;
        const int64_t set = set_of(e, examples, sets, example_set);
        if (set < 0) {
            if (lane == 0) atomicOr(error_flag, kDeviceErrorExampleIndex);
            if (dh != nullptr) U::fill(dh, units, lane, NAN);
            if (wg != nullptr)
                for (int64_t i = lane; i < rank; i += 32) wg[t * rank + i] = NAN;  // summed by no example
            continue;
        }
        if (mask != nullptr && mask[t] == 0) {
            if (dh != nullptr && dh != gr) U::copy(dh, gr, units, lane);
            if (wg != nullptr)
                for (int64_t i = lane; i < rank; i += 32) wg[t * rank + i] = 0.0f;
            continue;
        }
        const float* directions = directions_all + set * rd;
        float* acc = want_dw ? acc_all + set * rd : nullptr;
        typename U::Raw ch[kCached], cg[kCached];
        for (int64_t i0 = 0; i0 < rank; i0 += kRankGroup) {
            float ph[kRankGroup] = {0.0f, 0.0f, 0.0f, 0.0f}, pg[kRankGroup] = {0.0f, 0.0f, 0.0f, 0.0f};
            const int group = static_cast<int>(min(static_cast<int64_t>(kRankGroup), rank - i0));
            auto accumulate = [&](int64_t u, const float* xh, const float* xg) {
#pragma unroll
                for (int i = 0; i < kRankGroup; ++i) {
                    if (i >= group) break;
                    const float* w = directions + (i0 + i) * dim + u * kU;
#pragma unroll
                    for (int q = 0; q < kU; ++q) {
                        ph[i] += w[q] * xh[q];
                        pg[i] += w[q] * xg[q];
                    }
                }
            };
#pragma unroll
            for (int k = 0; k < kCached; ++k) {
                const int64_t u = lane + 32 * k;
                if (u < units) {
                    if (i0 == 0) {
                        ch[k] = U::load_raw(hr, u);
                        cg[k] = U::load_raw(gr, u);
                    }
                    float xh[kU], xg[kU];
                    U::unpack(ch[k], xh);
                    U::unpack(cg[k], xg);
                    accumulate(u, xh, xg);
                }
            }
            for (int64_t u = lane + 32 * kCached; u < units; u += 32) {
                float xh[kU], xg[kU];
                U::load(hr, u, xh);
                U::load(gr, u, xg);
                accumulate(u, xh, xg);
            }
#pragma unroll
            for (int i = 0; i < kRankGroup; ++i) {
                const float sh = warp_sum(ph[i]);
                const float sg = warp_sum(pg[i]);
                if (lane == 0 && i < group) {
                    coeff[i0 + i] = a[e * rank + i0 + i] - sh;
                    proj[i0 + i] = sg;
                    if (wg != nullptr) wg[t * rank + i0 + i] = sg;
                }
            }
        }
        __syncwarp();
        auto update = [&](int64_t u, const float* xh, const float* xg) {
            if (dh != nullptr) {
                float d[kU];
#pragma unroll
                for (int q = 0; q < kU; ++q) d[q] = xg[q];
                for (int64_t i = 0; i < rank; ++i) {
                    const float p = proj[i];
                    const float* w = directions + i * dim + u * kU;
#pragma unroll
                    for (int q = 0; q < kU; ++q) d[q] -= w[q] * p;
                }
                U::store(dh, u, d);
            }
            if (want_dw)
                for (int64_t i = 0; i < rank; ++i) {
                    const float c = coeff[i], p = proj[i];
                    float* r = acc + i * dim + u * kU;
#pragma unroll
                    for (int q = 0; q < kU; ++q) r[q] += c * xg[q] - p * xh[q];
                }
        };
#pragma unroll
        for (int k = 0; k < kCached; ++k) {
            const int64_t u = lane + 32 * k;
            if (u < units) {
                float xh[kU], xg[kU];
                U::unpack(ch[k], xh);
                U::unpack(cg[k], xg);
                update(u, xh, xg);
            }
        }
        for (int64_t u = lane + 32 * kCached; u < units; u += 32) {
            float xh[kU], xg[kU];
            U::load(hr, u, xh);
            U::load(gr, u, xg);
            update(u, xh, xg);
        }
        __syncwarp();  // coeff/proj are rewritten for the next row
    }
    if (want_dw && shared_accumulators) {
        __syncthreads();  // every warp's accumulator is complete
        float* out = partials + static_cast<int64_t>(blockIdx.x) * srd;
        const float* base = smem + kWarps * 2 * rank;
        for (int64_t k = threadIdx.x; k < srd; k += blockDim.x) {
            float s = 0.0f;
#pragma unroll
            for (int w = 0; w < kWarps; ++w) s += base[w * srd + k];
            out[k] = s;
        }
    }
}

// dL/da_e[i] = sum over rows of example e of (W g_t)[i]: one block per (e, i), fixed order.
__global__ void dii_grad_values_kernel(int64_t rows, int64_t rank, const int32_t* __restrict__ example_index,
                                       const uint8_t* __restrict__ mask, const float* __restrict__ wg,
                                       float* __restrict__ grad_a, float* __restrict__ grad_values) {
    CDAS_SHARED(float, scratch, [32]);
    const int64_t e = blockIdx.x / rank, i = blockIdx.x % rank;
    float partial = 0.0f;
    for (int64_t t = threadIdx.x; t < rows; t += blockDim.x) {
        const int64_t et = example_index != nullptr ? example_index[t] : 0;
        if (et == e && (mask == nullptr || mask[t] != 0)) partial += wg[t * rank + i];
    }
    float total = block_sum(partial, scratch);
    if (threadIdx.x == 0) {
        grad_a[blockIdx.x] = total;
        if (grad_values != nullptr) grad_values[blockIdx.x] = total;
    }
}

// Second stage: dL/dW_set = sum of the block partials (their block `set`) in block order, plus
// sum over the set's examples e of (dL/da_e) s_e^T.
template <typename T>
__global__ void dii_grad_directions_kernel(int64_t dim, int64_t rank, int64_t sets, int64_t blocks, int64_t examples,
                                           const int32_t* __restrict__ example_set,
                                           const float* __restrict__ partials, const float* __restrict__ grad_a,
                                           const T* __restrict__ source, float* __restrict__ grad_directions) {
    const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t rd = rank * dim;
    if (k >= sets * rd) return;
    const int64_t set = k / rd, i = (k % rd) / dim, j = k % dim;
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) sum += partials[b * sets * rd + k];
    if (source != nullptr)
        for (int64_t e = 0; e < examples; ++e)
            if (example_set == nullptr || example_set[e] == set) sum += grad_a[e * rank + i] * to_float(source[e * dim + j]);
    grad_directions[k] = sum;
}

bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Dynamic shared memory beyond 48 KiB needs the kernel's opt-in; at most the device's limit.
template <typename Kernel>
cdas_status allow_shared(cdas_cuda_state* s, Kernel* kernel, size_t bytes, const char* what, char* error,
                         size_t error_len) {
    if (bytes <= kSharedLimitBytes) return CDAS_STATUS_OK;
    if (bytes > static_cast<size_t>(s->shared_optin)) {
        set_error(error, error_len, "%s: %zu bytes of shared memory exceed the device's %d", what, bytes, s->shared_optin);
        return CDAS_STATUS_UNSUPPORTED;
    }
    CDAS_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
                    "cudaFuncSetAttribute(DII shared memory)");
    return CDAS_STATUS_OK;
}

template <typename T, int kU>
cdas_status launch_forward_rows(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
                                int64_t sets, const void* h, const float* directions, const float* a,
                                const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
                                void* h_out, char* error, size_t error_len) {
    const size_t smem = static_cast<size_t>(kWarps) * rank * sizeof(float);
    CDAS_RETURN_IF_ERROR(allow_shared(s, dii_forward_rows_kernel<T, kU>, smem, "dii_forward", error, error_len));
    // Enough warps for every row, at most 4 blocks per SM (rows are strided over the grid).
    const int64_t blocks = std::max<int64_t>(1, std::min<int64_t>((rows + kWarps - 1) / kWarps, 4 * int64_t(s->sm_count)));
    CDAS_LAUNCH(static_cast<unsigned>(blocks), kWarps * 32, smem, s->stream, dii_forward_rows_kernel<T, kU>)(
        rows, dim, rank, examples, sets, static_cast<const T*>(h), directions, a, example_index, example_set, mask,
        static_cast<T*>(h_out), s->device_error);
    return CDAS_STATUS_OK;
}

template <typename T>
cdas_status forward_typed(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
                          const void* h, const float* directions, const void* source, const float* values,
                          const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, void* h_out,
                          float* source_values_out, char* error, size_t error_len) {
    WorkspaceLayout layout;
    size_t a_off = layout.add<float>(examples * rank);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float* a = at<float>(ws, a_off);
    CDAS_LAUNCH(static_cast<unsigned>(examples), kThreads, 0, s->stream, dii_clamp_values_kernel<T>)(
        dim, rank, examples, sets, directions, example_set, static_cast<const T*>(source), values, a, source_values_out,
        s->device_error);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = aligned16(h) && aligned16(h_out) && (dim * sizeof(T)) % 16 == 0;
    if (vec)
        CDAS_RETURN_IF_ERROR(launch_forward_rows<T, kVec>(s, rows, dim, rank, examples, sets, h, directions, a,
                                                          example_index, example_set, mask, h_out, error, error_len));
    else
        CDAS_RETURN_IF_ERROR(launch_forward_rows<T, 1>(s, rows, dim, rank, examples, sets, h, directions, a,
                                                       example_index, example_set, mask, h_out, error, error_len));
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the DII forward kernels");
    return CDAS_STATUS_OK;
}

// How the backward lays out its dW accumulators for a shape (a function of the shape and the
// device's shared-memory limit only, so repeated calls reduce in the same order).
struct BackwardPlan {
    bool shared_accumulators;
    int64_t rows_per_warp, blocks, partials;  // partials: accumulators the second pass sums
    size_t shared_bytes;
};

BackwardPlan plan_backward(const cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t sets,
                           bool want_dw) {
    BackwardPlan p;
    const size_t coeff = static_cast<size_t>(kWarps) * 2 * rank * sizeof(float);
    const size_t acc = static_cast<size_t>(kWarps) * sets * rank * dim * sizeof(float);
    p.shared_accumulators = want_dw && coeff + acc <= static_cast<size_t>(s->shared_optin);
    // In the workspace every warp keeps its own accumulator: give warps more rows so that at most
    // 512 of them exist.
    p.rows_per_warp = (!want_dw || p.shared_accumulators) ? kRowsPerWarp
                                                          : std::max<int64_t>(kRowsPerWarp, (rows + 511) / 512);
    const int64_t rows_per_block = p.rows_per_warp * kWarps;
    p.blocks = std::max<int64_t>(1, (rows + rows_per_block - 1) / rows_per_block);
    p.partials = !want_dw ? 0 : p.shared_accumulators ? p.blocks : (rows + p.rows_per_warp - 1) / p.rows_per_warp;
    p.shared_bytes = coeff + (p.shared_accumulators ? acc : 0);
    return p;
}

template <typename T, int kU>
cdas_status launch_backward_rows(cdas_cuda_state* s, const BackwardPlan& p, int64_t rows, int64_t dim, int64_t rank,
                                 int64_t examples, int64_t sets, const void* h, const float* directions, const float* a,
                                 const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
                                 const void* grad_out, void* grad_h, float* wg, float* partials, char* error,
                                 size_t error_len) {
    CDAS_RETURN_IF_ERROR(
        allow_shared(s, dii_backward_rows_kernel<T, kU>, p.shared_bytes, "dii_backward", error, error_len));
    CDAS_LAUNCH(static_cast<unsigned>(p.blocks), kWarps * 32, p.shared_bytes, s->stream, dii_backward_rows_kernel<T, kU>)(
        rows, dim, rank, examples, sets, p.rows_per_warp, static_cast<const T*>(h), directions, a, example_index,
        example_set, mask,
        static_cast<const T*>(grad_out), static_cast<T*>(grad_h), wg, partials, p.shared_accumulators ? 1 : 0,
        s->device_error);
    return CDAS_STATUS_OK;
}

template <typename T>
cdas_status backward_typed(cdas_cuda_state* s, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
                           const void* h, const float* directions, const void* source, const float* values,
                           const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
                           const void* grad_out, void* grad_h, float* grad_directions, float* grad_values, char* error,
                           size_t error_len) {
    const bool want_dw = grad_directions != nullptr;
    const bool want_wg = grad_values != nullptr || (want_dw && source != nullptr);
    const BackwardPlan plan = plan_backward(s, rows, dim, rank, sets, want_dw);
    WorkspaceLayout layout;
    size_t a_off = layout.add<float>(examples * rank);
    size_t grad_a_off = layout.add<float>(examples * rank);
    size_t wg_off = layout.add<float>(want_wg ? rows * rank : 1);
    size_t partial_off = layout.add<float>(want_dw ? plan.partials * sets * rank * dim : 1);
    void* ws = nullptr;
    CDAS_RETURN_IF_ERROR(workspace_get(s, layout.bytes(), &ws, error, error_len));
    float* a = at<float>(ws, a_off);
    float* grad_a = at<float>(ws, grad_a_off);
    float* wg = want_wg ? at<float>(ws, wg_off) : nullptr;
    float* partials = want_dw ? at<float>(ws, partial_off) : nullptr;

    CDAS_LAUNCH(static_cast<unsigned>(examples), kThreads, 0, s->stream, dii_clamp_values_kernel<T>)(
        dim, rank, examples, sets, directions, example_set, static_cast<const T*>(source), values, a, nullptr,
        s->device_error);
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = aligned16(h) && aligned16(grad_out) && aligned16(grad_h) && (dim * sizeof(T)) % 16 == 0;
    if (vec)
        CDAS_RETURN_IF_ERROR(launch_backward_rows<T, kVec>(s, plan, rows, dim, rank, examples, sets, h, directions, a,
                                                           example_index, example_set, mask, grad_out, grad_h, wg,
                                                           partials, error, error_len));
    else
        CDAS_RETURN_IF_ERROR(launch_backward_rows<T, 1>(s, plan, rows, dim, rank, examples, sets, h, directions, a,
                                                        example_index, example_set, mask, grad_out, grad_h, wg,
                                                        partials, error, error_len));
    if (want_wg)
        CDAS_LAUNCH(static_cast<unsigned>(examples * rank), kThreads, 0, s->stream, dii_grad_values_kernel)(
            rows, rank, example_index, mask, wg, grad_a, grad_values);
    if (want_dw) {
        const int64_t n = sets * rank * dim;
        CDAS_LAUNCH(static_cast<unsigned>((n + kThreads - 1) / kThreads), kThreads, 0, s->stream,
                    dii_grad_directions_kernel<T>)(dim, rank, sets, plan.partials, examples, example_set, partials,
                                                   grad_a, static_cast<const T*>(source), grad_directions);
    }
    CDAS_CUDA_CHECK(cudaGetLastError(), "launching the DII backward kernels");
    return CDAS_STATUS_OK;
}

cdas_status check_dii_inputs(cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank,
                             int64_t examples, int64_t sets, const void* h, const float* directions, const void* source,
                             const float* values, const int32_t* example_index, const void* grad_out, char* error,
                             size_t error_len) {
    if (dtype != CDAS_DTYPE_F32 && dtype != CDAS_DTYPE_BF16 && dtype != CDAS_DTYPE_F16) {
        set_error(error, error_len, "dii: unsupported dtype %d", dtype);
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (rows > INT32_MAX || examples * rank > INT32_MAX || sets * rank * dim > INT32_MAX * int64_t(kThreads)) {
        set_error(error, error_len, "dii: shape too large for the CUDA kernels (rows %lld, examples x rank %lld)",
                  static_cast<long long>(rows), static_cast<long long>(examples * rank));
        return CDAS_STATUS_UNSUPPORTED;
    }
    // The row kernels keep kWarps x rank (forward) or kWarps x 2 rank (backward) coefficients in
    // shared memory: at most the device's opt-in limit (227 KiB on an H100/H200: rank 7264 / 3632).
    const bool backward = grad_out != nullptr;
    const int64_t per_rank = static_cast<int64_t>(kWarps) * (backward ? 2 : 1) * static_cast<int64_t>(sizeof(float));
    const int64_t max_rank = s->shared_optin / per_rank;
    if (rank > max_rank) {
        set_error(error, error_len,
                  "%s: rank %lld is too large for the CUDA kernel (at most %lld: %lld bytes of shared memory per rank "
                  "against the device's %d)",
                  backward ? "dii_backward" : "dii_forward", static_cast<long long>(rank),
                  static_cast<long long>(max_rank), static_cast<long long>(per_rank), s->shared_optin);
        return CDAS_STATUS_UNSUPPORTED;
    }
    if (!s->check_inputs) return CDAS_STATUS_OK;  // bad example indices still raise the device error flag
    const CheckedInput inputs[] = {
        {"h", dtype, h, rows * dim},
        {"directions", CDAS_DTYPE_F32, directions, sets * rank * dim},
        {"source", dtype, source, examples * dim},
        {"values", CDAS_DTYPE_F32, values, examples * rank},
        {"grad_out", dtype, grad_out, rows * dim},
    };
    return check_inputs(s, inputs, 5, example_index, rows, examples, error, error_len);
}

}  // namespace
}  // namespace cdas_cuda

using namespace cdas_cuda;

cdas_status cdas_cuda_dii_forward(
    cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
    void* h_out, float* source_values_out, char* error, size_t error_len) {
    if (example_set == nullptr) sets = 1;
    CDAS_RETURN_IF_ERROR(check_dii_inputs(s, dtype, rows, dim, rank, examples, sets, h, directions, source, values,
                                          example_index, nullptr, error, error_len));
    switch (dtype) {
        case CDAS_DTYPE_F32:
            return forward_typed<float>(s, rows, dim, rank, examples, sets, h, directions, source, values, example_index,
                                        example_set, mask, h_out, source_values_out, error, error_len);
        case CDAS_DTYPE_BF16:
            return forward_typed<__nv_bfloat16>(s, rows, dim, rank, examples, sets, h, directions, source, values,
                                                example_index, example_set, mask, h_out, source_values_out, error,
                                                error_len);
        default:
            return forward_typed<__half>(s, rows, dim, rank, examples, sets, h, directions, source, values,
                                         example_index, example_set, mask, h_out, source_values_out, error, error_len);
    }
}

cdas_status cdas_cuda_dii_backward(
    cdas_cuda_state* s, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values, char* error, size_t error_len) {
    if (example_set == nullptr) sets = 1;
    CDAS_RETURN_IF_ERROR(check_dii_inputs(s, dtype, rows, dim, rank, examples, sets, h, directions, source, values,
                                          example_index, grad_out, error, error_len));
    switch (dtype) {
        case CDAS_DTYPE_F32:
            return backward_typed<float>(s, rows, dim, rank, examples, sets, h, directions, source, values,
                                         example_index, example_set, mask, grad_out, grad_h, grad_directions,
                                         grad_values, error, error_len);
        case CDAS_DTYPE_BF16:
            return backward_typed<__nv_bfloat16>(s, rows, dim, rank, examples, sets, h, directions, source, values,
                                                 example_index, example_set, mask, grad_out, grad_h, grad_directions,
                                                 grad_values, error, error_len);
        default:
            return backward_typed<__half>(s, rows, dim, rank, examples, sets, h, directions, source, values,
                                          example_index, example_set, mask, grad_out, grad_h, grad_directions,
                                          grad_values, error, error_len);
    }
}
