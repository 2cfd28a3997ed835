#include "torch/baselines.h"

#include <cmath>
#include <cstring>

#include <torch/torch.h>

#include "torch/losses.h"

namespace cdas {

namespace {


torch::Tensor wrap(const void* data, at::IntArrayRef shape, at::ScalarType type = at::kFloat) {
    return torch::from_blob(const_cast<void*>(data), shape, torch::TensorOptions().dtype(type));
}

void copy_out(const torch::Tensor& t, float* out) {
    torch::Tensor c = t.detach().to(at::kFloat).contiguous();
    std::memcpy(out, c.data_ptr<float>(), size_t(c.numel()) * sizeof(float));
}

torch::Tensor row_mask(const uint8_t* mask, int64_t rows) {
    if (!mask) return torch::ones({rows}, torch::kBool);
    return wrap(mask, {rows}, at::kByte).to(torch::kBool);
}

}  // namespace

void baseline_lm_head_jsd_torch(const cpu::lm_head_jsd_args& a) {
    const bool want_grad = a.grad_student_out != nullptr;
    torch::AutoGradMode grad_mode(want_grad);
    torch::Tensor x_student = wrap(a.x_student, {a.rows, a.dim}).detach().requires_grad_(want_grad);
    torch::Tensor x_teacher = wrap(a.x_teacher, {a.rows, a.dim});
    torch::Tensor head = wrap(a.head, {a.vocab, a.dim});

    torch::Tensor row_jsd = torch_ops::lm_head_jsd_composed_rows(x_student, x_teacher, head, a.softcap);

    torch::Tensor mask = row_mask(a.mask, a.rows);
    int64_t count = mask.sum().item<int64_t>();
    torch::Tensor loss = count > 0 ? row_jsd.masked_select(mask).mean() : row_jsd.sum() * 0.0;

    *a.loss_out = loss.item<float>();
    if (a.row_loss_out) copy_out(row_jsd.masked_fill(mask.logical_not(), 0.0), a.row_loss_out);
    if (want_grad) {
        loss.backward(torch::full({}, a.grad_scale));
        copy_out(x_student.grad(), a.grad_student_out);
    }
}

void baseline_dii_torch(const cpu::dii_args& a, const float* grad_out, float* h_out, float* grad_h,
                        float* grad_directions) {
    const bool want_grad = grad_h || grad_directions;
    torch::AutoGradMode grad_mode(want_grad);
    torch::Tensor h = wrap(a.h, {a.rows, a.dim}).detach().requires_grad_(grad_h != nullptr);
    torch::Tensor w = wrap(a.directions, {a.rank, a.dim}).detach().requires_grad_(grad_directions != nullptr);
    torch::Tensor source = wrap(a.source, {a.examples, a.dim});
    torch::Tensor index = wrap(a.example_index, {a.rows}, at::kInt).to(at::kLong);
    torch::Tensor mask = row_mask(a.mask, a.rows).to(at::kFloat).unsqueeze(1);

    torch::Tensor clamp = source.matmul(w.t()).index_select(0, index);  // a_e = W s_e per row
    torch::Tensor projection = h.matmul(w.t());
    torch::Tensor out = h + mask * (clamp - projection).matmul(w);

    if (h_out) copy_out(out, h_out);
    if (!want_grad) return;
    out.backward(wrap(grad_out, {a.rows, a.dim}));
    if (grad_h) copy_out(h.grad(), grad_h);
    if (grad_directions) copy_out(w.grad(), grad_directions);
}

}  // namespace cdas
