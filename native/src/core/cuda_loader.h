// Finds libcdas_cuda.so beside libcdas.so at run time, so a CPU-only machine never loads any
// CUDA library and one libcdas.so serves both.
#pragma once

#include "cuda/cuda_backend.h"

namespace cdas {

// The backend table, or nullptr when libcdas_cuda.so is absent or unusable; `why` then says why.
// Loaded once per process.
const cdas_cuda_backend* cuda_backend_load(const char** why);

}  // namespace cdas
