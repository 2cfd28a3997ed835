// CUDA cases through the public ABI. They SKIP (with a message) without a GPU, so this file
// compiles and runs everywhere without any CUDA header or library: the tests binary never links
// CUDA. Kernel-level correctness on a GPU (every kernel, schedule and dtype against the CPU path,
// determinism, NaN handling, compute-sanitizer) lives in benchmarks/gpu/check-and-bench.sh,
// which needs device memory, i.e. the CUDA runtime.
#include <cstdio>
#include <string>
#include <vector>

#include "cdas.h"
#include "harness.h"

namespace {

bool cuda_devices_or_skip() {
    int32_t count = 0;
    CHECK_STATUS(cdas_cuda_device_count(&count), CDAS_STATUS_OK);
    if (count == 0) {
        cdas_test::skip_current(std::string("no CUDA device (CUDA kernels ") +
                     ((cdas_build_features() & CDAS_FEATURE_CUDA) ? "built" : "not built") + ")");
        return false;
    }
    CHECK_MSG(cdas_build_features() & CDAS_FEATURE_CUDA, "a CUDA device is visible but CDAS_FEATURE_CUDA is not set");
    return true;
}

cdas_context* cuda_context(int32_t schedule) {
    cdas_context_options o;
    cdas_context_options_default(&o);
    o.device_type = CDAS_DEVICE_CUDA;
    o.jsd_schedule = schedule;
    cdas_context* ctx = nullptr;
    CHECK_STATUS(cdas_context_create(&o, &ctx), CDAS_STATUS_OK);
    return ctx;
}

}  // namespace

TEST(cuda_context_lifecycle) {
    if (!cuda_devices_or_skip()) return;
    for (int32_t schedule : {CDAS_JSD_SCHEDULE_AUTO, CDAS_JSD_SCHEDULE_CHUNKED}) {
        cdas_context* ctx = cuda_context(schedule);
        if (ctx == nullptr) return;
        int64_t bytes = -1;
        CHECK_STATUS(cdas_context_peak_workspace_bytes(ctx, &bytes), CDAS_STATUS_OK);
        CHECK(bytes == 0);
        CHECK_STATUS(cdas_context_synchronize(ctx), CDAS_STATUS_OK);
        CHECK_STATUS(cdas_context_destroy(ctx), CDAS_STATUS_OK);
    }
}

TEST(cuda_device_index_out_of_range) {
    if (!cuda_devices_or_skip()) return;
    int32_t count = 0;
    cdas_cuda_device_count(&count);
    cdas_context_options o;
    cdas_context_options_default(&o);
    o.device_type = CDAS_DEVICE_CUDA;
    o.device_index = count;
    cdas_context* ctx = nullptr;
    CHECK(cdas_context_create(&o, &ctx) != CDAS_STATUS_OK);
    CHECK(ctx == nullptr);
}

// Arguments are validated before anything reaches the device: a null pointer never becomes a
// device fault.
TEST(cuda_null_arguments_rejected_before_dispatch) {
    if (!cuda_devices_or_skip()) return;
    cdas_context* ctx = cuda_context(CDAS_JSD_SCHEDULE_AUTO);
    if (ctx == nullptr) return;
    CHECK_STATUS(cdas_dii_forward(ctx, CDAS_DTYPE_F32, 4, 3, 1, 1, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                                  nullptr, nullptr),
                 CDAS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cdas_lm_head_jsd(ctx, CDAS_DTYPE_BF16, 4, 8, 16, nullptr, nullptr, nullptr, 0.0f, nullptr, 1.0f,
                                  nullptr, nullptr, nullptr),
                 CDAS_STATUS_INVALID_ARGUMENT);
    CHECK_STATUS(cdas_context_destroy(ctx), CDAS_STATUS_OK);
}
