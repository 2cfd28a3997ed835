// cdas_build_info(): what this libcdas was built against (recorded by cmake/CdasTorchCuda.cmake)
// and what it finds at run time: the libtorch actually loaded, its CUDA, the CUDA driver and
// libcdas_cuda.so, and which kernels MKL uses on this CPU. Printed by `java -jar dist/cdas-native.jar version`.
#include <dlfcn.h>

#include <mutex>
#include <sstream>
#include <string>

#include "cdas.h"
#include "core/cuda_loader.h"
#include "cpu/cpu_features.h"
#include "cpu/malloc_tuning.h"
#include "cpu/mkl_dispatch.h"

#if __has_include(<ATen/Version.h>) && __has_include(<ATen/Context.h>)
#include <ATen/Context.h>
#include <ATen/Version.h>
#define CDAS_BUILD_INFO_TORCH 1
#endif

#ifndef CDAS_BUILT_TORCH_VERSION
#define CDAS_BUILT_TORCH_VERSION ""
#endif
#ifndef CDAS_BUILT_TORCH_CUDA
#define CDAS_BUILT_TORCH_CUDA ""
#endif
#ifndef CDAS_BUILT_TORCH_DIR
#define CDAS_BUILT_TORCH_DIR ""
#endif
#ifndef CDAS_BUILT_CUDA_KERNELS
#define CDAS_BUILT_CUDA_KERNELS "unknown"
#endif
#ifndef CDAS_BUILT_COMPILER
#define CDAS_BUILT_COMPILER "unknown"
#endif

namespace {

std::string object_path(const void* address) {
    Dl_info info{};
    if (address == nullptr || dladdr(address, &info) == 0 || info.dli_fname == nullptr) return "?";
    return info.dli_fname;
}

// The driver through libcuda.so.1 itself (no CUDA runtime, no libtorch): present on any machine
// with an NVIDIA driver, absent elsewhere.
struct driver_facts {
    bool found = false;
    int version = 0;
    int devices = -1;
    std::string why;
};

driver_facts query_driver() {
    driver_facts d;
    void* lib = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
    if (!lib) {
        const char* e = dlerror();
        d.why = std::string("libcuda.so.1 not found (") + (e ? e : "?") + ")";
        return d;
    }
    using get_version_fn = int (*)(int*);
    using init_fn = int (*)(unsigned);
    using get_count_fn = int (*)(int*);
    auto get_version = reinterpret_cast<get_version_fn>(dlsym(lib, "cuDriverGetVersion"));
    auto init = reinterpret_cast<init_fn>(dlsym(lib, "cuInit"));
    auto get_count = reinterpret_cast<get_count_fn>(dlsym(lib, "cuDeviceGetCount"));
    if (!get_version || !init || !get_count) {
        d.why = "libcuda.so.1 lacks cuDriverGetVersion/cuInit/cuDeviceGetCount";
        return d;
    }
    d.found = get_version(&d.version) == 0;
    int rc = init(0);
    if (rc != 0) {
        d.why = "cuInit failed with CUresult " + std::to_string(rc);
        d.devices = 0;
    } else if (get_count(&d.devices) != 0) {
        d.devices = 0;
    }
    return d;  // the handle stays open: the driver is process-wide anyway
}

std::string cuda_version_string(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }

#ifdef CDAS_BUILD_INFO_TORCH
// The loaded libtorch's own version: show_config() carries TORCH_VERSION=... in its build settings.
std::string field(const std::string& text, const std::string& key) {
    size_t at = text.find(key);
    if (at == std::string::npos) return "";
    at += key.size();
    size_t end = text.find_first_of(", \n)", at);
    return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}
#endif

std::string compose() {
    std::ostringstream out;
    const std::string built_torch = CDAS_BUILT_TORCH_VERSION;
    const std::string built_cuda = CDAS_BUILT_TORCH_CUDA;
    out << "built against torch: " << (built_torch.empty() ? "none" : built_torch) << " ("
        << (built_cuda.empty() ? "CPU only" : "CUDA " + built_cuda) << ")";
    if (*CDAS_BUILT_TORCH_DIR) out << " from " << CDAS_BUILT_TORCH_DIR;
    out << "\n";
    out << "built CUDA kernels: " << CDAS_BUILT_CUDA_KERNELS << "\n";
    out << "built with: " << CDAS_BUILT_COMPILER;
#ifdef _GLIBCXX_USE_CXX11_ABI
    out << ", _GLIBCXX_USE_CXX11_ABI=" << _GLIBCXX_USE_CXX11_ABI;
#endif
    out << "\n";

    const driver_facts driver = query_driver();
    if (driver.found) {
        out << "CUDA driver: " << cuda_version_string(driver.version) << ", " << driver.devices << " device(s)";
        if (!driver.why.empty()) out << " (" << driver.why << ")";
        out << "\n";
    } else {
        out << "CUDA driver: none (" << driver.why << ")\n";
    }

#ifdef CDAS_BUILD_INFO_TORCH
    std::string torch_line = "torch at run time: ";
    try {
        // show_config()'s build settings carry TORCH_VERSION=, USE_CUDA= and, in CUDA builds, CUDA_VERSION=.
        const std::string config = at::show_config();
        const std::string version = field(config, "TORCH_VERSION=");
        torch_line += (version.empty() ? "unknown version" : version) + " from " +
                      object_path(reinterpret_cast<const void*>(&at::show_config));
        std::string cuda = field(config, "CUDA_VERSION=");
        if (cuda.empty()) cuda = field(config, "CUDA Runtime ");
        const bool torch_cuda = field(config, "USE_CUDA=") == "1" || field(config, "USE_CUDA=") == "ON" || !cuda.empty();
        if (!torch_cuda) {
            torch_line += ", CPU only";
        } else {
            torch_line += ", CUDA " + (cuda.empty() ? std::string("(version unknown)") : cuda);
            // Asking a CUDA libtorch about devices without a driver only makes it warn.
            if (!driver.found || driver.devices <= 0)
                torch_line += ", no usable GPU";
            else if (at::hasCUDA())
                torch_line += ", " + std::to_string(at::getNumGPUs()) + " GPU(s) usable";
            else
                torch_line += ", CUDA not usable";
        }
    } catch (const std::exception& e) {
        torch_line += std::string("query failed: ") + e.what();
    }
    out << torch_line << "\n";
#else
    out << "torch at run time: not linked\n";
#endif
    out << cdas::cpu::mkl_dispatch_summary() << "\n";
    out << cdas::cpu::malloc_tuning_summary() << "\n";
    {
        // What Model.defaultDtype decides from (cdas_cpu_fast_matmul).
        const bool bf16 = cdas::cpu::cpu_fast_matmul(CDAS_DTYPE_BF16);
        const bool f16 = cdas::cpu::cpu_fast_matmul(CDAS_DTYPE_F16);
        out << "CPU half precision: bf16 " << (bf16 ? "vector kernels" : "scalar loops") << ", f16 "
            << (f16 ? "vector kernels" : "scalar loops");
        if (!bf16 || !f16) {
            out << " (on the CPU, a checkpoint in " << (!bf16 && !f16 ? "bf16 or f16" : !bf16 ? "bf16" : "f16")
                << " computes in f32 unless --dtype says otherwise)";
        }
        out << "\n";
    }

    const char* why = nullptr;
    const cdas_cuda_backend* backend = nullptr;
    try {
        backend = cdas::cuda_backend_load(&why);
    } catch (...) {
    }
    if (backend) {
        out << "libcdas_cuda.so: loaded from " << object_path(backend) << ", " << backend->device_count()
            << " device(s)\n";
    } else {
        out << "libcdas_cuda.so: not loaded (" << (why && *why ? why : "unknown reason") << ")\n";
    }
    return out.str();
}

}  // namespace

extern "C" CDAS_API const char* cdas_build_info(void) {
    static std::once_flag once;
    static std::string info;
    std::call_once(once, [] {
        try {
            info = compose();
        } catch (...) {
            info = "build info unavailable\n";
        }
    });
    return info.c_str();
}

#ifndef CDAS_HEADER_SHA256
#error "CDAS_HEADER_SHA256 (the digest of native/include/cdas.h) is set by CMakeLists.txt"
#endif

extern "C" CDAS_API const char* cdas_header_sha256(void) { return CDAS_HEADER_SHA256; }
