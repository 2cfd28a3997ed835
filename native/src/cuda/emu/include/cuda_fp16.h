/* cdas CUDA emulation: stands in for the CUDA toolkit's <cuda_fp16.h> (see ../cuda_emu.h). */
#pragma once
#include "../cuda_emu.h"
