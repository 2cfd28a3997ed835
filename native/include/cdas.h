/*
 * cdas.h - the one public C ABI of cdas-native.
 *
 * Conventions (see docs/method.md section 3):
 *   - every function returns a cdas_status; CDAS_STATUS_OK is 0;
 *   - on failure cdas_last_error() (thread-local) explains it in one line;
 *   - no C++ exception, exit or abort ever leaves a function of this header;
 *   - handles come from cdas_<thing>_create and are released by cdas_<thing>_destroy;
 *   - all output buffers are owned by the caller; sizes are int64_t element counts;
 *   - matrices are dense and row-major; "dtype" buffers hold CDAS_DTYPE_* elements,
 *     everything named fp32 is float, accumulation is always fp32 or wider;
 *   - with a CUDA context every data pointer is a device pointer of that context's device
 *     (the cdas_model functions differ: their buffers are host memory on every device).
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

/* How cdas_lm_head_jsd walks the T x V logits (docs/method.md section 2). There is one schedule;
 * the enum stays so that a future one can be added without changing the options struct. Value 2
 * (FUSED, vocabulary tiles recomputed per pass) was removed in 0.1: it needed 6-7 head products
 * against this schedule's 3 (the arithmetic is in native/src/cuda/lm_head_jsd.cu); it is refused
 * with CDAS_STATUS_INVALID_ARGUMENT. */
typedef enum cdas_jsd_schedule {
    CDAS_JSD_SCHEDULE_AUTO = 0,
    /* Token chunks; the chunk's fp32 logits live in a workspace; 3 head products (2 logits, dx).
     * CUDA: the chunk's student and teacher rows stacked into one logits GEMM, the row kernel on a
     * second stream while the next chunk's GEMM runs, automatic chunks within 1 GiB of workspace. */
    CDAS_JSD_SCHEDULE_CHUNKED = 1
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

/* *fast = 1 when libtorch multiplies matrices of `dtype` on this CPU with vector kernels, 0 when it
 * falls back to scalar loops (many times slower): F32 always; BF16 with AVX-512 (F, DQ, BW, VL) or
 * AVX-NE-CONVERT; F16 with AVX512-FP16 or AVX-NE-CONVERT (each with the OS saving the registers).
 * A model on the CPU given no dtype computes in F32 where its checkpoint's dtype is not fast. */
CDAS_API cdas_status cdas_cpu_fast_matmul(cdas_dtype dtype, int32_t* fast);

/* ---- context ------------------------------------------------------------------------------ */

/* Where the kernels run and the scratch memory they reuse between calls. */
typedef struct cdas_context cdas_context;

/* Fields are only ever appended; zero always means the default. */
typedef struct cdas_context_options {
    int32_t device_type;  /* cdas_device_type */
    int32_t device_index; /* CUDA ordinal; 0 for CPU */
    int32_t num_threads;  /* CPU worker threads; 0 = all available cores */
    int32_t chunk_rows;   /* token rows per LM-head chunk; 0 = automatic */
    int32_t jsd_schedule; /* cdas_jsd_schedule */
    void* cuda_stream;    /* cudaStream_t to run on; NULL = the default stream */
    /* CUDA: nonzero scans every data input for NaN/infinity on the device before each call and
     * waits for the result (CDAS_STATUS_NON_FINITE naming the argument; example indices out of
     * range give CDAS_STATUS_INVALID_ARGUMENT), one host synchronisation per call. 0 (default):
     * no scan and no synchronisation; non-finite inputs give non-finite outputs, and an example
     * index out of range is reported by the next cdas_context_synchronize (INVALID_ARGUMENT; the
     * affected rows' outputs are NaN, nothing is read out of bounds).
     * CPU contexts always check their inputs, whatever this says. */
    int32_t check_inputs;
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

/*
 * Several direction sets in one call (concept packing): directions [sets x r x d] (fp32) holds one
 * W per set, and example e is clamped with set example_set[e] in [0, sets) (int32 [B], device
 * memory like example_index; NULL only when sets = 1): its rows get Phi with that set's W, and
 * a_e = W_set s_e when a source is given. grad_directions is [sets x r x d]: block k sums the rows
 * of set k's examples only, the gradient a call with those examples alone would give (up to the
 * order of the reduction's sums). Everything else as cdas_dii_forward / cdas_dii_backward, which
 * are these with sets = 1.
 */
CDAS_API cdas_status cdas_dii_forward_sets(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask,
    void* h_out, float* source_values_out);

CDAS_API cdas_status cdas_dii_backward_sets(
    cdas_context* context, int32_t dtype, int64_t rows, int64_t dim, int64_t rank, int64_t examples, int64_t sets,
    const void* h, const float* directions, const void* source, const float* values,
    const int32_t* example_index, const int32_t* example_set, const uint8_t* mask, const void* grad_out,
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

/* ---- model runtime: Hugging Face decoder checkpoints on libtorch --------------------------------
 *
 * A cdas_model is one decoder (Llama 3.x, Gemma-2, Qwen2, Phi-3 or GPT-2) built from a normalised
 * config and the checkpoint's tensors; it computes what transformers computes for the same
 * checkpoint. Tokens, masks and every output of the model functions are HOST memory whatever the
 * model's device (the model copies to and from its device).
 *
 * Sequences: a batch is [B x T] int32 token ids with a uint8 attention mask (1 = real token). The
 * real tokens of a row must be one contiguous run (left padding for generation; left or right
 * padding elsewhere). Positions count from the row's first real token, so a padded row computes
 * exactly what the same tokens compute alone. Outputs at padding positions are written as 0.
 *
 * Layers: block L's output is h_L, transformers' hidden_states[L + 1] (for L < N - 1).
 */

typedef enum cdas_model_family {
    CDAS_MODEL_FAMILY_LLAMA = 0,  /* LlamaForCausalLM: RMSNorm, SwiGLU, RoPE (llama3 scaling), GQA */
    CDAS_MODEL_FAMILY_GEMMA2 = 1, /* Gemma2ForCausalLM: (1 + w) RMSNorm, pre/post norms, soft-caps, sliding window */
    CDAS_MODEL_FAMILY_QWEN2 = 2,  /* Qwen2ForCausalLM: Llama with q/k/v biases */
    CDAS_MODEL_FAMILY_PHI3 = 3,   /* Phi3ForCausalLM: fused qkv_proj and gate_up_proj, longrope */
    CDAS_MODEL_FAMILY_GPT2 = 4    /* GPT2LMHeadModel: learned positions, LayerNorm, Conv1D [in, out] weights */
} cdas_model_family;

/* The MLP's activation, as transformers' ACT2FN names it. */
typedef enum cdas_activation {
    CDAS_ACTIVATION_SILU = 0,      /* silu / swish */
    CDAS_ACTIVATION_GELU_TANH = 1, /* gelu_pytorch_tanh: torch gelu(approximate="tanh") */
    CDAS_ACTIVATION_GELU_NEW = 2,  /* gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) written out */
    CDAS_ACTIVATION_GELU = 3,      /* gelu: the exact erf form */
    CDAS_ACTIVATION_RELU = 4
} cdas_activation;

/* Rotary embedding variants (transformers' rope_type). */
typedef enum cdas_rope_type {
    CDAS_ROPE_NONE = 0,     /* learned absolute positions (GPT-2) */
    CDAS_ROPE_DEFAULT = 1,
    CDAS_ROPE_LINEAR = 2,   /* inv_freq / factor */
    CDAS_ROPE_LLAMA3 = 3,   /* factor, low/high freq factors, original max positions */
    CDAS_ROPE_LONGROPE = 4, /* Phi-3: short/long factors, switched by the longest position of the call */
    CDAS_ROPE_YARN = 5      /* factor, original max positions, beta_fast/beta_slow */
} cdas_rope_type;

typedef struct cdas_model_config {
    int32_t family;              /* cdas_model_family */
    int32_t num_layers;          /* N */
    int32_t hidden_size;         /* d */
    int32_t num_heads;
    int32_t num_kv_heads;        /* divides num_heads (grouped-query attention) */
    int32_t head_dim;
    int32_t intermediate_size;
    int32_t vocab_size;          /* V */
    int32_t max_positions;       /* max_position_embeddings (GPT-2: rows of wpe); longer rows are refused */
    int32_t activation;          /* cdas_activation */
    double norm_eps;             /* rms_norm_eps, or GPT-2's layer_norm_epsilon */
    int32_t attention_bias;      /* q/k/v projections carry biases (Qwen2: 1) */
    int32_t attention_output_bias; /* the output projection carries a bias */
    int32_t mlp_bias;            /* gate/up/down carry biases */
    int32_t tie_word_embeddings; /* the head is the embedding matrix, unless an lm_head.weight that differs from it is given (as transformers: then that one) */
    /* rotary embeddings (rope_type NONE for GPT-2) */
    int32_t rope_type;           /* cdas_rope_type */
    int32_t rope_original_max_positions; /* llama3, longrope, yarn */
    double rope_theta;
    double rope_partial_factor;  /* fraction of head_dim rotated, in (0, 1]; 0 = 1 */
    double rope_factor;          /* linear, llama3, yarn; longrope: 0 = max_positions / original (Phi-3) */
    double rope_low_freq_factor; /* llama3 */
    double rope_high_freq_factor;/* llama3 */
    double rope_attention_factor;/* longrope, yarn: the cos/sin scale; 0 = derived as transformers does */
    double rope_beta_fast;       /* yarn; 0 = 32 */
    double rope_beta_slow;       /* yarn; 0 = 1 */
    const float* rope_short_factor; /* longrope: [rope_factor_count]; read during cdas_model_create only */
    const float* rope_long_factor;  /* longrope: [rope_factor_count] */
    int32_t rope_factor_count;   /* longrope: rotated dimensions / 2 */
    /* Gemma-2 */
    int32_t sliding_window;      /* keys within the last sliding_window positions (self included); 0 = none */
    const uint8_t* layer_sliding;/* [num_layers]: 1 = that layer uses the window; NULL = the family's pattern
                                  * (Gemma-2: even layers; others: every layer); read during create only */
    double query_pre_attn_scalar;/* attention scores scale by 1/sqrt(this); 0 = head_dim */
    double attn_logit_softcap;   /* scores <- c tanh(scores / c); 0 = none */
    double final_logit_softcap;  /* logits <- c tanh(logits / c); 0 = none */
    double embedding_multiplier; /* embeddings times this, rounded to the model dtype; 0 = the family's
                                  * (Gemma-2: sqrt(hidden_size), others 1) */
    /* where and how it runs */
    int32_t dtype;               /* cdas_dtype of weights and activations */
    int32_t device_type;         /* cdas_device_type */
    int32_t device_index;        /* CUDA ordinal; 0 for CPU */
    int32_t num_threads;         /* CPU intra-op threads of libtorch (process-wide); 0 = leave as is */
    /* Layer split over several devices (docs/scale-out.md, "Layer split"). Appended fields; all
     * zero = one device (device_type, device_index). With split_count >= 1 those two are ignored:
     * the embedding sits on the first device of the list, each block on its device, the final
     * norm and LM head on the last (a tied head gets its own copy there), and activations and the
     * attention inputs move between devices where the blocks do. Read during create only. */
    int32_t split_count;                 /* devices in the lists: 1..num_layers; 0 = no split */
    const int32_t* split_device_types;   /* [split_count] cdas_device_type, in block order */
    const int32_t* split_device_indices; /* [split_count] CUDA ordinal; CPU: 0, 1, ... are distinct
                                          * stages on the one CPU, each with its own weights */
    const int32_t* split_layer_device;   /* [num_layers] each block's entry in the lists: starts at 0,
                                          * never decreases, steps by 0 or 1 and ends at split_count - 1;
                                          * NULL = chosen (split_auto, else blocks as even as possible) */
    int32_t split_auto;                  /* 1 (split_layer_device NULL): contiguous ranges balanced by
                                          * the devices' free memory (CUDA; 90% of it is used, a CPU
                                          * entry is unbounded); a model that does not fit is
                                          * CDAS_STATUS_OUT_OF_MEMORY naming every device's share */
} cdas_model_config;

/* One checkpoint tensor in host memory, row-major, owned by the caller. */
typedef struct cdas_tensor_view {
    const char* name;   /* transformers' name, e.g. "model.layers.0.self_attn.q_proj.weight" */
    int32_t dtype;      /* cdas_dtype */
    int32_t ndim;       /* 1 to 4 */
    int64_t shape[4];   /* the first ndim entries */
    const void* data;
} cdas_tensor_view;

/* A batch of token sequences (host memory). */
typedef struct cdas_token_batch {
    int64_t batch;                 /* B */
    int64_t seq_len;               /* T */
    const int32_t* tokens;         /* [B x T], each in [0, vocab_size) (padding positions too) */
    const uint8_t* attention_mask; /* [B x T], 1 = real token; NULL = every token is real */
} cdas_token_batch;

/* What an intervention does to h on the rows it touches. */
typedef enum cdas_intervention_mode {
    CDAS_INTERVENTION_CLAMP = 0,  /* h <- h + W^T (a_b - W h): CDAS and DAS (docs/method.md section 1) */
    CDAS_INTERVENTION_ADD = 1,    /* h <- h + W^T a_b: additive steering (DiffMean, BiPO, RePS); needs values */
    CDAS_INTERVENTION_LOREFT = 2, /* h <- h + R^T (M h + b - R h): LoReFT (Wu et al. 2024, ReFT) with
                                     R = directions [rank x d], M = loreft_weight [rank x d],
                                     b = loreft_bias [rank]; no values, no source_positions */
    CDAS_INTERVENTION_NULL_OUT = 3    /* h <- h - sum_k ReLU(w_k . h) / |w_k|^2 w_k over the rows w_k of W:
                                     RePS's suppression ("null-out": the positive component of h along
                                     each direction removed; Wu et al. 2025); no values, no
                                     source_positions; every row of W nonzero */
} cdas_intervention_mode;

/*
 * An intervention at the output of block `layer`, at every real position t >= prefix_len[b]
 * (t counted from the row's first real token), with directions W [rank x d] (fp32). By default
 * (mode CLAMP, 0) the DII clamp h <- h + W^T (a_b - W h). The value a_b [rank] is given (values
 * [B x rank], fp32) or read from the same batch: a_b = W h_L(b, source_positions[b]) (the
 * un-clamped h_L; position counted from the first real token). Exactly one of values and
 * source_positions for CLAMP; mode ADD takes values only; modes LOREFT and NULL take neither.
 * loreft_weight and loreft_bias are given with mode LOREFT and NULL otherwise.
 */
typedef struct cdas_intervention {
    int32_t layer;
    int32_t rank;
    const float* directions;         /* [rank x d] */
    const float* values;             /* [B x rank] or NULL */
    const int32_t* source_positions; /* [B] or NULL */
    const int32_t* prefix_len;       /* [B]; NULL = 0 for every row */
    int32_t mode;                    /* cdas_intervention_mode; 0 = CLAMP */
    const float* loreft_weight;      /* [rank x d] M; LOREFT only, else NULL */
    const float* loreft_bias;        /* [rank] b; LOREFT only, else NULL */
} cdas_intervention;

typedef struct cdas_model cdas_model;

/* Zeros, except: rope_partial_factor 1, dtype F32, CPU, device 0. */
CDAS_API cdas_status cdas_model_config_default(cdas_model_config* config);

/*
 * Builds the model from the config and the checkpoint's tensors (names as transformers saves
 * them; GPT-2 with the "transformer." prefix). Every tensor the config implies must be there
 * with its shape, and nothing else (INVALID_ARGUMENT naming the tensor and both shapes).
 * On CPU a tensor already in the model dtype is used in place, not copied: its memory (e.g. a
 * memory-mapped safetensors file) must stay valid and unchanged until cdas_model_destroy.
 * Other tensors are converted or copied to the device, and their views may go after create.
 */
CDAS_API cdas_status cdas_model_create(const cdas_model_config* config, const cdas_tensor_view* tensors,
                                       int64_t tensor_count, cdas_model** model);

/* Accepts NULL. */
CDAS_API cdas_status cdas_model_destroy(cdas_model* model);

/* The placement chosen at create: layer_device_out [capacity >= num_layers] gets each block's entry
 * in the config's split lists (all 0 without a split); *count = num_layers. */
CDAS_API cdas_status cdas_model_layer_devices(const cdas_model* model, int32_t* layer_device_out, int64_t capacity,
                                              int64_t* count);

/* *borrows = 1 when the model reads caller memory given to cdas_model_create (which must then
 * outlive it), 0 when it holds copies only. */
CDAS_API cdas_status cdas_model_borrows_host_memory(const cdas_model* model, int32_t* borrows);

/*
 * One forward pass. intervention: NULL = none. Outputs (fp32, host, each NULL = not computed;
 * at least one): hidden_out [B x T x d] = h_L after block hidden_layer (after the clamp when the
 * intervention is at that layer); final_hidden_out [B x T x d] = after the final norm;
 * logits_out [B x T x V] (after the final soft-cap). Blocks after the last one needed do not run.
 */
CDAS_API cdas_status cdas_model_forward(cdas_model* model, const cdas_token_batch* input,
                                        const cdas_intervention* intervention, int32_t hidden_layer,
                                        float* hidden_out, float* final_hidden_out, float* logits_out);

typedef struct cdas_generation_options {
    int32_t max_new_tokens;   /* > 0 */
    int32_t top_k;            /* 0 = off */
    float temperature;        /* 0 = greedy (argmax) */
    float top_p;              /* in (0, 1]; 1 = off */
    int64_t seed;             /* sampling is reproducible for a seed, batch composition and device */
    const int32_t* eos_ids;   /* [eos_count]: a row stops after producing one of them */
    int32_t eos_count;
} cdas_generation_options;

/* max_new_tokens 32, greedy, top_p 1, seed 0, no eos. */
CDAS_API cdas_status cdas_generation_options_default(cdas_generation_options* options);

/*
 * Continues each row of `prompt` (left-padded: every row's real tokens end at T - 1) with a KV
 * cache, applying the intervention (if any) to the prompt and every generated token. Writes
 * new_tokens_out [B x max_new_tokens] (entries past a row's length are -1) and lengths_out [B]
 * (tokens generated, the eos included).
 */
CDAS_API cdas_status cdas_model_generate(cdas_model* model, const cdas_token_batch* prompt,
                                         const cdas_intervention* intervention,
                                         const cdas_generation_options* options,
                                         int32_t* new_tokens_out, int32_t* lengths_out);

/* The loss of cdas_model_cdas_objective. */
typedef enum cdas_objective_loss {
    CDAS_LOSS_JSD = 0,           /* CDAS: JSD against the target, by the fused LM-head + JSD kernel */
    CDAS_LOSS_JSD_COMPOSED = 1,  /* the same JSD composed from libtorch operations, the [rows x V]
                                    logits materialised: the benchmarks' baseline, a cross-check */
    CDAS_LOSS_CROSS_ENTROPY = 2  /* DAS: mean cross-entropy of the base row's own next token at each
                                    compared row (row k predicts base position base_start + k + 1);
                                    target and target_start are not read (may be empty / NULL) */
} cdas_objective_loss;

/*
 * The CDAS objective of one minibatch and its gradient (docs/method.md section 1), in one call:
 *   s_b    = h_L of `source` row b at source_positions[b]           (no grad)
 *   P rows = the unmodified model's final hidden states on `target`   (no grad)
 *   h_L    = `base` up to block `layer`                                (no grad)
 *   Q rows = base continued from Phi(h_L; a_b = W s_b), clamped at t >= prefix_len[b], with
 *            autograd above the layer only;
 *   loss   = mean over compared rows of JSD(softmax(head P) || softmax(head Q)) (final soft-cap
 *            included), by the fused LM-head + JSD (batch.loss selects another, above).
 * Row k < compare_count[b] of example b compares base position base_start[b] + k with target
 * position target_start[b] + k (positions counted from each row's first real token; to compare
 * the distributions that predict the response tokens, start one before the response).
 * All three batches have the same B (under CROSS_ENTROPY the target is not read and the source
 * states come from a pass over `source` to the layer). grad_directions_out [rank x d] (fp32, nullable) receives
 * grad_scale * dloss/dW, the gradient through a = W s included.
 *
 * Packing (direction_index given): several independent direction sets in one forward and backward
 * pass, example b clamped with set direction_index[b]. `directions` and grad_directions_out are then
 * [direction_count x rank x d] and loss_out receives direction_count values: loss k is the loss of
 * set k's examples alone (the mean over their own compared rows, by the same loss code on the same
 * rows, in batch order), and block k of the gradient is grad_scale * d loss_k / d W_k, as a call with
 * only those examples would give: with pack_padding 0 (`batch.base` must be left-padded) each set
 * runs through the layers laid out as alone, bit for bit on the CPU for a set whose length no other
 * set of the call shares (sets of one length share a batch of more rows); within float rounding when
 * pack_padding lets sets of different lengths share a pass. Every set needs at least one compared row.
 */
typedef struct cdas_objective_batch {
    cdas_token_batch base;
    cdas_token_batch source;
    cdas_token_batch target;
    const int32_t* prefix_len;       /* [B] */
    const int32_t* source_positions; /* [B] */
    const int32_t* base_start;       /* [B] */
    const int32_t* target_start;     /* [B] */
    const int32_t* compare_count;    /* [B]; >= 0, at least one row in the batch */
    int32_t loss;                    /* cdas_objective_loss; 0 = JSD (fused) */
    /* Optional precomputed states (fp32, host memory; NULL = computed in the call). None depends
     * on W, so a trainer can compute them once with cdas_model_forward and reuse them every epoch;
     * given, they replace the passes that would produce them (bit for bit when they come from
     * cdas_model_forward on the same rows, since the model's dtype round-trips through fp32). */
    const float* base_hidden;        /* [B x T_base x d]: h_L of `base`, no intervention (padding ignored) */
    const float* source_hidden;      /* [B x d]: s_b, h_L of `source` row b at source_positions[b] */
    const float* teacher_hidden;     /* [compared rows x d]: the target's final hidden states (after the
                                        final norm) at the compared rows, example by example; when given,
                                        `target` is not read */
    /* Packing (above); NULL = one direction set for every example. */
    const int32_t* direction_index;  /* [B]: example b's direction set, in [0, direction_count) */
    int32_t direction_count;         /* >= 1 sets; read only with direction_index */
    int32_t pack_padding;            /* >= 0: with direction_index, sets whose own padded lengths (their
                                        longest base row) differ by at most this many tokens go through
                                        the layers as one batch, padded to the longest of them; 0: one
                                        pass per distinct length, each set laid out as in a call with
                                        its examples alone (see above) */
} cdas_objective_batch;

CDAS_API cdas_status cdas_model_cdas_objective(cdas_model* model, int32_t layer, int32_t rank,
                                               const float* directions, const cdas_objective_batch* batch,
                                               float grad_scale, float* loss_out, float* grad_directions_out);

/*
 * The steered log-likelihood of responses (docs/method.md, "Baselines: the steered-likelihood
 * objective"), the one objective of the RePS, BiPO and LoReFT baselines: each of their losses is a
 * function of these per-example log-probabilities.
 */
typedef struct cdas_logprob_batch {
    cdas_token_batch tokens;        /* prompt + response, one row per example */
    const int32_t* prefix_len;      /* [B] where the intervention starts (as cdas_intervention); NULL = 0.
                                       An intervention's own prefix_len must then be NULL or equal to it */
    const int32_t* score_start;     /* [B] first scored token position (counted from the first real token);
                                       >= 1 when score_count > 0 */
    const int32_t* score_count;     /* [B] >= 0 scored tokens: positions score_start..score_start+count-1, each
                                       predicted by the row before it; within the row's real tokens */
} cdas_logprob_batch;

/*
 * logprob_out[b] = sum over scored tokens of log p(token | earlier tokens) under `intervention`
 * (NULL = the unmodified model), natural log, final soft-cap included, accumulated in fp32 or
 * wider. With upstream [B] non-NULL also the gradient of sum_b upstream[b] * logprob_out[b] with
 * respect to the intervention's parameters, written to grad_out (fp32, required then):
 *   CLAMP (values or source_positions), ADD, NULL: [rank x d] for the directions W (CLAMP from
 *     source_positions: the gradient through a = W h_L(source) included);
 *   LOREFT: [rank x d] R (directions), then [rank x d] M (loreft_weight), then [rank] b
 *     (loreft_bias), concatenated: 2 rank d + rank floats.
 * The values of CLAMP and ADD are constants here (no gradient). Autograd above the layer only:
 * the blocks up to `layer` run without a graph. upstream NULL: grad_out is not written (may be NULL);
 * upstream without intervention: INVALID_ARGUMENT (there is nothing to differentiate).
 */
CDAS_API cdas_status cdas_model_sequence_logprobs(cdas_model* model, const cdas_intervention* intervention,
                                                  const cdas_logprob_batch* batch, const float* upstream,
                                                  float* logprob_out, float* grad_out);

/*
 * The checkpoint layout a config implies, from the same per-family table cdas_model_create checks
 * and binds against: one entry per tensor, in checkpoint order. The config is validated as
 * cdas_model_create validates it (its dtype and device do not change the layout). Writes
 * min(capacity, total) entries to `weights` (NULL with capacity 0 to ask for the count only) and
 * the total to *count.
 */
typedef struct cdas_weight_info {
    char name[128];             /* transformers' name, NUL-terminated */
    char alternative_name[128]; /* the name some hub files use instead ("" = none; GPT-2: without "transformer.") */
    int32_t ndim;               /* 1 to 4 */
    int64_t shape[4];           /* the first ndim entries */
    int32_t optional;           /* 1: may be left out (a tied lm_head.weight, which is then ignored) */
} cdas_weight_info;

CDAS_API cdas_status cdas_model_expected_weights(const cdas_model_config* config, cdas_weight_info* weights,
                                                 int64_t capacity, int64_t* count);

/* ---- data parallel over torch c10d -------------------------------------------------------- */

/*
 * A process group of `world_size` processes (ranks) that sum float buffers across processes:
 * data-parallel training of one vector (docs/scale-out.md, "Data parallel"). It is torch's c10d
 * ProcessGroup of the linked libtorch, rendezvousing through a c10d TCPStore at
 * master_addr:master_port:
 *   GLOO  host buffers over TCP (CPU training; also usable next to CUDA training);
 *   NCCL  the buffer is staged through device `device_index` (CUDA training); only in a libcdas
 *         built against a CUDA libtorch with NCCL's headers.
 * A libcdas built without a backend's headers (CMake says which at configure time) answers
 * cdas_dist_create with CDAS_STATUS_UNSUPPORTED and what to install.
 * Every collective is a call every rank makes, in the same order; each blocks until all ranks
 * joined it or timeout_ms passed. A failed rendezvous or collective (timeout, refused or lost
 * connection, a rank that left) is CDAS_STATUS_IO_ERROR naming the operation; after one the group
 * should be destroyed. A group is used by one thread at a time.
 */
typedef struct cdas_dist cdas_dist;

typedef enum cdas_dist_backend {
    CDAS_DIST_GLOO = 0,
    CDAS_DIST_NCCL = 1
} cdas_dist_backend;

typedef struct cdas_dist_options {
    const char* master_addr;  /* host name or address of the store; NUL-terminated, not empty */
    int32_t master_port;      /* 1..65535 */
    int32_t rank;             /* 0..world_size-1 */
    int32_t world_size;       /* >= 1 */
    int32_t host_store;       /* 1: this process starts the store's server (rank 0 when launched by
                                 hand); 0: it connects to one (torchrun's agent hosts it) */
    int32_t backend;          /* cdas_dist_backend */
    int32_t device_index;     /* NCCL: the CUDA device of this rank; GLOO: ignored */
    int64_t timeout_ms;       /* store connection and each collective; <= 0: 30 minutes */
    const char* store_prefix; /* keys of this group in the store (NULL or "": "cdas"), so that one
                                 store can host several groups, e.g. one per torchrun restart */
} cdas_dist_options;

/* Joins the group: returns when every rank has joined, or fails (timeout, refused connection,
 * a rank out of range, an unavailable backend). *dist is NULL on failure. */
CDAS_API cdas_status cdas_dist_create(const cdas_dist_options* options, cdas_dist** dist);

/* Leaves the group (NULL is accepted). Does not wait for the other ranks. */
CDAS_API cdas_status cdas_dist_destroy(cdas_dist* dist);

/* This rank and the world size of the group (either pointer may be NULL). */
CDAS_API cdas_status cdas_dist_rank(const cdas_dist* dist, int32_t* rank, int32_t* world_size);

/* Replaces data[0..count) (fp32, host memory) on every rank with the elementwise sum over the
 * ranks. count >= 1 and equal on every rank. The sum's order is the backend's: ranks end with
 * identical buffers, which may differ in the last bits from a serial sum. */
CDAS_API cdas_status cdas_dist_all_reduce_sum(cdas_dist* dist, float* data, int64_t count);

/* Returns when every rank has called it. */
CDAS_API cdas_status cdas_dist_barrier(cdas_dist* dist);

/* ---- build information ------------------------------------------------------------------ */

/* What this library was built against (torch version and its CUDA, the nvcc of the CUDA
 * kernels, the compiler and its C++ ABI) and what it finds at run time (the libtorch actually
 * loaded, its CUDA runtime and usable GPUs, the CUDA driver and its devices, whether
 * libcdas_cuda.so loaded and why not), as lines "key: value\n". Never NULL; owned by the
 * library. The first call loads the CUDA backend and queries the driver; later calls return
 * the same text. */
CDAS_API const char* cdas_build_info(void);

/* The SHA-256 of the cdas.h this library was compiled from, as 64 lowercase hexadecimal digits
 * (never NULL; owned by the library). Bindings generated from another cdas.h may lay out structs
 * differently, and a call through them would corrupt memory instead of failing: the Java
 * bindings carry the digest of their header and refuse a library whose digest differs. */
CDAS_API const char* cdas_header_sha256(void);

#ifdef __cplusplus
}
#endif

#endif /* CDAS_H */
