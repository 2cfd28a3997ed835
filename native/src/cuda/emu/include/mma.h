/*
 * cdas CUDA emulation: stands in for <mma.h> (nvcuda::wmma), 16x16x16 fragments only.
 *
 * A fragment holds 8 elements per lane (256 per warp). Which matrix element each (lane, slot)
 * holds is a seeded permutation per fragment kind (matrix_a, matrix_b, accumulator and their
 * layouts), different from any real GPU's and from one seed to another: code that only loads,
 * stores, fills and multiplies fragments gets the right answer; code that reads or writes
 * fragment elements assuming a position gets a wrong one. load/store/mma are warp collectives:
 * all 32 lanes must arrive with the same pointer, leading dimension and layout; the pointer must
 * be 32-byte aligned and the leading dimension a multiple of 16 bytes, as the CUDA guide demands.
 */
#pragma once
#include "../cuda_emu.h"

namespace cdas_emu {
// Slot -> element (row * 16 + column) for fragment kind `kind` (0..5), length 256.
CDAS_EMU_API const uint16_t* wmma_mapping(int kind);

struct WmmaArg {
    void* fragment;      // this lane's elements (8)
    const void* other1;  // mma: a fragment
    const void* other2;  // mma: b fragment
    const void* other3;  // mma: c fragment
    void* memory;        // load/store pointer
    unsigned ldm;
    int layout;          // 0 row-major, 1 column-major
    int element;         // 0 f32, 1 f16, 2 bf16
    int kind;            // mapping kind of `fragment`
    int kind_a, kind_b, kind_c;  // mma: mapping kinds of the operands
};
CDAS_EMU_API void wmma_load_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void wmma_store_complete(void* const* args, unsigned mask, const char* what);
CDAS_EMU_API void wmma_mma_complete(void* const* args, unsigned mask, const char* what);
}  // namespace cdas_emu

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

namespace detail {
template <class T>
struct element_code;
template <>
struct element_code<float> { static constexpr int value = 0; };
template <>
struct element_code<__half> { static constexpr int value = 1; };
template <>
struct element_code<__nv_bfloat16> { static constexpr int value = 2; };
template <class Use, class Layout>
struct kind_of;
template <>
struct kind_of<matrix_a, row_major> { static constexpr int value = 0; };
template <>
struct kind_of<matrix_a, col_major> { static constexpr int value = 1; };
template <>
struct kind_of<matrix_b, row_major> { static constexpr int value = 2; };
template <>
struct kind_of<matrix_b, col_major> { static constexpr int value = 3; };
template <>
struct kind_of<accumulator, void> { static constexpr int value = 4; };
template <class Layout>
struct layout_code { static constexpr int value = 0; };
template <>
struct layout_code<col_major> { static constexpr int value = 1; };
}  // namespace detail

template <class Use, int M, int N, int K, class T, class Layout = void>
class fragment {
    static_assert(M == 16 && N == 16 && K == 16, "the CUDA emulation implements 16x16x16 WMMA fragments");

  public:
    typedef T element_type;
    enum { num_elements = 8 };
    T x[num_elements];
};

inline float to_element(float v, float*) { return v; }
inline __half to_element(float v, __half*) { return __float2half_rn(v); }
inline __nv_bfloat16 to_element(float v, __nv_bfloat16*) { return __float2bfloat16_rn(v); }

template <class Use, int M, int N, int K, class T, class Layout, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, const V& v) {
    for (int i = 0; i < f.num_elements; ++i) f.x[i] = to_element(static_cast<float>(v), static_cast<T*>(nullptr));
}

// matrix_a / matrix_b: the layout is part of the fragment type.
template <class Use, class T, class Layout>
inline void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm,
                             const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::cdas_emu::WmmaArg a{};
    a.fragment = f.x;
    a.memory = const_cast<T*>(p);
    a.ldm = ldm;
    a.layout = detail::layout_code<Layout>::value;
    a.element = detail::element_code<T>::value;
    a.kind = detail::kind_of<Use, Layout>::value;
    ::cdas_emu::warp_collective(::cdas_emu::kWmmaLoad, 0xffffffffu, &a, &::cdas_emu::wmma_load_complete,
                                "wmma::load_matrix_sync", file, line);
}
// The arguments of an accumulator load or store: fp32 elements, the memory layout given per call.
inline ::cdas_emu::WmmaArg accumulator_arg(const float* fragment, const float* memory, unsigned ldm, layout_t layout) {
    ::cdas_emu::WmmaArg a{};
    a.fragment = const_cast<float*>(fragment);
    a.memory = const_cast<float*>(memory);
    a.ldm = ldm;
    a.layout = layout == mem_col_major ? 1 : 0;
    a.element = 0;
    a.kind = 4;
    return a;
}
inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm, layout_t layout,
                             const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::cdas_emu::WmmaArg a = accumulator_arg(f.x, p, ldm, layout);
    ::cdas_emu::warp_collective(::cdas_emu::kWmmaLoad, 0xffffffffu, &a, &::cdas_emu::wmma_load_complete,
                                "wmma::load_matrix_sync", file, line);
}
inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm, layout_t layout,
                              const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::cdas_emu::WmmaArg a = accumulator_arg(f.x, p, ldm, layout);
    ::cdas_emu::warp_collective(::cdas_emu::kWmmaStore, 0xffffffffu, &a, &::cdas_emu::wmma_store_complete,
                                "wmma::store_matrix_sync", file, line);
}
template <class T, class LA, class LB>
inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LA>& a,
                     const fragment<matrix_b, 16, 16, 16, T, LB>& b, const fragment<accumulator, 16, 16, 16, float>& c,
                     const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
    ::cdas_emu::WmmaArg arg{};
    arg.fragment = d.x;
    arg.other1 = a.x;
    arg.other2 = b.x;
    arg.other3 = c.x;
    arg.element = detail::element_code<T>::value;
    arg.kind = 4;
    arg.kind_a = detail::kind_of<matrix_a, LA>::value;
    arg.kind_b = detail::kind_of<matrix_b, LB>::value;
    arg.kind_c = 4;
    ::cdas_emu::warp_collective(::cdas_emu::kWmmaMma, 0xffffffffu, &arg, &::cdas_emu::wmma_mma_complete,
                                "wmma::mma_sync", file, line);
}

}  // namespace wmma
}  // namespace nvcuda
