// Losses over the LM head other than the fused JSD kernel (torch/ops.h), as differentiable
// libtorch code for the model runtime's objective:
//   - the JSD composed from libtorch operations the way PyTorch users write it (the [rows x V]
//     logits materialised): the training-step benchmark's baseline and a cross-check of the kernel;
//   - the cross-entropy of DAS, chunked over rows so the [rows x V] logits never exist in full;
//   - per-row label log-probabilities, chunked the same way (the baselines' steered likelihoods).
// All compute in fp32 whatever the dtype of x (the head is converted per call), treat the head as
// frozen and take softcap <= 0 as no soft-cap.
#pragma once

#include <ATen/Tensor.h>

namespace cdas::torch_ops {

// Per-row JSD(softmax(z_teacher) || softmax(z_student)) [rows], differentiable w.r.t. x_student
// only (x_teacher detached), z = softcap(x head^T).
at::Tensor lm_head_jsd_composed_rows(const at::Tensor& x_student, const at::Tensor& x_teacher, const at::Tensor& head,
                                     double softcap);

// Mean over rows of -log softmax(softcap(x head^T))[labels], differentiable w.r.t. x. labels [rows]
// int64 in [0, V). Rows are processed `chunk_rows` at a time in forward and again in backward
// (recomputing the chunk's logits), so peak extra memory is O(chunk_rows x V).
at::Tensor lm_head_cross_entropy(const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels, double softcap,
                                 int64_t chunk_rows = 256);

// Per-row log softmax(softcap(x head^T))[labels] [rows] (fp32), differentiable w.r.t. x, chunked
// as lm_head_cross_entropy (the steered log-likelihoods of the RePS, BiPO and LoReFT baselines).
at::Tensor lm_head_token_logprobs(const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels, double softcap,
                                  int64_t chunk_rows = 256);

}  // namespace cdas::torch_ops
