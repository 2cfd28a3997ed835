// cdas.h: the library-level entry points.
#include "cdas.h"
#include "core/cuda_loader.h"
#include "core/error.h"

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

}  // extern "C"
