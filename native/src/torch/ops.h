// The two fused operations as libtorch autograd functions, for use inside a graph (the model
// runtime): they dispatch by the tensors' device to the CPU kernels or the CUDA backend table.
// `context` may be null: a process-wide default context for the tensors' device is used.
// A given CUDA context must be on the tensors' device; CUDA work runs on the context's stream.
#pragma once

#include <ATen/Tensor.h>

#include "cdas.h"

namespace cdas::torch_ops {

// Phi(h; a) = h + W^T (a - W h) on rows with mask != 0.
//   h [T, d] (float, bfloat16 or half), directions [r, d] float (receives a gradient),
//   exactly one of source [B, d] (dtype of h; a = W s, treated as detached: it gets no gradient)
//   and values [B, r] float (receives a gradient); the other an undefined tensor.
//   example_index [T] int32 or int64 in [0, B); mask [T] bool/uint8 or undefined (all rows).
at::Tensor dii(const at::Tensor& h, const at::Tensor& directions, const at::Tensor& source,
               const at::Tensor& values, const at::Tensor& example_index, const at::Tensor& mask,
               cdas_context* context = nullptr);

// dii with several direction sets (concept packing): directions [sets x r, d] holds one W per
// set, and example e uses set example_set[e] (example_set [B] int32, on h's device; undefined
// only when sets = 1). The gradient of directions is each set's own (cdas_dii_backward_sets).
at::Tensor dii_sets(const at::Tensor& h, const at::Tensor& directions, int64_t sets, const at::Tensor& example_set,
                    const at::Tensor& source, const at::Tensor& values, const at::Tensor& example_index,
                    const at::Tensor& mask, cdas_context* context = nullptr);

// Mean JSD between softmax(softcap(x_student head^T)) and softmax(softcap(x_teacher head^T)) over
// rows with mask != 0: a float scalar whose gradient flows to x_student only (teacher and head
// are treated as frozen). The gradient is computed in the forward call, with the loss, and
// scaled by the upstream gradient in backward. softcap <= 0: no soft-cap.
at::Tensor lm_head_jsd(const at::Tensor& x_student, const at::Tensor& x_teacher, const at::Tensor& head,
                       double softcap, const at::Tensor& mask, cdas_context* context = nullptr);

}  // namespace cdas::torch_ops
