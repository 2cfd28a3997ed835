#!/usr/bin/env python3
"""Turns a JMH JSON report and the memory probe's TSV into the CPU tables of RESULTS.md.

  format_results.py JMH.json MEMORY.tsv                        the kernels table (markdown)
  format_results.py --update RESULTS.md TABLE.md               replaces the kernels section of RESULTS.md
  format_results.py --train-step JMH.json MEMORY.tsv           the training-step table
  format_results.py --update-train-step RESULTS.md TABLE.md    replaces the training-step section

Ratios are against the libtorch-composed implementation measured in the same run:
speed-up = torch median / median, memory = peak extra / torch peak extra.
"""
import datetime
import json
import os
import platform
import re
import subprocess
import sys

BEGIN = "<!-- cpu-table:begin -->"
END = "<!-- cpu-table:end -->"
STEP_BEGIN = "<!-- train-step:begin -->"
STEP_END = "<!-- train-step:end -->"
STEP_SHAPES = {
    "gpt2": "GPT-2-124M shape (12 blocks, d=768, V=50257), 8 pairs, prompts ~32 + responses 64 tokens, layer 6",
    "gpt2-small-batch": "GPT-2-124M shape, 2 pairs, prompts ~16 + responses 16 tokens, layer 6",
}

OPS = {
    "LmHeadJsdBenchmark": "lm-head+jsd",
    "DiiBenchmark": "dii",
}
SHAPES = {
    ("lm-head+jsd", "small"): "T=64 d=128 V=4099",
    ("lm-head+jsd", "gpt2"): "T=512 d=768 V=50257",
    ("dii", "small"): "T=257 d=128 r=1",
    ("dii", "gpt2"): "T=4096 d=768 r=1",
    ("dii", "gemma2b"): "T=8192 d=2304 r=1",
}


def machine():
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()[0]
    except (OSError, IndexError):
        java = "?"
    load = os.environ.get("CDAS_BENCH_LOAD", "")
    load = f"; load average at start {load}" if load else ""
    return f"{cpu}, {os.cpu_count()} cores; {java}; {datetime.date.today().isoformat()}{load}"


def load_memory(path):
    memory = {}
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) < 4:
            continue
        op, shape, impl, fields = parts[0], parts[1], parts[2], parts[3]
        op = "lm-head+jsd" if op == "lm-head" else op
        values = dict(re.findall(r"(\w+)=(\d+)", fields))
        if "peak_extra_bytes" in values:
            memory[(op, shape, impl)] = (int(values["peak_extra_bytes"]), int(values.get("workspace_bytes", 0)))
    return memory


def table(jmh_path, memory_path):
    runs = json.load(open(jmh_path))
    memory = load_memory(memory_path)
    rows = {}
    for run in runs:
        cls = run["benchmark"].split(".")[-2]
        op = OPS.get(cls, cls)
        shape = run["params"]["shape"]
        impl = run["params"]["impl"]
        metric = run["primaryMetric"]
        median = metric["scorePercentiles"]["50.0"]
        unit = metric["scoreUnit"]
        if unit != "ms/op":
            raise SystemExit(f"unexpected unit {unit} in {jmh_path}")
        rows[(op, shape, impl)] = median
    out = [f"Machine: {machine()}.", "",
           "| operation | shape | implementation | median ms | speed-up vs torch | peak extra MB | memory vs torch |",
           "|---|---|---|---:|---:|---:|---:|"]
    for (op, shape, impl), median in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        base = rows.get((op, shape, "torch-composed"))
        speed = f"{base / median:.2f}x" if base else "-"
        # Peak extra memory: the resident high-water rise during the call, or the kernel's own
        # workspace high-water mark when that is larger (memory reused from the allocator's
        # free lists does not raise the resident size, but it is still held by the call).
        mem = memory.get((op, shape, impl))
        base_mem = memory.get((op, shape, "torch-composed"))
        extra = max(mem) if mem else None
        base_extra = max(base_mem) if base_mem else None
        mem_s = f"{extra / 2**20:.1f}" if extra is not None else "-"
        mem_ratio = f"{extra / base_extra:.3f}" if extra is not None and base_extra else "-"
        out.append(f"| {op} | {SHAPES.get((op, shape), shape)} | {impl} | {median:.3f} | {speed} | {mem_s} | {mem_ratio} |")
    return "\n".join(out) + "\n"


def train_step_table(jmh_path, memory_path):
    """One row per (states, implementation): median step time and peak extra memory, each against
    the torch-composed loss with the same states, measured in the same run."""
    runs = json.load(open(jmh_path))
    memory = {}
    for line in open(memory_path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) >= 4:
            values = dict(re.findall(r"(\w+)=(\d+)", parts[3]))
            if "peak_extra_bytes" in values:
                memory[(parts[0], parts[1], parts[2])] = (int(values["peak_extra_bytes"]), int(values.get("workspace_bytes", 0)))
    rows = {}
    for run in runs:
        if not run["benchmark"].endswith("TrainingStepBenchmark.trainingStep"):
            continue
        p = run["params"]
        metric = run["primaryMetric"]
        if metric["scoreUnit"] != "ms/op":
            raise SystemExit(f"unexpected unit {metric['scoreUnit']} in {jmh_path}")
        rows[(p["shape"], p["states"], p["impl"])] = (metric["scorePercentiles"]["50.0"], len(metric.get("rawData", [[]])[0]))
    out = [f"Machine: {machine()}.", "",
           "| step | shape | loss | median s | speed-up vs torch | peak extra MB | memory vs torch | state cache MB |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    for (shape, states, impl), (median, n) in sorted(rows.items()):
        base = rows.get((shape, states, "torch-composed"))
        speed = f"{base[0] / median:.2f}x" if base else "-"
        probe = "train-step-cached" if states == "cached" else "train-step"
        mem = memory.get((probe, shape, impl))
        base_mem = memory.get((probe, shape, "torch-composed"))
        mem_s = f"{mem[0] / 2**20:.1f}" if mem else "-"
        ratio = f"{mem[0] / base_mem[0]:.3f}" if mem and base_mem and base_mem[0] else "-"
        cache = f"{mem[1] / 2**20:.1f}" if mem and states == "cached" else "-"
        step = "later epoch (states cached)" if states == "cached" else "first epoch (all passes)"
        out.append(f"| {step} | {shape} | {impl} | {median / 1000:.2f} | {speed} | {mem_s} | {ratio} | {cache} |")
    out.append("")
    for shape in sorted({k[0] for k in rows}):
        out.append(f"`{shape}`: {STEP_SHAPES.get(shape, shape)}; medians of {max(v[1] for k, v in rows.items() if k[0] == shape)} steps.")
    return "\n".join(out) + "\n"


def update(results_path, table_path, begin=BEGIN, end=END):
    text = open(results_path).read() if os.path.exists(results_path) else ""
    block = f"{begin}\n{open(table_path).read()}{end}"
    if begin in text and end in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text += "\n" + block + "\n"
    tmp = results_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, results_path)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--update":
        update(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "--train-step":
        sys.stdout.write(train_step_table(sys.argv[2], sys.argv[3]))
    elif len(sys.argv) == 4 and sys.argv[1] == "--update-train-step":
        update(sys.argv[2], sys.argv[3], STEP_BEGIN, STEP_END)
    elif len(sys.argv) == 3:
        sys.stdout.write(table(sys.argv[1], sys.argv[2]))
    else:
        raise SystemExit(__doc__)
