// cdas.h: context entry points.
#include "cdas.h"
#include "core/context.h"
#include "core/error.h"

extern "C" {

CDAS_API cdas_status cdas_context_options_default(cdas_context_options* options) {
    return cdas::abi_call("cdas_context_options_default", [&] {
        if (!options) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "options must not be NULL");
        *options = cdas_context_options{};
        options->device_type = CDAS_DEVICE_CPU;
        options->jsd_schedule = CDAS_JSD_SCHEDULE_AUTO;
    });
}

CDAS_API cdas_status cdas_context_create(const cdas_context_options* options, cdas_context** context) {
    return cdas::abi_call("cdas_context_create", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        *context = nullptr;
        if (!options) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "options must not be NULL");
        *context = cdas::context_create(*options).release();
    });
}

CDAS_API cdas_status cdas_context_destroy(cdas_context* context) {
    return cdas::abi_call("cdas_context_destroy", [&] { cdas::context_destroy(context); });
}

CDAS_API cdas_status cdas_context_peak_workspace_bytes(const cdas_context* context, int64_t* bytes) {
    return cdas::abi_call("cdas_context_peak_workspace_bytes", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        if (!bytes) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "bytes must not be NULL");
        *bytes = cdas::context_peak_workspace_bytes(*context);
    });
}

CDAS_API cdas_status cdas_context_synchronize(cdas_context* context) {
    return cdas::abi_call("cdas_context_synchronize", [&] {
        if (!context) cdas::fail(CDAS_STATUS_INVALID_ARGUMENT, "context must not be NULL");
        cdas::context_synchronize(*context);
    });
}

}  // extern "C"
