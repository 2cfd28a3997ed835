#include "core/cuda_loader.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <string>

namespace cdas {

namespace {

std::once_flag load_once;
const cdas_cuda_backend* loaded = nullptr;
std::string load_error;

std::string own_directory() {
    Dl_info info{};
    if (dladdr(reinterpret_cast<const void*>(&cuda_backend_load), &info) == 0 || !info.dli_fname) return "";
    std::string path = info.dli_fname;
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

void load() {
    std::string dir = own_directory();
    // CDAS_CUDA_BACKEND=emulated: the CPU emulation of the same kernels (tests; see
    // native/src/cuda/emu), whose "device" memory is its own emulated cudaMalloc.
    const char* choice = std::getenv("CDAS_CUDA_BACKEND");
    const bool emulated = choice != nullptr && std::string(choice) == "emulated";
    if (choice != nullptr && *choice != '\0' && !emulated && std::string(choice) != "cuda") {
        load_error = std::string("CDAS_CUDA_BACKEND must be 'cuda' or 'emulated', got '") + choice + "'";
        return;
    }
    std::string path = (dir.empty() ? std::string() : dir + "/") + (emulated ? "libcdas_cuda_emu.so" : "libcdas_cuda.so");
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char* why = dlerror();
        std::string reason = why ? why : "unknown";
        if (access(path.c_str(), F_OK) != 0) {
            load_error = "CUDA backend not available: cannot load " + path + " (" + reason +
                         "); this libcdas was built or installed without CUDA kernels";
        } else {
            // Present but not loadable: usually cuBLAS (or the driver) not found by its soname.
            load_error = "CUDA backend not available: cannot load " + path + " (" + reason +
                         "); it needs the NVIDIA driver and cuBLAS, found beside it, on LD_LIBRARY_PATH or "
                         "in the system's library folders";
        }
        return;
    }
    auto get = reinterpret_cast<cdas_cuda_backend_get_fn>(dlsym(handle, "cdas_cuda_backend_get"));
    if (!get) {
        load_error = path + " does not export cdas_cuda_backend_get";
        return;  // keep the handle: unloading a half-initialised CUDA library is not worth the risk
    }
    const cdas_cuda_backend* table = get();
    if (!table || table->abi_version != CDAS_CUDA_BACKEND_ABI_VERSION) {
        load_error = path + " has backend ABI version " + (table ? std::to_string(table->abi_version) : "none") +
                     ", expected " + std::to_string(CDAS_CUDA_BACKEND_ABI_VERSION) + " (mismatched builds)";
        return;
    }
    loaded = table;
}

}  // namespace

const cdas_cuda_backend* cuda_backend_load(const char** why) {
    std::call_once(load_once, load);
    if (why) *why = load_error.c_str();
    return loaded;
}

}  // namespace cdas
