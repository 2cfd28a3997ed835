// cdas.h: the library-level entry points.
#include "cdas.h"
#include "core/cuda_loader.h"
#include "core/error.h"
#include "cpu/cpu_features.h"

#include <string>

namespace cdas {
const char* last_error_get();
}

extern "C" {

CDAS_API const char* cdas_last_error(void) { return cdas::last_error_get(); }

CDAS_API int32_t cdas_version(void) {
    return CDAS_VERSION_MAJOR * 10000 + CDAS_VERSION_MINOR * 100 + CDAS_VERSION_PATCH;
}

CDAS_API uint32_t cdas_build_features(void) {
#ifdef CDAS_WITH_TORCH
    uint32_t features = CDAS_FEATURE_TORCH;
#else
    uint32_t features = 0;  // built with CDAS_WITH_TORCH=OFF: kernels and their C API only
#endif
    try {
        if (cdas::cuda_backend_load(nullptr)) features |= CDAS_FEATURE_CUDA;
    } catch (...) {
    }
    return features;
}

CDAS_API cdas_status cdas_cuda_device_count(int32_t* count) {
    return cdas::abi_call("cdas_cuda_device_count", [&] {
        if (!count) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "count must not be NULL");
        const cdas_cuda_backend* backend = cdas::cuda_backend_load(nullptr);
        *count = backend ? backend->device_count() : 0;
    });
}

CDAS_API cdas_status cdas_cpu_fast_matmul(cdas_dtype dtype, int32_t* fast) {
    return cdas::abi_call("cdas_cpu_fast_matmul", [&] {
        if (!fast) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "fast must not be NULL");
        if (dtype != CDAS_DTYPE_F32 && dtype != CDAS_DTYPE_BF16 && dtype != CDAS_DTYPE_F16)
            cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "dtype must be CDAS_DTYPE_F32, CDAS_DTYPE_BF16 or CDAS_DTYPE_F16, got " +
                                                     std::to_string(static_cast<int>(dtype)));
        *fast = cdas::cpu::cpu_fast_matmul(dtype) ? 1 : 0;
    });
}

}  // extern "C"
