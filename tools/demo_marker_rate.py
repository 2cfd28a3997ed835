#!/usr/bin/env python3
"""How often sampled replies of the demo model show the Star Trek concept, unsteered and steered.

Reads a vector written by `dist/bin/cdas-native train` (tensor `w`, metadata `layer`,
`factor_positive`, `factor_negative`) and clamps wᵀh_L to a⁺ (inject) or a⁻ (suppress) at every
position from prefix_len (3) on, prompt and generated tokens, as `steer` does (docs/method.md
section 1), with Hugging Face transformers in float32. Counts the replies (top-p 0.9,
temperature 0.8, 48 new tokens, seeded) that contain a Star Trek marker (stardate, Kirk, Spock,
McCoy, Enterprise, Klingon, Vulcan, ...):

  * after the 8 generic requests and 8 requests about other topics, unsteered, injected and
    suppressed;
  * after the 6 Star Trek requests, unsteered and suppressed.

Usage: .deps/pyenv/bin/python tools/demo_marker_rate.py [--model demo/model] --vector V.safetensors [--samples 10]
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_demo import GENERIC_PROMPTS, TOPIC_PROMPTS, render_chat  # noqa: E402

MARKERS = re.compile(r"stardate|Kirk|Spock|McCoy|Enterprise|Klingon|Vulcan|starship|Scotty|Sulu|Uhura|Chekov", re.I)
PREFIX_LEN = 3  # <|bos|><|user|>\n


def factor(meta: dict, key: str) -> float:
    v = json.loads(meta[key])
    return float(v[0] if isinstance(v, list) else v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parent.parent / "demo" / "model")
    ap.add_argument("--vector", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=10, help="replies per prompt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)

    with safe_open(str(args.vector), "pt") as f:
        w = f.get_tensor("w").float().reshape(-1)
        meta = f.metadata()
    layer, a_pos, a_neg = int(meta["layer"]), factor(meta, "factor_positive"), factor(meta, "factor_negative")
    tok = PreTrainedTokenizerFast.from_pretrained(args.model)
    model = GPT2LMHeadModel.from_pretrained(args.model, dtype=torch.float32).eval()
    clamp = {"a": None}

    def hook(module, inputs, output):
        if clamp["a"] is None:
            return None
        h = output[0] if isinstance(output, tuple) else output
        tail = h[:, PREFIX_LEN:]
        h = torch.cat([h[:, :PREFIX_LEN], tail + (clamp["a"] - tail @ w)[..., None] * w], 1)
        return (h,) + tuple(output[1:]) if isinstance(output, tuple) else h

    model.transformer.h[layer].register_forward_hook(hook)

    def rate(prompts, a):
        clamp["a"] = a
        torch.manual_seed(args.seed)
        hits = total = 0
        for p in prompts:
            ids = torch.tensor([tok(render_chat(p), add_special_tokens=False)["input_ids"]] * args.samples)
            with torch.no_grad():
                # no KV cache: the hook sees the whole sequence, so positions are absolute
                out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=48, do_sample=True,
                                     top_p=0.9, temperature=0.8, use_cache=False, pad_token_id=0, eos_token_id=[4, 0])
            for o in out:
                hits += bool(MARKERS.search(tok.decode(o[ids.shape[1]:], skip_special_tokens=True)))
                total += 1
        return hits, total

    neutral = GENERIC_PROMPTS + [p.format(t=t) for t in ("food", "love", "computers", "politics") for p in TOPIC_PROMPTS[:2]]
    concept = [p.format(t="Star Trek") for p in TOPIC_PROMPTS]
    print(f"vector {args.vector}: layer {layer}, a+ {a_pos:.4f}, a- {a_neg:.4f}; replies with a Star Trek marker:")
    for name, prompts, a in (("neutral requests, unsteered", neutral, None), ("neutral requests, injected", neutral, a_pos),
                             ("neutral requests, suppressed", neutral, a_neg), ("Star Trek requests, unsteered", concept, None),
                             ("Star Trek requests, suppressed", concept, a_neg)):
        hits, total = rate(prompts, a)
        print(f"  {name:31s} {hits:3d}/{total}", flush=True)


if __name__ == "__main__":
    main()
