#!/usr/bin/env python3
"""Shows that the CUDA emulation catches real kernel bugs: applies one deliberate bug at a time to
native/src/cuda (a transposed GEMM operand, a wrong leading dimension, three missing __syncthreads,
edge elements dropped by the vector path, two missing stream dependencies of the two-stream LM-head
schedule, a dW accumulated into the wrong direction set, an out-of-bounds access),
rebuilds libcdas_cuda_emu.so, runs the emulated check group that should catch it, and restores the
source. Prints one line per bug: caught (with the first failure) or MISSED. Exit 1 if any is missed.

    python3 tools/cuda_emu_mutations.py [--build build] [--only NAME]
    python3 tools/cuda_emu_mutations.py --check-targets     (ctest: the bugs still apply to the sources)

Needs a configured build directory (bash scripts/build.sh). Sources are restored even on Ctrl-C.
"""
import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MUTATIONS = [
    # name, file, original, mutated, check group
    ("transposed GEMM operand (logits: x as op T)", "native/src/cuda/lm_head_jsd.cu",
     "cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, vocab, n, dim, &one, head, g.input, dim, x,",
     "cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_T, vocab, n, dim, &one, head, g.input, dim, x,",
     "jsd-chunked"),
    ("wrong leading dimension (dx GEMM: ldc = dim + 1)", "native/src/cuda/lm_head_jsd.cu",
     "scalars + 1, dx, CUDA_R_32F, dim, g.compute",
     "scalars + 1, dx, CUDA_R_32F, dim + 1, g.compute",
     "jsd-chunked"),
    ("missing __syncthreads (block_sum: scratch reused before every warp read it)", "native/src/cuda/common.cuh",
     "    __syncthreads();  // scratch may still be read by a previous call\n",
     "",
     "dii"),
    ("edge elements dropped (LM-head rows: the 16-byte path taken when V % 4 == 3, the last 3 logits unread)",
     "native/src/cuda/lm_head_jsd.cu",
     "        if (vocab % 4 == 0)\n",
     "        if (vocab % 4 == 0 || vocab % 4 == 3)\n",
     "jsd-chunked"),
    ("missing __syncthreads (LM-head rows: the teacher's log-sum-exp overwrites the student's partials in shared memory)",
     "native/src/cuda/lm_head_jsd.cu",
     "    for (int o = 16; o > 0; o >>= 1) lse_merge(m, l, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, l, o));\n"
     "    __syncthreads();\n",
     "    for (int o = 16; o > 0; o >>= 1) lse_merge(m, l, __shfl_xor_sync(0xffffffffu, m, o), __shfl_xor_sync(0xffffffffu, l, o));\n",
     "jsd-chunked"),
    ("missing __syncthreads (DII backward: the block's dW partial summed before every warp finished its rows)",
     "native/src/cuda/dii.cu",
     "        __syncthreads();  // every warp's accumulator is complete\n",
     "",
     "dii"),
    ("missing stream dependency (the row kernel on the second stream does not wait for its logits GEMM)",
     "native/src/cuda/lm_head_jsd.cu",
     "        CDAS_CUDA_CHECK(cudaStreamWaitEvent(B, ev[1 + b], 0), \"cudaStreamWaitEvent(logits done)\");\n",
     "",
     "jsd-chunked"),
    ("missing stream dependency (forward only: the loss on the caller's stream does not wait for the row kernels)",
     "native/src/cuda/lm_head_jsd.cu",
     "    CDAS_CUDA_CHECK(cudaStreamWaitEvent(A, ev[7], 0), \"cudaStreamWaitEvent(end)\");\n",
     "",
     "misc"),
    ("wrong direction set (DII backward: every row's dW goes into set 0's accumulator block)", "native/src/cuda/dii.cu",
     "        float* acc = want_dw ? acc_all + set * rd : nullptr;\n",
     "        float* acc = want_dw ? acc_all : nullptr;\n",
     "dii"),
    ("out-of-bounds access (DII forward: the uncached units run one past the row)", "native/src/cuda/dii.cu",
     "        for (int64_t u = lane + 32 * kCached; u < units; u += 32) {\n            float x[kU];\n            U::load(row, u, x);\n            write(u, x);",
     "        for (int64_t u = lane + 32 * kCached; u <= units; u += 32) {\n            float x[kU];\n            U::load(row, u, x);\n            write(u, x);",
     "dii"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--only", default=None, help="substring of a bug's name")
    ap.add_argument("--check-targets", action="store_true",
                    help="only check that every bug's original text is still in the sources exactly once (ctest)")
    args = ap.parse_args()
    if args.check_targets:
        stale = 0
        for name, rel, old, _new, _group in MUTATIONS:
            n = open(os.path.join(ROOT, rel)).read().count(old)
            if n != 1:
                print(f"STALE  {name}: found {n} times in {rel}; update tools/cuda_emu_mutations.py")
                stale += 1
        print(f"{len(MUTATIONS) - stale} of {len(MUTATIONS)} deliberate bugs still apply to the sources")
        return 1 if stale else 0
    missed = 0
    for name, rel, old, new, group in MUTATIONS:
        if args.only and args.only not in name:
            continue
        path = os.path.join(ROOT, rel)
        original = open(path).read()
        if original.count(old) != 1:
            print(f"STALE  {name}: the original text is not found exactly once in {rel}")
            missed += 1
            continue
        try:
            with open(path, "w") as f:
                f.write(original.replace(old, new))
            b = run(["cmake", "--build", args.build, "--target", "cdas_cuda_emu", "gpu_check_bench_emu", "-j2"])
            if b.returncode != 0:
                print(f"BUILD  {name}: the mutated source does not compile\n{b.stdout[-2000:]}{b.stderr[-2000:]}")
                missed += 1
                continue
            env = dict(os.environ, CDAS_CUDA_BACKEND="emulated")
            r = run([os.path.join(args.build, "gpu_check_bench_emu"), "--check", "--emulated", "--group", group],
                    env=env, timeout=900)
            lines = (r.stdout + r.stderr).splitlines()
            first = next((l for l in lines if l.startswith("FAIL") or l.startswith("cuda-emu:")), "")
            if r.returncode != 0:
                summary = next((l for l in reversed(lines) if "checks," in l), "")
                print(f"caught {name}\n       group {group}: {summary}\n       first: {first[:300]}")
            else:
                print(f"MISSED {name} (group {group} passed)")
                missed += 1
        finally:
            with open(path, "w") as f:
                f.write(original)
    run(["cmake", "--build", args.build, "--target", "cdas_cuda_emu", "gpu_check_bench_emu", "-j2"])
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
