#include "torch/losses.h"

#include <cmath>

#include <torch/torch.h>

namespace cdas::torch_ops {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor softcapped(const at::Tensor& z, double softcap) { return softcap > 0 ? softcap * torch::tanh(z / softcap) : z; }

// The chunked cross-entropy: forward keeps only x, the head, the labels and each row's
// log-sum-exp; backward recomputes a chunk's logits to form softmax - onehot.
struct lm_head_cross_entropy_function : torch::autograd::Function<lm_head_cross_entropy_function> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels,
                              double softcap, int64_t chunk) {
        at::NoGradGuard no_grad;
        const int64_t rows = x.size(0);
        at::Tensor lse = at::empty({rows}, x.options().dtype(at::kFloat));
        at::Tensor total = at::zeros({}, x.options().dtype(at::kDouble));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            const int64_t n = std::min(chunk, rows - r0);
            at::Tensor z = softcapped(x.narrow(0, r0, n).matmul(head.t()), softcap);
            at::Tensor l = z.logsumexp(-1);
            lse.narrow(0, r0, n).copy_(l);
            at::Tensor picked = z.gather(1, labels.narrow(0, r0, n).unsqueeze(1)).squeeze(1);
            total += (l - picked).sum().to(at::kDouble);
        }
        ctx->save_for_backward({x, head, labels, lse});
        ctx->saved_data["softcap"] = softcap;
        ctx->saved_data["chunk"] = chunk;
        return (total / double(rows)).to(at::kFloat);
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &head = saved[1], &labels = saved[2], &lse = saved[3];
        const double softcap = ctx->saved_data["softcap"].toDouble();
        const int64_t chunk = ctx->saved_data["chunk"].toInt(), rows = x.size(0);
        at::NoGradGuard no_grad;
        at::Tensor scale = grad_outputs[0].to(at::kFloat) / double(rows);
        at::Tensor grad = at::empty_like(x);
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            const int64_t n = std::min(chunk, rows - r0);
            at::Tensor u = x.narrow(0, r0, n).matmul(head.t());
            at::Tensor z = softcapped(u, softcap);
            at::Tensor dz = (z - lse.narrow(0, r0, n).unsqueeze(1)).exp_();
            dz.scatter_add_(1, labels.narrow(0, r0, n).unsqueeze(1), at::full({n, 1}, -1.0f, dz.options()));
            if (softcap > 0) dz.mul_(1 - (u / softcap).tanh().square());
            grad.narrow(0, r0, n).copy_(dz.mul_(scale).matmul(head));
        }
        return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

// Per-row log-probabilities of the labels, chunked like the cross-entropy above: forward keeps x,
// the head, the labels and each row's log-sum-exp; backward recomputes a chunk's logits to form
// g_row (onehot - softmax).
struct lm_head_token_logprobs_function : torch::autograd::Function<lm_head_token_logprobs_function> {
    static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels,
                              double softcap, int64_t chunk) {
        at::NoGradGuard no_grad;
        const int64_t rows = x.size(0);
        at::Tensor lse = at::empty({rows}, x.options().dtype(at::kFloat));
        at::Tensor out = at::empty({rows}, x.options().dtype(at::kFloat));
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            const int64_t n = std::min(chunk, rows - r0);
            at::Tensor z = softcapped(x.narrow(0, r0, n).matmul(head.t()), softcap);
            at::Tensor l = z.logsumexp(-1);
            lse.narrow(0, r0, n).copy_(l);
            out.narrow(0, r0, n).copy_(z.gather(1, labels.narrow(0, r0, n).unsqueeze(1)).squeeze(1) - l);
        }
        ctx->save_for_backward({x, head, labels, lse});
        ctx->saved_data["softcap"] = softcap;
        ctx->saved_data["chunk"] = chunk;
        return out;
    }

    static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
        auto saved = ctx->get_saved_variables();
        const at::Tensor &x = saved[0], &head = saved[1], &labels = saved[2], &lse = saved[3];
        const double softcap = ctx->saved_data["softcap"].toDouble();
        const int64_t chunk = ctx->saved_data["chunk"].toInt(), rows = x.size(0);
        at::NoGradGuard no_grad;
        at::Tensor g = grad_outputs[0].to(at::kFloat);
        at::Tensor grad = at::empty_like(x);
        for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
            const int64_t n = std::min(chunk, rows - r0);
            at::Tensor u = x.narrow(0, r0, n).matmul(head.t());
            at::Tensor z = softcapped(u, softcap);
            // d logp / dz = onehot - softmax, written as -(softmax - onehot)
            at::Tensor dz = (z - lse.narrow(0, r0, n).unsqueeze(1)).exp_().neg_();
            dz.scatter_add_(1, labels.narrow(0, r0, n).unsqueeze(1), at::full({n, 1}, 1.0f, dz.options()));
            if (softcap > 0) dz.mul_(1 - (u / softcap).tanh().square());
            grad.narrow(0, r0, n).copy_(dz.mul_(g.narrow(0, r0, n).unsqueeze(1)).matmul(head));
        }
        return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
    }
};

}  // namespace

at::Tensor lm_head_jsd_composed_rows(const at::Tensor& x_student, const at::Tensor& x_teacher, const at::Tensor& head_in,
                                     double softcap) {
    at::Tensor head = head_in.detach().to(at::kFloat);
    at::Tensor z_student = softcapped(x_student.to(at::kFloat).matmul(head.t()), softcap);
    at::Tensor z_teacher;
    {
        at::NoGradGuard no_grad;  // the teacher is detached
        z_teacher = softcapped(x_teacher.detach().to(at::kFloat).matmul(head.t()), softcap);
    }
    at::Tensor log_q = torch::log_softmax(z_student, -1);
    at::Tensor log_p = torch::log_softmax(z_teacher, -1);
    at::Tensor log_m = torch::logsumexp(torch::stack({log_p, log_q}), 0) - std::log(2.0);
    namespace F = torch::nn::functional;
    auto kl = [&](const at::Tensor& log_target) {  // KL(target || M) per row
        return F::kl_div(log_m, log_target, F::KLDivFuncOptions().reduction(torch::kNone).log_target(true)).sum(-1);
    };
    return 0.5 * (kl(log_p) + kl(log_q));
}

at::Tensor lm_head_cross_entropy(const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels, double softcap,
                                 int64_t chunk_rows) {
    TORCH_CHECK(x.dim() == 2 && head.dim() == 2 && x.size(1) == head.size(1), "x [rows, d] and head [V, d] expected");
    TORCH_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "labels [rows] expected");
    TORCH_CHECK(chunk_rows > 0, "chunk_rows must be > 0");
    return lm_head_cross_entropy_function::apply(x.to(at::kFloat).contiguous(), head.detach().to(at::kFloat).contiguous(),
                                                 labels.to(at::kLong).contiguous(), softcap, chunk_rows);
}

at::Tensor lm_head_token_logprobs(const at::Tensor& x, const at::Tensor& head, const at::Tensor& labels, double softcap,
                                  int64_t chunk_rows) {
    TORCH_CHECK(x.dim() == 2 && head.dim() == 2 && x.size(1) == head.size(1), "x [rows, d] and head [V, d] expected");
    TORCH_CHECK(labels.dim() == 1 && labels.size(0) == x.size(0), "labels [rows] expected");
    TORCH_CHECK(chunk_rows > 0, "chunk_rows must be > 0");
    return lm_head_token_logprobs_function::apply(x.to(at::kFloat).contiguous(),
                                                  head.detach().to(at::kFloat).contiguous(),
                                                  labels.to(at::kLong).contiguous(), softcap, chunk_rows);
}

}  // namespace cdas::torch_ops
