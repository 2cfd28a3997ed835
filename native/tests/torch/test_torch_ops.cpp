// The fused operations as libtorch autograd functions, used inside graphs the way the model
// runtime uses them: gradients that flow through them into upstream parameters must equal
// libtorch's own autograd through the same math composed from torch operations. Inputs are fresh
// random tensors each run (seeded from the harness seed), shapes are awkward, masks are partial,
// and the loss is scaled so the upstream gradient is not 1.
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "harness.h"
#include "torch/ops.h"

namespace {

using cdas_test::make_rng;

torch::Tensor randn(std::mt19937_64& rng, std::vector<int64_t> shape, double scale = 1.0) {
    torch::Tensor t = torch::empty(shape, torch::kFloat);
    std::normal_distribution<float> normal(0.0f, static_cast<float>(scale));
    float* p = t.data_ptr<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = normal(rng);
    return t;
}

void expect_close(const char* what, const torch::Tensor& got, const torch::Tensor& want, double atol, double rtol,
                  const char* file, int line) {
    torch::Tensor g = got.to(torch::kDouble).contiguous();
    torch::Tensor w = want.to(torch::kDouble).contiguous();
    std::vector<double> wv(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
    std::vector<float> gv(g.numel());
    for (int64_t i = 0; i < g.numel(); ++i) gv[i] = static_cast<float>(g.data_ptr<double>()[i]);
    cdas_test::all_close(what, gv.data(), wv.data(), g.numel(), atol, rtol, file, line);
}

#define EXPECT_CLOSE(what, got, want, atol, rtol) expect_close(what, got, want, atol, rtol, __FILE__, __LINE__)

// JSD between softmax(cap(x_s W^T)) and softmax(cap(x_t W^T)), mean over masked rows, written as a
// PyTorch user would.
torch::Tensor composed_jsd(const torch::Tensor& xs, const torch::Tensor& xt, const torch::Tensor& head, double cap,
                           const torch::Tensor& mask) {
    auto capped = [cap](torch::Tensor z) { return cap > 0 ? cap * torch::tanh(z / cap) : z; };
    torch::Tensor lq = torch::log_softmax(capped(xs.matmul(head.t())), -1);
    torch::Tensor lp = torch::log_softmax(capped(xt.matmul(head.t())), -1).detach();
    torch::Tensor lm = torch::logsumexp(torch::stack({lq, lp}), 0) - std::log(2.0);
    torch::Tensor rows = 0.5 * ((lp.exp() * (lp - lm)).sum(-1) + (lq.exp() * (lq - lm)).sum(-1));
    torch::Tensor m = mask.to(torch::kFloat);
    return (rows * m).sum() / m.sum();
}

// Student hidden states produced by a small upstream layer, so the gradient has somewhere to go.
void check_lm_head_jsd_in_graph(const char* salt, int64_t rows, int64_t dim, int64_t vocab, double cap) {
    auto rng = make_rng(salt);
    torch::Tensor y = randn(rng, {rows, dim});
    torch::Tensor a = randn(rng, {dim, dim}, 1.0 / std::sqrt(static_cast<double>(dim)));
    torch::Tensor xt = randn(rng, {rows, dim});
    torch::Tensor head = randn(rng, {vocab, dim}, 1.0 / std::sqrt(static_cast<double>(dim)));
    torch::Tensor mask = torch::ones({rows}, torch::kBool);
    mask.index_put_({torch::indexing::Slice(0, torch::indexing::None, 3)}, false);

    torch::Tensor a1 = a.clone().requires_grad_(true);
    torch::Tensor y1 = y.clone().requires_grad_(true);
    torch::Tensor fused = cdas::torch_ops::lm_head_jsd(torch::tanh(y1.matmul(a1)), xt, head, cap, mask);
    (2.5 * fused + 0.1 * y1.sum()).backward();

    torch::Tensor a2 = a.clone().requires_grad_(true);
    torch::Tensor y2 = y.clone().requires_grad_(true);
    torch::Tensor composed = composed_jsd(torch::tanh(y2.matmul(a2)), xt, head, cap, mask);
    (2.5 * composed + 0.1 * y2.sum()).backward();

    EXPECT_CLOSE("loss", fused.detach().reshape({1}), composed.detach().reshape({1}), 1e-6, 1e-4);
    EXPECT_CLOSE("dL/dA through the fused loss", a1.grad(), a2.grad(), 1e-6, 2e-3);
    EXPECT_CLOSE("dL/dy through the fused loss", y1.grad(), y2.grad(), 1e-6, 2e-3);
    CHECK(!fused.requires_grad() || fused.grad_fn() != nullptr);
}

}  // namespace

TEST(torch_lm_head_jsd_gradient_flows_upstream) {
    check_lm_head_jsd_in_graph("torch-jsd-plain", 41, 67, 1271, 0.0);
}

TEST(torch_lm_head_jsd_gradient_flows_upstream_softcap) {
    check_lm_head_jsd_in_graph("torch-jsd-cap", 13, 29, 517, 2.5);
}

TEST(torch_lm_head_jsd_teacher_and_head_get_no_gradient) {
    auto rng = make_rng("torch-jsd-frozen");
    torch::Tensor xs = randn(rng, {5, 8}).requires_grad_(true);
    torch::Tensor xt = randn(rng, {5, 8}).requires_grad_(true);
    torch::Tensor head = randn(rng, {33, 8}).requires_grad_(true);
    torch::Tensor loss = cdas::torch_ops::lm_head_jsd(xs, xt, head, 0.0, torch::Tensor());
    loss.backward();
    CHECK(xs.grad().defined());
    CHECK(!xt.grad().defined() || xt.grad().abs().max().item<double>() == 0.0);
    CHECK(!head.grad().defined() || head.grad().abs().max().item<double>() == 0.0);
}

// A steering direction w inside a graph: h comes from an upstream layer, the clamp value from a
// source, and the loss from a later layer; gradients reach w and the upstream parameters.
TEST(torch_dii_gradients_flow_to_direction_and_upstream) {
    auto rng = make_rng("torch-dii");
    const int64_t rows = 37, dim = 23, examples = 3;
    for (int64_t rank : {1, 3}) {
        torch::Tensor x = randn(rng, {rows, dim});
        torch::Tensor a = randn(rng, {dim, dim}, 0.3);
        torch::Tensor w = randn(rng, {rank, dim});
        w = w / w.norm(2, 1, true);
        torch::Tensor source = randn(rng, {examples, dim});
        torch::Tensor index = torch::div(torch::arange(rows, torch::kLong) * examples, rows, "floor");
        torch::Tensor mask = torch::ones({rows}, torch::kBool);
        mask.index_put_({torch::indexing::Slice(0, torch::indexing::None, 4)}, false);
        torch::Tensor readout = randn(rng, {dim, dim});

        torch::Tensor a1 = a.clone().requires_grad_(true);
        torch::Tensor w1 = w.clone().requires_grad_(true);
        torch::Tensor h1 = x.matmul(a1);
        torch::Tensor out1 = cdas::torch_ops::dii(h1, w1, source, torch::Tensor(), index.to(torch::kInt), mask);
        torch::Tensor loss1 = torch::tanh(out1.matmul(readout)).pow(2).sum() * 0.7;
        loss1.backward();

        torch::Tensor a2 = a.clone().requires_grad_(true);
        torch::Tensor w2 = w.clone().requires_grad_(true);
        torch::Tensor h2 = x.matmul(a2);
        torch::Tensor clamp = source.matmul(w2.t()).index_select(0, index);
        torch::Tensor m = mask.to(torch::kFloat).unsqueeze(1);
        torch::Tensor out2 = h2 + m * (clamp - h2.matmul(w2.t())).matmul(w2);
        torch::Tensor loss2 = torch::tanh(out2.matmul(readout)).pow(2).sum() * 0.7;
        loss2.backward();

        EXPECT_CLOSE("h'", out1.detach(), out2.detach(), 1e-5, 1e-5);
        EXPECT_CLOSE("dL/dW (directions)", w1.grad(), w2.grad(), 1e-4, 1e-4);
        EXPECT_CLOSE("dL/dA upstream of the clamp", a1.grad(), a2.grad(), 1e-4, 1e-4);
    }
}

TEST(torch_dii_given_values_receive_gradient) {
    auto rng = make_rng("torch-dii-values");
    const int64_t rows = 19, dim = 11, examples = 2, rank = 2;
    torch::Tensor h = randn(rng, {rows, dim});
    torch::Tensor w = randn(rng, {rank, dim});
    w = w / w.norm(2, 1, true);
    torch::Tensor values = randn(rng, {examples, rank});
    torch::Tensor index = torch::div(torch::arange(rows, torch::kLong) * examples, rows, "floor");
    torch::Tensor g = randn(rng, {rows, dim});

    torch::Tensor v1 = values.clone().requires_grad_(true);
    torch::Tensor out1 = cdas::torch_ops::dii(h, w, torch::Tensor(), v1, index, torch::Tensor());
    (out1 * g).sum().backward();

    torch::Tensor v2 = values.clone().requires_grad_(true);
    torch::Tensor out2 = h + (v2.index_select(0, index) - h.matmul(w.t())).matmul(w);
    (out2 * g).sum().backward();

    EXPECT_CLOSE("dL/da", v1.grad(), v2.grad(), 1e-5, 1e-5);
}
