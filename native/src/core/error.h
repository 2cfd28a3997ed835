// Errors inside libcdas are C++ exceptions carrying a cdas_status; at the C ABI every entry point
// runs its body through abi_call(), which turns any exception into a status and the thread-local
// message of cdas_last_error(). Nothing is thrown across the ABI.
#pragma once

#include <stdexcept>
#include <string>

#include "cdas.h"

namespace cdas {

class error : public std::runtime_error {
public:
    error(cdas_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
    cdas_status status() const { return status_; }

private:
    cdas_status status_;
};

[[noreturn]] inline void fail(cdas_status status, const std::string& message) { throw error(status, message); }

void last_error_set(const std::string& message);
void last_error_clear();

// Status and message for whatever is in flight in a catch(...) block.
cdas_status status_from_current_exception(std::string& message);

// Runs body() (returning void) for the entry point `function`: OK with the last error cleared,
// or the status of what it threw, with "function: message" as the last error.
template <class Body>
cdas_status abi_call(const char* function, Body&& body) noexcept {
    try {
        body();
        last_error_clear();
        return CDAS_STATUS_OK;
    } catch (...) {
        std::string message;
        cdas_status status = status_from_current_exception(message);
        try {
            last_error_set(std::string(function) + ": " + message);
        } catch (...) {
            last_error_set("");  // out of memory for the message itself
        }
        return status;
    }
}

}  // namespace cdas
