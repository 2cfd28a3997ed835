#!/usr/bin/env python3
"""The LM-head + soft-cap + JSD step composed from torch ops, the way PyTorch users write it
(logits = x @ W.T, log_softmax, kl_div, autograd), timed the same way as gpu_check_bench:
median of CUDA-event timings after warm-up, forward + backward, bf16 inputs.

Each measured shape is printed and appended to --out at once (flushed) as a row of the table of
gpu_check_bench --bench (impl "torch"):

  | lm_head_jsd | <model> | <T> | torch | <ms> | <TF/s> | | <peak extra MiB> | <note> |

"peak extra MiB" is torch's allocator high-water mark beyond the inputs and outputs; a shape
that does not fit in memory gets a row with the note "out of memory".
"""
import argparse
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# The same shapes as gpu_check_bench.cpp (kModels): keep them in step.
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


def time_step(xs, xt, head, softcap, warmup, reps, row_seconds):
    def step():
        xs.grad = None
        jsd_loss(xs, xt, head, softcap).backward()

    t0 = time.monotonic()
    step()
    torch.cuda.synchronize()
    first = time.monotonic() - t0
    for _ in range(warmup - 1):
        step()
    torch.cuda.synchronize()
    if first * reps > row_seconds:  # a slow call: fewer reps, at least 3
        reps = max(3, min(reps, int(row_seconds / max(first, 1e-9))))
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times), reps


def rate(v, unit):
    """3 significant digits at most, never in exponent form for GPU-sized values (as gpu_check_bench)."""
    a = abs(v)
    if a >= 100:
        return f"{v:.0f} {unit}"
    if a >= 10:
        return f"{v:.1f} {unit}"
    if a >= 1:
        return f"{v:.2f} {unit}"
    return f"{v:.3g} {unit}"


def emit(out, cells):
    line = "| " + " | ".join(cells) + " |"
    print(line, flush=True)
    if out:
        out.write(line + "\n")
        out.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="append the rows to this file")
    parser.add_argument("--models", default="gemma,llama", help="comma-separated: gemma, llama")
    parser.add_argument("--tokens", default=",".join(map(str, TOKENS)), help="comma-separated token counts")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--row-seconds", type=float, default=10.0)
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    wanted = {m.strip().lower() for m in args.models.split(",") if m.strip()}
    unknown = wanted - {name.split("-")[0] for name, *_ in MODELS}
    if unknown:
        parser.error(f"unknown model(s) {sorted(unknown)} (gemma, llama)")
    try:
        tokens = [int(t) for t in args.tokens.split(",")]
    except ValueError:
        parser.error(f"bad --tokens '{args.tokens}'")
    if not torch.cuda.is_available():
        sys.exit("torch_baseline.py: torch sees no CUDA device")
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}", flush=True)
    torch.manual_seed(0)
    out = open(args.out, "a") if args.out else None
    for name, d, vocab, softcap in MODELS:
        if name.split("-")[0] not in wanted:
            continue
        head = (torch.randn(vocab, d, device="cuda") * (3.0 / math.sqrt(d))).to(torch.bfloat16)
        for t in tokens:
            print(f"RUN torch lm_head_jsd {name} T={t}", file=sys.stderr, flush=True)
            xs = torch.randn(t, d, device="cuda").to(torch.bfloat16).requires_grad_(True)
            xt = torch.randn(t, d, device="cuda").to(torch.bfloat16)
            try:
                xs.grad = torch.empty_like(xs)  # the output counts as an output, not as extra memory
                torch.cuda.synchronize()
                base = torch.cuda.memory_allocated()
                torch.cuda.reset_peak_memory_stats()
                ms, reps = time_step(xs, xt, head, softcap, args.warmup, args.reps, args.row_seconds)
                peak = torch.cuda.max_memory_allocated() - base
                tfs = 3.0 * 2.0 * t * d * vocab / (ms * 1e-3) / 1e12
                note = args.note
                if reps < args.reps:
                    note = "; ".join(x for x in (note, f"median of {reps} (slow call)") if x)
                emit(out, ["lm_head_jsd", name, str(t), "torch", f"{ms:.3f}", rate(tfs, "TF/s"), "",
                           f"{peak / 2**20:.0f}", note])
            except torch.cuda.OutOfMemoryError:
                emit(out, ["lm_head_jsd", name, str(t), "torch", "", "", "", "",
                           "; ".join(x for x in (args.note, "out of memory") if x)])
            xs.grad = None
            del xs, xt
            torch.cuda.empty_cache()
        del head
        torch.cuda.empty_cache()
    if out:
        out.close()


if __name__ == "__main__":
    main()
