// cdas_dist_* for a libcdas built with CDAS_WITH_TORCH=OFF: the process groups are libtorch's
// c10d, so each entry point answers CDAS_STATUS_UNSUPPORTED with the reason as the last error.
#include "cdas.h"
#include "core/error.h"

namespace {

cdas_status unsupported(const char* function) {
    return cdas::abi_call(function, [&] {
        cdas::fail(CDAS_STATUS_UNSUPPORTED,
                   "this libcdas was built without libtorch (CMake option CDAS_WITH_TORCH=OFF), whose c10d process "
                   "groups data-parallel training uses; rebuild with CDAS_WITH_TORCH=ON");
    });
}

}  // namespace

extern "C" {

CDAS_API cdas_status cdas_dist_create(const cdas_dist_options*, cdas_dist** dist) {
    if (dist) *dist = nullptr;
    return unsupported("cdas_dist_create");
}

// Accepts NULL, like the real one; no group can exist in this build.
CDAS_API cdas_status cdas_dist_destroy(cdas_dist* dist) {
    if (!dist) return cdas::abi_call("cdas_dist_destroy", [] {});
    return unsupported("cdas_dist_destroy");
}

CDAS_API cdas_status cdas_dist_rank(const cdas_dist*, int32_t*, int32_t*) { return unsupported("cdas_dist_rank"); }

CDAS_API cdas_status cdas_dist_all_reduce_sum(cdas_dist*, float*, int64_t) {
    return unsupported("cdas_dist_all_reduce_sum");
}

CDAS_API cdas_status cdas_dist_barrier(cdas_dist*) { return unsupported("cdas_dist_barrier"); }

}  // extern "C"
