/*
 * Internal interface between libcdas.so and libcdas_cuda.so (not part of the public ABI).
 *
 * libcdas.so validates every argument (null pointers, sizes, enums) and then dispatches a CUDA
 * context's calls through this table, which it gets by dlopen("libcdas_cuda.so") from its own
 * directory and dlsym("cdas_cuda_backend_get"). A CPU-only machine never loads any CUDA library.
 * With check_inputs set at state_create, device data is checked for NaN/infinity on the device
 * before each operation (CDAS_STATUS_NON_FINITE; this waits for the check); otherwise nothing
 * synchronises and non-finite inputs give non-finite outputs. Errors that only the kernels can
 * see (an example index out of range) set a device flag that synchronize reports.
 * Every function fills error[0..error_len) with a one-line message when it fails and never throws.
 */
#ifndef CDAS_CUDA_BACKEND_H
#define CDAS_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "cdas.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CDAS_CUDA_BACKEND_ABI_VERSION 3

/* Per-context device state: device ordinal, stream, cuBLAS handle, reusable workspace. */
typedef struct cdas_cuda_state cdas_cuda_state;

typedef struct cdas_cuda_backend {
    int32_t abi_version; /* CDAS_CUDA_BACKEND_ABI_VERSION */
    /* 0 when there is no driver or no GPU; never fails. */
    int32_t (*device_count)(void);
    cdas_status (*state_create)(int32_t device_index, void* stream, int32_t check_inputs, cdas_cuda_state** state,
                                char* error, size_t error_len);
    void (*state_destroy)(cdas_cuda_state* state);
    int64_t (*peak_workspace_bytes)(const cdas_cuda_state* state);
    /* Waits for the state's stream, then reports (and clears) the device error flag: a call since
     * the last synchronize met an example index out of range (CDAS_STATUS_INVALID_ARGUMENT). */
    cdas_status (*synchronize)(cdas_cuda_state* state, char* error, size_t error_len);

    /* sets, example_set: cdas_dii_forward_sets (example_set NULL: one set). */
    cdas_status (*dii_forward)(
        cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
        const void* h, const float* directions, const void* source, const float* values,
        const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
        void* h_out, float* source_values_out, char* error, size_t error_len);

    cdas_status (*dii_backward)(
        cdas_cuda_state* state, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
        const void* h, const float* directions, const void* source, const float* values,
        const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out,
        void* grad_h, float* grad_directions, float* grad_values, char* error, size_t error_len);

    cdas_status (*lm_head_jsd)(
        cdas_cuda_state* state, int32_t schedule, int32_t chunk_rows,
        int32_t dtype, int64_t rows, int64_t dim, int64_t vocab,
        const void* x_student, const void* x_teacher, const void* head, float softcap,
        const uint8_t* mask, float grad_scale,
        float* loss_out, float* row_loss_out, float* grad_student_out, char* error, size_t error_len);

    /* Later operations run on `stream` (cuBLAS included). Never blocks the host: when the stream
     * changes, the new stream waits (cudaStreamWaitEvent) for the work already queued on the old
     * one, which may still use the state's workspace. */
    cdas_status (*set_stream)(cdas_cuda_state* state, void* stream, char* error, size_t error_len);

    /* Free and total bytes of a device (cudaMemGetInfo): the layer split's automatic placement. */
    cdas_status (*memory_info)(int32_t device_index, int64_t* free_bytes, int64_t* total_bytes, char* error,
                               size_t error_len);
} cdas_cuda_backend;

/* The one symbol libcdas_cuda.so exports. */
typedef const cdas_cuda_backend* (*cdas_cuda_backend_get_fn)(void);
const cdas_cuda_backend* cdas_cuda_backend_get(void);

#ifdef __cplusplus
}
#endif

#endif /* CDAS_CUDA_BACKEND_H */
