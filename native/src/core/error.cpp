#include "core/error.h"

#include <new>

#ifdef CDAS_WITH_TORCH
#include <c10/util/Exception.h>
#endif

namespace cdas {

namespace {
thread_local std::string last_error_message;
}

void last_error_set(const std::string& message) {
    try {
        last_error_message = message;
    } catch (...) {
        last_error_message.clear();
    }
}

void last_error_clear() { last_error_message.clear(); }

const char* last_error_get() { return last_error_message.c_str(); }

cdas_status status_from_current_exception(std::string& message) {
    try {
        throw;
    } catch (const error& e) {
        message = e.what();
        return e.status();
    } catch (const std::bad_alloc&) {
        message = "out of memory";
        return CDAS_STATUS_OUT_OF_MEMORY;
#ifdef CDAS_WITH_TORCH
    } catch (const c10::OutOfMemoryError& e) {
        message = std::string("out of memory: ") + e.what_without_backtrace();
        return CDAS_STATUS_OUT_OF_MEMORY;
    } catch (const c10::Error& e) {
        message = e.what_without_backtrace();
        // The CPU allocator reports a failed allocation as a plain c10::Error.
        if (message.find("can't allocate memory") != std::string::npos ||
            message.find("out of memory") != std::string::npos)
            return CDAS_STATUS_OUT_OF_MEMORY;
        message = "libtorch error: " + message;
        return CDAS_STATUS_INTERNAL;
#endif
    } catch (const std::exception& e) {
        message = std::string("internal error: ") + e.what();
        return CDAS_STATUS_INTERNAL;
    } catch (...) {
        message = "internal error: unknown exception";
        return CDAS_STATUS_INTERNAL;
    }
}

}  // namespace cdas
