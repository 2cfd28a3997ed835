/*
 * cdas.h - the one public C ABI of cdas-native.
 *
 * Conventions (see ../shared/docs/DESIGN.md section 3):
 *   - every function returns a cdas_status; CDAS_STATUS_OK is 0;
 *   - on failure cdas_last_error() (thread-local) explains it in one line;
 *   - no C++ exception, exit or abort ever leaves a function of this header;
 *   - handles come from cdas_<thing>_create and are released by cdas_<thing>_destroy;
 *   - all output buffers are owned by the caller; sizes are int64_t element counts;
 *   - matrices are dense and row-major; "dtype" buffers hold CDAS_DTYPE_* elements,
 *     everything named fp32 is float, accumulation is always fp32 or wider;
 *   - with a CUDA context every data pointer is a device pointer of that context's device.
 */
#ifndef CDAS_H
#define CDAS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CDAS_BUILDING_LIBRARY)
#define CDAS_API __attribute__((visibility("default")))
#else
#define CDAS_API
#endif

#define CDAS_VERSION_MAJOR 0
#define CDAS_VERSION_MINOR 1
#define CDAS_VERSION_PATCH 0

typedef enum cdas_status {
    CDAS_STATUS_OK = 0,
    CDAS_STATUS_INVALID_ARGUMENT = 1, /* null pointer, size <= 0, mismatched shape, bad enum */
    CDAS_STATUS_NON_FINITE = 2,       /* NaN or infinity in an input */
    CDAS_STATUS_OUT_OF_MEMORY = 3,
    CDAS_STATUS_UNSUPPORTED = 4,      /* feature not built in (e.g. CUDA) or dtype not handled */
    CDAS_STATUS_DEVICE_ERROR = 5,     /* CUDA runtime or cuBLAS failure */
    CDAS_STATUS_IO_ERROR = 6,         /* file missing, truncated or malformed */
    CDAS_STATUS_INTERNAL = 7          /* a bug: anything else caught at the boundary */
} cdas_status;

typedef enum cdas_dtype {
    CDAS_DTYPE_F32 = 0,
    CDAS_DTYPE_BF16 = 1,
    CDAS_DTYPE_F16 = 2
} cdas_dtype;

typedef enum cdas_device_type {
    CDAS_DEVICE_CPU = 0,
    CDAS_DEVICE_CUDA = 1
} cdas_device_type;

/* How cdas_lm_head_jsd walks the T x V logits (DESIGN.md section 2). */
typedef enum cdas_jsd_schedule {
    CDAS_JSD_SCHEDULE_AUTO = 0,
    /* Token chunks; the chunk's fp32 logits live in a workspace; 3 head products (2 logits, dx). */
    CDAS_JSD_SCHEDULE_CHUNKED = 1,
    /* Vocabulary tiles with online log-sum-exp; logits are never stored: pass 1 both
     * log-sum-exps, pass 2 recomputes the logits and accumulates the loss and
     * dx = (A - S B) / 2 with A = sum_j Q_j r_j c_j W_j, B = sum_j Q_j c_j W_j, S = sum_j Q_j r_j
     * (c_j the soft-cap derivative, 1 without soft-cap); 6 head products. */
    CDAS_JSD_SCHEDULE_FUSED = 2
} cdas_jsd_schedule;

/* Bits of cdas_build_features(). */
typedef enum cdas_feature {
    CDAS_FEATURE_TORCH = 1,   /* libtorch runtime linked in */
    CDAS_FEATURE_CUDA = 2     /* CUDA kernels built (a GPU may still be absent) */
} cdas_feature;

/* ---- library ---------------------------------------------------------------------------- */

/* Message of the last failed call on this thread; never NULL, "" after success. */
CDAS_API const char* cdas_last_error(void);

/* CDAS_VERSION_MAJOR * 10000 + CDAS_VERSION_MINOR * 100 + CDAS_VERSION_PATCH. */
CDAS_API int32_t cdas_version(void);

/* Bitwise OR of cdas_feature values. */
CDAS_API uint32_t cdas_build_features(void);

/* Number of usable CUDA devices (0 without CUDA support or without a GPU). */
CDAS_API cdas_status cdas_cuda_device_count(int32_t* count);

/* ---- context ------------------------------------------------------------------------------ */

/* Where the kernels run and the scratch memory they reuse between calls. */
typedef struct cdas_context cdas_context;

typedef struct cdas_context_options {
    int32_t device_type;  /* cdas_device_type */
    int32_t device_index; /* CUDA ordinal; 0 for CPU */
    int32_t num_threads;  /* CPU worker threads; 0 = all available cores */
    int32_t chunk_rows;   /* token rows per LM-head chunk; 0 = automatic */
    int32_t jsd_schedule; /* cdas_jsd_schedule */
    void* cuda_stream;    /* cudaStream_t to run on; NULL = the default stream */
} cdas_context_options;

/* Fills *options with defaults: CPU, all cores, automatic chunking. */
CDAS_API cdas_status cdas_context_options_default(cdas_context_options* options);

CDAS_API cdas_status cdas_context_create(const cdas_context_options* options, cdas_context** context);

/* Accepts NULL. */
CDAS_API cdas_status cdas_context_destroy(cdas_context* context);

/* High-water mark, in bytes, of the scratch memory the context has held. */
CDAS_API cdas_status cdas_context_peak_workspace_bytes(const cdas_context* context, int64_t* bytes);

/* Blocks until all work queued on the context has finished (no-op on CPU). */
CDAS_API cdas_status cdas_context_synchronize(cdas_context* context);

/* ---- DII: the rank-r distributed interchange intervention ---------------------------------------
 *
 *   Phi(h; a) = h + W^T (a - W h)          (rank 1: h + (a - w.h) w)
 *
 *   T rows of hidden states h [T x d] (dtype), directions W [r x d] (fp32),
 *   B examples; row t belongs to example example_index[t] in [0, B).
 *   mask [T] (uint8, NULL = every row): rows with mask 0 pass through unchanged.
 *   The clamp value of example e is either
 *     - taken from a source hidden state:  a_e = W s_e,   source [B x d] (dtype), values NULL, or
 *     - given directly:                    values [B x r] (fp32),             source NULL.
 */

/* h_out [T x d] (dtype; may alias h). source_values_out [B x r] (fp32, nullable) receives a. */
CDAS_API cdas_status cdas_dii_forward(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask,
    void* h_out, float* source_values_out);

/*
 * Backward of cdas_dii_forward with upstream gradient grad_out = dL/dh' [T x d] (dtype):
 *   dL/dh   = g - W^T W g                                   (masked rows; others: g)
 *   dL/da_e = sum_{t in e} W g_t
 *   dL/dW   = sum_t [ (a_e - W h_t) g_t^T + (W g_t)(s_e - h_t)^T ]   (the s_e term only with a source)
 * grad_h [T x d] (dtype), grad_directions [r x d] (fp32, overwritten, deterministic reduction),
 * grad_values [B x r] (fp32); each output is nullable (not computed).
 */
CDAS_API cdas_status cdas_dii_backward(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const uint8_t* mask, const void* grad_out,
    void* grad_h, float* grad_directions, float* grad_values);

/* ---- LM head (+ soft-cap) + Jensen-Shannon divergence over the vocabulary ----------------------
 *
 *   z = x W^T  (W = head [V x d], frozen), optional soft-cap z <- c tanh(z / c) when softcap > 0,
 *   Q = softmax(z_student), P = softmax(z_teacher) (detached), M = (P + Q) / 2,
 *   JSD_t = KL(P||M)/2 + KL(Q||M)/2  (natural log, in [0, ln 2]),
 *   loss = mean of JSD_t over rows with mask != 0 (mask NULL = all rows; no rows -> loss 0).
 *
 * x_student, x_teacher [T x d] (dtype), head [V x d] (dtype).
 * loss_out: one fp32 (required). row_loss_out [T] (fp32, nullable): per-row JSD, 0 on masked rows.
 * grad_student_out [T x d] (fp32, nullable: forward only) receives grad_scale * dloss/dx_student;
 * grad_scale is the upstream gradient of the loss. The T x V logits never exist in full: extra
 * memory is O(chunk_rows x V).
 */
CDAS_API cdas_status cdas_lm_head_jsd(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t vocab,
    const void* x_student, const void* x_teacher, const void* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out);

/* ---- baselines composed from libtorch operations (CPU, fp32; for benchmarks and cross-checks) ----
 *
 * The same math written the way PyTorch users write it: logits = x W^T, log_softmax, kl_div,
 * autograd for the gradient. Same arguments and outputs as the fused versions (fp32 only).
 * CDAS_STATUS_UNSUPPORTED when built without libtorch.
 */
CDAS_API cdas_status cdas_baseline_lm_head_jsd_torch(
    int64_t rows, int64_t dim, int64_t vocab,
    const float* x_student, const float* x_teacher, const float* head, float softcap,
    const uint8_t* mask, float grad_scale,
    float* loss_out, float* row_loss_out, float* grad_student_out);

CDAS_API cdas_status cdas_baseline_dii_torch(
    int64_t rows, int64_t dim, int64_t rank, int64_t examples,
    const float* h, const float* directions, const float* source,
    const int32_t* example_index, const uint8_t* mask, const float* grad_out,
    float* h_out, float* grad_h, float* grad_directions);

#ifdef __cplusplus
}
#endif

#endif /* CDAS_H */
