/* cdas CUDA emulation: stands in for the CUDA toolkit's <cuda.h> (see ../cuda_emu.h). */
#pragma once
#include "../cuda_emu.h"
