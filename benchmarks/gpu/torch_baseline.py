#!/usr/bin/env python3
"""The LM-head + soft-cap + JSD step composed from torch ops, the way PyTorch users write it
(logits = x @ W.T, log_softmax, kl_div, autograd), timed the same way as gpu_check_bench:
median of CUDA-event timings after warm-up, forward + backward, bf16 inputs.

Writes one line per shape: "lm_head_jsd <model> <T> <ms> <peak_extra_bytes>" ("nan" when the
shape does not fit in memory). peak_extra_bytes is torch's allocator high-water mark beyond the
inputs and outputs.
"""
import argparse
import math
import statistics
import sys

import torch
import torch.nn.functional as F

MODELS = [("gemma-2-2b", 2304, 256000, 30.0), ("llama-3-8b", 4096, 128256, 0.0)]
TOKENS = [1024, 8192]


def jsd_loss(xs, xt, head, softcap):
    zs = (xs @ head.T).float()
    with torch.no_grad():
        zt = (xt @ head.T).float()
    if softcap > 0:
        zs = softcap * torch.tanh(zs / softcap)
        zt = softcap * torch.tanh(zt / softcap)
    log_q = F.log_softmax(zs, dim=-1)
    log_p = F.log_softmax(zt, dim=-1).detach()
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), dim=0) - math.log(2.0)
    # kl_div(input, target, log_target=True) = sum exp(target) (target - input) = KL(target || input)
    kl_pm = F.kl_div(log_m, log_p, reduction="none", log_target=True).sum(-1)
    kl_qm = F.kl_div(log_m, log_q, reduction="none", log_target=True).sum(-1)
    return (0.5 * (kl_pm + kl_qm)).mean()


def time_step(xs, xt, head, softcap, warmup=2, reps=10):
    def step():
        xs.grad = None
        jsd_loss(xs, xt, head, softcap).backward()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("torch_baseline.py: torch sees no CUDA device")
    torch.manual_seed(0)
    lines = []
    for name, d, vocab, softcap in MODELS:
        head = (torch.randn(vocab, d, device="cuda") * (3.0 / math.sqrt(d))).to(torch.bfloat16)
        for tokens in TOKENS:
            xs = torch.randn(tokens, d, device="cuda").to(torch.bfloat16).requires_grad_(True)
            xt = torch.randn(tokens, d, device="cuda").to(torch.bfloat16)
            try:
                xs.grad = torch.empty_like(xs)  # the output counts as an output, not as extra memory
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                ms = time_step(xs, xt, head, softcap)
                peak = torch.cuda.max_memory_allocated() - base
                lines.append(f"lm_head_jsd {name} {tokens} {ms:.4f} {peak}")
            except torch.cuda.OutOfMemoryError:
                lines.append(f"lm_head_jsd {name} {tokens} nan nan")
            print(lines[-1], flush=True)
            del xs, xt
            torch.cuda.empty_cache()
        del head
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
