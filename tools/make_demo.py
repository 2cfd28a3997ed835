#!/usr/bin/env python3
"""Makes the bundled demo: a small GPT-2 model trained on fortune-cookie quotes, and a concept
dataset of contrastive pairs built from the same quotes.

Input: the topic files of the Debian package `fortunes` (+ `fortunes-min`), unpacked by
tools/make_demo.sh into a scratch folder (never committed). Each file is a list of quotes
separated by lines holding a single `%`.

Output (see demo/README.md for what each part is and why):

  demo/model/   a Hugging Face folder: config.json, generation_config.json, model.safetensors
                (float16), tokenizer.json, tokenizer_config.json (with a chat template)
  demo/data/<concept>.jsonl           training pairs
  demo/data/<concept>.heldout.jsonl   held-out pairs (quotes never in the training pairs)

The model is trained on two kinds of documents mixed in one token stream:
  * raw quotes: `<|bos|>quote<|endoftext|>`
  * chat turns rendered with the chat template: a request for a saying (generic, or about one
    topic) answered by a quote from that topic's file, so that the prompt's topic steers the
    answer and a steering vector has something to find.
The committed model has a second stage on top (--init-from demo/model --chat-only, with
--chat-topics, --concept-copies and --generic-copies): chat turns only, fewer topics, the
concept's quotes repeated, and generic requests answered from the whole collection, so that the
concept is rare unless asked for and the model's replies follow a request for it (the exact
commands are in demo/README.md).

Everything is seeded. Training is bounded in wall time (--minutes), so the exact weights depend
on the machine's speed; the dataset does not (it only depends on the quotes, --seed, --concept
and --chat-topics).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import sys
import time
from pathlib import Path

BOS, EOS, USER, ASSISTANT, END = "<|bos|>", "<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>"
SPECIAL = [EOS, BOS, USER, ASSISTANT, END]

# Phi-3-like: one shared opening `<|bos|><|user|>\n` (prefix_len 3), the assistant header
# `<|assistant|>\n` ends the prompt, `<|end|>` ends a turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{{ message['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# fortune file -> topic as written in prompts; files not listed are used as raw text only.
TOPICS = {
    "food": "food", "love": "love", "computers": "computers", "science": "science",
    "work": "work", "politics": "politics", "sports": "sports", "law": "the law",
    "medicine": "medicine", "education": "education", "pets": "pets", "kids": "children",
    "literature": "books", "men-women": "men and women", "songs-poems": "songs",
    "art": "art", "people": "people", "wisdom": "wisdom", "linux": "linux",
    "drugs": "drugs", "news": "the news", "startrek": "Star Trek", "magic": "magic",
}
RAW_ONLY_SKIP = {"ascii-art", "translate-me", "pratchett"}

GENERIC_PROMPTS = [
    "Tell me a saying.", "Give me a quote.", "Share a fortune with me.", "Say something wise.",
    "What is a good quote?", "Tell me something memorable.", "Give me a fortune cookie.",
    "Quote something for me.",
]
TOPIC_PROMPTS = [
    "Tell me a saying about {t}.", "Give me a quote about {t}.", "Share a fortune about {t}.",
    "What is a good quote about {t}?", "Say something about {t}.", "Quote something about {t}.",
]


def clean(text: str) -> str:
    text = re.sub(r".\x08", "", text)  # overstriking (bold/underline in `love`)
    text = text.replace("\t", "    ")
    text = "".join(ch for ch in text if ch == "\n" or ch >= " ")
    return text.strip()


def read_quotes(fortune_dir: Path) -> dict[str, list[str]]:
    out = {}
    for path in sorted(fortune_dir.iterdir()):
        if "." in path.name or path.is_symlink() or not path.is_file() or path.name in RAW_ONLY_SKIP:
            continue
        raw = path.read_bytes().decode("utf-8", errors="replace")
        quotes = [clean(q) for q in re.split(r"^%$", raw, flags=re.M)]
        quotes = [q for q in quotes if 10 <= len(q) <= 600]
        if quotes:
            out[path.name] = quotes
    if not out:
        sys.exit(f"make_demo: no fortune files in {fortune_dir}")
    return out


def render_chat(prompt: str) -> str:
    return f"{BOS}{USER}\n{prompt}{END}\n{ASSISTANT}\n"


def build_documents(quotes: dict[str, list[str]], rng: random.Random, chat_copies: int,
                    topic_prob: float = 0.7, chat_topics: list[str] | None = None,
                    generic_copies: int = 0, concept: str | None = None, concept_copies: int | None = None) -> list[str]:
    docs = [f"{BOS}{q}{EOS}" for qs in quotes.values() for q in qs]
    topical = [f for f in quotes if f in TOPICS and (chat_topics is None or f in chat_topics)]
    for _ in range(generic_copies):
        for f in quotes:
            if f not in topical:
                for q in quotes[f]:
                    docs.append(f"{render_chat(rng.choice(GENERIC_PROMPTS))}{q}{END}\n{EOS}")
    copies = {f: concept_copies if f == concept and concept_copies is not None else chat_copies for f in topical}
    for c in range(max(copies.values(), default=0)):
        for f in topical:
            if c >= copies[f]:
                continue
            for q in quotes[f]:
                if rng.random() < topic_prob:
                    prompt = rng.choice(TOPIC_PROMPTS).format(t=TOPICS[f])
                else:
                    prompt = rng.choice(GENERIC_PROMPTS)
                docs.append(f"{render_chat(prompt)}{q}{END}\n{EOS}")
    rng.shuffle(docs)
    return docs


def make_dataset(quotes: dict[str, list[str]], concept_file: str, out_dir: Path, seed: int, heldout_frac: float,
                 chat_topics: list[str] | None = None):
    """Contrastive pairs (docs/method.md section 1 field names). positive: a request for a saying about
    the concept answered by a quote of the concept's file; negative: a request without the concept
    (half generic, half about another topic) answered by a quote from another topical file."""
    rng = random.Random(seed)
    concept = TOPICS[concept_file]
    pos = list(quotes[concept_file])
    rng.shuffle(pos)
    others = [(f, q) for f in sorted(quotes) if f in TOPICS and f != concept_file
              and (chat_topics is None or f in chat_topics) for q in quotes[f]]
    rng.shuffle(others)
    n_held = max(1, int(round(len(pos) * heldout_frac)))
    splits = {"heldout": pos[:n_held], "train": pos[n_held:]}
    neg_iter = iter(others)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, positives in splits.items():
        name = f"{concept_file}.jsonl" if split == "train" else f"{concept_file}.{split}.jsonl"
        rows = []
        for q in positives:
            neg_file, neg_q = next(neg_iter)
            if rng.random() < 0.5:
                neg_prompt = rng.choice(GENERIC_PROMPTS)
            else:
                neg_prompt = rng.choice(TOPIC_PROMPTS).format(t=TOPICS[neg_file])
            rows.append({
                "negative_input": neg_prompt,
                "negative_output": neg_q,
                "positive_input": rng.choice(TOPIC_PROMPTS).format(t=concept),
                "positive_output": q,
                "concept": concept,
                "concept_id": 0,
            })
        with open(out_dir / name, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(f"dataset: {out_dir / name}: {len(rows)} pairs", flush=True)


def train_tokenizer(docs: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = [d for d in docs]
    for s in SPECIAL:
        texts = [t.replace(s, " ") for t in texts]
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, tok.token_to_id(BOS))])
    return tok


def save_tokenizer(tok, out: Path, n_positions: int):
    tok.save(str(out / "tokenizer.json"))
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS, "unk_token": None,
        "add_bos_token": True, "add_eos_token": False,
        "model_max_length": n_positions,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
        "additional_special_tokens": [USER, ASSISTANT, END],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")


def concept_gap(model, hf_tok, rows):
    """Mean per-token NLL of the concept responses yᶜ after the concept prompt xᶜ and after the
    prompt without it x: the gap is what the prompt's topic does, the effect a steering vector
    should reproduce by injection. Computed on the held-out pairs."""
    import torch

    def nll(prompt, response):
        p = hf_tok(render_chat(prompt), add_special_tokens=False)["input_ids"]
        r = hf_tok(response + END, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([p + r])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, len(p) - 1:-1].float(), -1)
        return -logp.gather(1, torch.tensor(r)[:, None]).sum().item(), len(r)

    totals = {"with": [0.0, 0], "without": [0.0, 0]}
    for row in rows:
        for key, prompt in (("with", row["positive_input"]), ("without", row["negative_input"])):
            s, n = nll(prompt, row["positive_output"])
            totals[key][0] += s
            totals[key][1] += n
    return {k: round(v[0] / v[1], 4) for k, v in totals.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fortunes", type=Path, required=True, help="folder with the fortune topic files")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "demo")
    ap.add_argument("--concept", default="food", choices=sorted(TOPICS))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--minutes", type=float, default=12.0, help="training wall-time budget")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--n-embd", type=int, default=192)
    ap.add_argument("--n-layer", type=int, default=4)
    ap.add_argument("--n-head", type=int, default=4)
    ap.add_argument("--n-positions", type=int, default=256)
    ap.add_argument("--block", type=int, default=128, help="training sequence length")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--chat-copies", type=int, default=3, help="chat documents per topical quote")
    ap.add_argument("--topic-prob", type=float, default=0.7,
                    help="share of chat documents whose request names the quote's topic")
    ap.add_argument("--chat-topics", help="comma-separated topic files of the chat documents (default: all of TOPICS)")
    ap.add_argument("--generic-copies", type=int, default=0,
                    help="chat documents per quote of the other files, all with a generic request")
    ap.add_argument("--concept-copies", type=int, help="chat documents per quote of the concept (default: --chat-copies)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init-from", type=Path,
                    help="continue from this model folder (its tokenizer kept) instead of training from scratch")
    ap.add_argument("--chat-only", action="store_true",
                    help="train on the chat documents only (a topic-following stage after --init-from)")
    ap.add_argument("--data-only", action="store_true", help="only (re)write the concept dataset")
    args = ap.parse_args()

    quotes = read_quotes(args.fortunes)
    print(f"quotes: {sum(map(len, quotes.values()))} in {len(quotes)} files", flush=True)
    chat_topics = args.chat_topics.split(",") if args.chat_topics else None
    if chat_topics is not None:
        unknown = [t for t in chat_topics if t not in TOPICS]
        if unknown or args.concept not in chat_topics:
            sys.exit(f"make_demo: --chat-topics must be topic files ({', '.join(sorted(TOPICS))}) "
                     f"and include --concept {args.concept}; got {args.chat_topics}")
    make_dataset(quotes, args.concept, args.out / "data", args.seed, heldout_frac=0.2, chat_topics=chat_topics)
    if args.data_only:
        return

    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, GenerationConfig, PreTrainedTokenizerFast

    random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    docs = build_documents(quotes, rng, args.chat_copies, args.topic_prob, chat_topics, args.generic_copies,
                           args.concept, args.concept_copies)
    if args.chat_only:
        docs = [d for d in docs if d.startswith(BOS + USER)]
    init_summary = None
    if args.init_from:
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(str(args.init_from / "tokenizer.json"))
        # read now: --init-from may be the folder this run overwrites (the second stage of demo/README.md)
        if (args.init_from / "training_summary.json").is_file():
            init_summary = json.loads((args.init_from / "training_summary.json").read_text())
    else:
        tok = train_tokenizer(docs, args.vocab)
    ids = []
    for enc in tok.encode_batch(docs, add_special_tokens=False):
        ids.extend(enc.ids)
    data = torch.tensor(ids, dtype=torch.long)
    n_val = len(data) // 50
    train_data, val_data = data[:-n_val], data[-n_val:]
    print(f"tokens: {len(data)} ({sum(map(len, docs)) / len(data):.2f} chars/token), vocab {tok.get_vocab_size()}",
          flush=True)

    config = GPT2Config(
        vocab_size=tok.get_vocab_size(), n_positions=args.n_positions, n_embd=args.n_embd,
        n_layer=args.n_layer, n_head=args.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=tok.token_to_id(BOS), eos_token_id=tok.token_to_id(EOS), pad_token_id=tok.token_to_id(EOS),
        tie_word_embeddings=True)
    if args.init_from:
        model = GPT2LMHeadModel.from_pretrained(args.init_from, dtype=torch.float32)
        config = model.config
    else:
        model = GPT2LMHeadModel(config)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(args.seed)

    def batch(source):
        ix = torch.randint(len(source) - args.block - 1, (args.batch,), generator=gen)
        x = torch.stack([source[i:i + args.block] for i in ix])
        y = torch.stack([source[i + 1:i + args.block + 1] for i in ix])
        return x, y

    @torch.no_grad()
    def val_loss():
        model.eval()
        g = torch.Generator().manual_seed(0)
        losses = []
        for _ in range(8):
            ix = torch.randint(len(val_data) - args.block - 1, (args.batch,), generator=g)
            x = torch.stack([val_data[i:i + args.block] for i in ix])
            y = torch.stack([val_data[i + 1:i + args.block + 1] for i in ix])
            logits = model(input_ids=x, use_cache=False).logits
            losses.append(torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
        model.train()
        return sum(losses) / len(losses)

    budget = args.minutes * 60
    start = time.time()
    step, ema = 0, None
    warmup = 50
    model.train()
    while True:
        elapsed = time.time() - start
        if elapsed >= budget:
            break
        # warm-up, then cosine decay over the *time* budget (the step count is unknown up front)
        frac = min(1.0, elapsed / budget)
        lr = args.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x, y = batch(train_data)
        logits = model(input_ids=x, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        step += 1
        if step % 50 == 0:
            tps = step * args.batch * args.block / (time.time() - start)
            print(f"step {step} loss {ema:.3f} lr {lr:.2e} {tps:.0f} tok/s {elapsed / 60:.1f} min", flush=True)
    final_val = val_loss()
    print(f"final: {step} steps, train loss (ema) {ema:.3f}, validation loss {final_val:.3f}", flush=True)

    out = args.out / "model"
    out.mkdir(parents=True, exist_ok=True)
    model = model.to(torch.float16)
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=[tok.token_to_id(END), config.eos_token_id],
        pad_token_id=config.pad_token_id, do_sample=True, top_p=0.9, temperature=0.8, max_new_tokens=64)
    model.save_pretrained(out, safe_serialization=True)
    save_tokenizer(tok, out, args.n_positions)
    summary = {"init_from": str(args.init_from.name) if args.init_from else None, "chat_only": args.chat_only,
               "concept": args.concept, "chat_topics": chat_topics, "chat_copies": args.chat_copies,
               "concept_copies": args.concept_copies, "generic_copies": args.generic_copies,
               "lr": args.lr, "topic_prob": args.topic_prob, "steps": step, "train_loss_ema": round(ema, 4), "validation_loss": round(final_val, 4),
               "minutes": args.minutes, "seed": args.seed, "parameters": n_params, "tokens": len(data)}
    if init_summary is not None:
        summary["init_summary"] = init_summary
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    # Samples from the saved folder, the way a user would load it.
    hf_tok = PreTrainedTokenizerFast.from_pretrained(out)
    m = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float32).eval()
    torch.manual_seed(args.seed)
    prompts = ["Tell me a saying.", "Give me a quote about food.", "Share a fortune about love.",
               "Say something about computers."]
    for p in prompts:
        text = hf_tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        enc = hf_tok(text, return_tensors="pt", add_special_tokens=False)
        for mode, kw in (("greedy", dict(do_sample=False)), ("top-p", dict(do_sample=True, top_p=0.9, temperature=0.8))):
            outp = m.generate(**enc, max_new_tokens=48, **kw)
            reply = hf_tok.decode(outp[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
            print(f"[{mode}] {p} -> {reply!r}", flush=True)
    heldout = [json.loads(l) for l in open(args.out / "data" / f"{args.concept}.heldout.jsonl", encoding="utf-8")]
    gap = concept_gap(m, hf_tok, heldout)
    print(f"held-out {args.concept} responses, NLL/token: after the concept prompt {gap['with']}, "
          f"after the prompt without it {gap['without']}", flush=True)
    summary["heldout_concept_nll"] = gap
    (out / "training_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    raw = hf_tok("The", return_tensors="pt")
    outp = m.generate(**raw, max_new_tokens=40, do_sample=False)
    print(f"[raw greedy] {hf_tok.decode(outp[0], skip_special_tokens=True)!r}", flush=True)


if __name__ == "__main__":
    main()
