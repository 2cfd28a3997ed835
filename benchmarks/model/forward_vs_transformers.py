#!/usr/bin/env python3
"""Forward tokens/s of the native model runtime against transformers, in one process.

A GPT-2-124M-shaped checkpoint with transformers' random initialisation (n_embd 768, 12 layers,
12 heads, vocabulary 50 257, 1 024 positions) is built once; both sides then run the same token
batches with full logits [B x T x V] out, fp32, on CPU:

  transformers  GPT2LMHeadModel(input_ids, use_cache=False) under torch.inference_mode(), its
                default attention (sdpa)
  cdas          cdas_model_forward(..., logits_out) through libcdas (ctypes), weights handed over
                as views of the same fp32 tensors (no copy)

libcdas links the libtorch of the torch wheel this script imports (same version), so both share
one libtorch and one intra-op thread pool: torch.set_num_threads sets both. Figures are medians
of --repeat runs after --warmup runs; the logits of the two sides are compared before timing.

    benchmarks/run-model-forward.sh        (finds libcdas and the venv, updates RESULTS.md)
    python3 forward_vs_transformers.py --library build/libcdas.so [--threads N] [--results RESULTS.md]
"""
from __future__ import annotations

import argparse
import ctypes as C
import os
import platform
import re
import statistics
import sys
import time

import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

WORKLOADS = [(1, 128), (1, 512), (8, 128)]  # (batch, tokens per row)


# ---- the slice of cdas.h this script calls (keep in step with native/include/cdas.h) ------------

class ModelConfig(C.Structure):
    _fields_ = [
        ("family", C.c_int32), ("num_layers", C.c_int32), ("hidden_size", C.c_int32), ("num_heads", C.c_int32),
        ("num_kv_heads", C.c_int32), ("head_dim", C.c_int32), ("intermediate_size", C.c_int32),
        ("vocab_size", C.c_int32), ("max_positions", C.c_int32), ("activation", C.c_int32), ("norm_eps", C.c_double),
        ("attention_bias", C.c_int32), ("attention_output_bias", C.c_int32), ("mlp_bias", C.c_int32),
        ("tie_word_embeddings", C.c_int32), ("rope_type", C.c_int32), ("rope_original_max_positions", C.c_int32),
        ("rope_theta", C.c_double), ("rope_partial_factor", C.c_double), ("rope_factor", C.c_double),
        ("rope_low_freq_factor", C.c_double), ("rope_high_freq_factor", C.c_double),
        ("rope_attention_factor", C.c_double), ("rope_beta_fast", C.c_double), ("rope_beta_slow", C.c_double),
        ("rope_short_factor", C.c_void_p), ("rope_long_factor", C.c_void_p), ("rope_factor_count", C.c_int32),
        ("sliding_window", C.c_int32), ("layer_sliding", C.c_void_p), ("query_pre_attn_scalar", C.c_double),
        ("attn_logit_softcap", C.c_double), ("final_logit_softcap", C.c_double),
        ("embedding_multiplier", C.c_double), ("dtype", C.c_int32), ("device_type", C.c_int32),
        ("device_index", C.c_int32), ("num_threads", C.c_int32)]


class TensorView(C.Structure):
    _fields_ = [("name", C.c_char_p), ("dtype", C.c_int32), ("ndim", C.c_int32), ("shape", C.c_int64 * 4),
                ("data", C.c_void_p)]


class TokenBatch(C.Structure):
    _fields_ = [("batch", C.c_int64), ("seq_len", C.c_int64), ("tokens", C.c_void_p), ("attention_mask", C.c_void_p)]


FAMILY_GPT2, ACTIVATION_GELU_NEW = 4, 2


class NativeModel:
    def __init__(self, library: str, hf: GPT2LMHeadModel):
        self.lib = C.CDLL(library)
        self.lib.cdas_last_error.restype = C.c_char_p
        cfg = hf.config
        c = ModelConfig()
        self.check(self.lib.cdas_model_config_default(C.byref(c)))
        c.family, c.num_layers, c.hidden_size = FAMILY_GPT2, cfg.n_layer, cfg.n_embd
        c.num_heads = c.num_kv_heads = cfg.n_head
        c.head_dim = cfg.n_embd // cfg.n_head
        c.intermediate_size = cfg.n_inner or 4 * cfg.n_embd
        c.vocab_size, c.max_positions = cfg.vocab_size, cfg.n_positions
        c.activation, c.norm_eps = ACTIVATION_GELU_NEW, cfg.layer_norm_epsilon
        c.attention_bias = c.attention_output_bias = c.mlp_bias = c.tie_word_embeddings = 1
        # Only the checkpoint's tensors (the causal-mask buffers of old transformers versions are not weights).
        self.tensors = {k: v.detach().contiguous() for k, v in hf.state_dict().items()
                        if not k.endswith((".attn.bias", ".attn.masked_bias"))}
        views = (TensorView * len(self.tensors))()
        self.names = []
        for i, (name, t) in enumerate(self.tensors.items()):
            self.names.append(name.encode())
            views[i].name, views[i].dtype, views[i].ndim = self.names[-1], 0, t.dim()
            for k, s in enumerate(t.shape):
                views[i].shape[k] = s
            views[i].data = t.data_ptr()
        self.handle = C.c_void_p()
        self.check(self.lib.cdas_model_create(C.byref(c), views, C.c_int64(len(views)), C.byref(self.handle)))
        self.vocab = cfg.vocab_size

    def check(self, status: int) -> None:
        if status != 0:
            raise RuntimeError(f"libcdas status {status}: {self.lib.cdas_last_error().decode()}")

    def logits(self, ids: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        ids32 = ids.to(torch.int32).contiguous()
        batch = TokenBatch(ids.shape[0], ids.shape[1], ids32.data_ptr(), None)
        self.check(self.lib.cdas_model_forward(self.handle, C.byref(batch), None, C.c_int32(-1), None, None,
                                               C.c_void_p(out.data_ptr())))
        return out

    def close(self) -> None:
        self.lib.cdas_model_destroy(self.handle)


def median_seconds(fn, warmup: int, repeat: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--library", required=True, help="libcdas.so")
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads for both sides (0 = torch's default)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--results", help="RESULTS.md to update between its model-forward markers")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # 124M parameters, transformers' random init
    native = NativeModel(args.library, hf)
    rows = []
    with torch.inference_mode():
        for batch, tokens in WORKLOADS:
            ids = torch.randint(0, hf.config.vocab_size, (batch, tokens), generator=torch.Generator().manual_seed(1))
            out = torch.empty(batch, tokens, hf.config.vocab_size)
            want = hf(ids, use_cache=False).logits
            diff = (native.logits(ids, out) - want).abs().max().item()
            if not diff <= 1e-3:
                sys.exit(f"logits differ by {diff} at B={batch}, T={tokens}: not timing a wrong result")
            t_hf = median_seconds(lambda: hf(ids, use_cache=False).logits, args.warmup, args.repeat)
            t_native = median_seconds(lambda: native.logits(ids, out), args.warmup, args.repeat)
            n = batch * tokens
            rows.append((batch, tokens, n / t_native, n / t_hf, t_hf / t_native, diff))
            print(f"B={batch} T={tokens}: cdas {n / t_native:8.0f} tok/s  transformers {n / t_hf:8.0f} tok/s  "
                  f"ratio {t_hf / t_native:.2f}  max|logit diff| {diff:.1e}", flush=True)
    native.close()

    table = ["| batch x tokens | cdas forward (tokens/s) | transformers forward (tokens/s) | cdas / transformers | max abs logit diff |",
             "|---|---|---|---|---|"]
    for b, t, ours, theirs, ratio, diff in rows:
        table.append(f"| {b} x {t} | {ours:,.0f} | {theirs:,.0f} | {ratio:.2f}x | {diff:.1e} |")
    table.append("")
    table.append(f"GPT-2-124M shape (random weights), fp32, full logits out, CPU: {platform.processor() or platform.machine()}, "
                 f"{torch.get_num_threads()} threads, {os.cpu_count()} cores; torch {torch.__version__}, "
                 f"transformers {transformers.__version__} (sdpa); medians of {args.repeat} after {args.warmup} warm-up runs, "
                 f"both in one process (`benchmarks/run-model-forward.sh`).")
    text = "\n".join(table)
    print(text)
    if args.results:
        with open(args.results) as f:
            md = f.read()
        begin, end = "<!-- model-forward:begin -->", "<!-- model-forward:end -->"
        if begin not in md:
            md += ("\n## Model runtime: forward tokens/s on CPU\n\nIssue 3: the native runtime against transformers on the same "
                   "checkpoint, same tokens, same process.\n\n" + begin + "\n" + end + "\n")
        md = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: begin + "\n" + text + "\n" + end, md, flags=re.S)
        with open(args.results, "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
