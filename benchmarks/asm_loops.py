"""The hot loops of the kernels in assembly, for any x86 CPU LLVM knows, and what llvm-mca makes of them.

    python benchmarks/asm_loops.py --cpu sapphirerapids --kernel direct_forward --mca
    python benchmarks/asm_loops.py --cpu znver3 --kernel all --mca
    python benchmarks/asm_loops.py --cpu host --kernel winograd_input --asm     # print the loops too
    python benchmarks/asm_loops.py --list

Nothing is timed and no kernel runs for the target CPU: the kernels are only
*compiled* for it, so an Intel AVX-512 target can be read on an AMD AVX2
machine (the method of ``tests/test_kernels_cpu.py``). Three steps:

1. A subprocess on the host's own CPU runs the public functions once on small
   float32 inputs, and hands back the numba signatures each kernel was
   compiled for (pickled numba types): the exact array types training uses.
2. A subprocess with ``NUMBA_CPU_NAME=<cpu>``, an explicit feature string
   (:data:`FEATURES`; AVX-512 for Intel's server cores, so the code can be
   compiled on a host without it) and an empty numba cache compiles those
   signatures through :class:`numpy_cnn.kernels._cpu.KernelDispatcher` and
   returns ``inspect_asm``. The kernels' own tuning (``-prefer-256-bit`` on
   x86) applies as in training.
3. This process cuts every *innermost* loop out of the kernel's own code
   (a branch back to a label above it, with no such loop inside), keeps the
   vector loops (a kernel with none is scalar: it says so), and for each
   prints: instructions, packed FMAs and other vector arithmetic by
   register width, vector loads (FMA memory operands included) and stores,
   the loop-carried vector registers (read before written in the body and
   rewritten by it: accumulators that live across iterations), the longest
   chain of dependent FMAs within one iteration, and each vector load's
   displacement mod 64 bytes per base register (what decides split cache
   lines, see below). With ``--mca`` it runs ``llvm-mca -mcpu=<mca cpu>
   -iterations=100 -bottleneck-analysis`` on the loop and prints its Block
   RThroughput, cycles per iteration, per-port pressure and bottleneck.

Split loads are not modelled by llvm-mca. The tool counts them from the
displacements: a vector load of B bytes at byte address a crosses a 64-byte
line iff ``a mod 64 > 64 - B``. It prints the expected count per iteration
for two cases: every base register 64-byte aligned, and a base at a uniformly
random multiple of 4 bytes (the direct kernels' rows start anywhere).

llvm-mca 14 (``/usr/bin/llvm-mca``) has no model for Zen 4 or Emerald Rapids:
``--cpu emeraldrapids`` is modelled as ``sapphirerapids`` (the same Golden
Cove-class core; LLVM 14 gives it its Skylake-server port model),
and Zen 4 code (``--cpu znver4``, 512-bit) cannot be modelled; use
``--cpu znver3`` (the same integer and 256-bit FP core) for AMD.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LLVM_MCA = os.environ.get("LLVM_MCA", "/usr/bin/llvm-mca")

# name -> (module, numba function): the hot loops of issue 21
KERNELS = {
    "direct_forward": ("conv_direct", "_correlate_flat"),                # 5-tap and 3-tap pair passes
    "direct_forward_quad": ("conv_direct", "_three_taps_four_channels"),  # 3 taps x 4 channels
    "direct_forward_quad5": ("conv_direct", "_five_taps_four_channels"),  # 5 taps x 4 (AVX-512 targets)
    "direct_weight_grad": ("conv_direct", "_weight_grad_flat"),
    "direct_weight_grad_quad5": ("conv_direct", "_five_tap_dots_four_channels"),  # dw 5 x 4 (AVX-512)
    "blocked_forward": ("conv_blocked", "_image"),                     # register-blocked forward
    "winograd_input": ("winograd", "_input_tiles"),
    "winograd_output": ("winograd", "_output_tiles"),
    "winograd_grad": ("winograd", "_grad_tiles"),
    "winograd_input_grad": ("winograd", "_input_grad_tiles"),
    "gemm_unfold": ("conv_gemm", "_unfold"),
    "gemm_fold": ("conv_gemm", "_fold"),
}

# A kernel the host may never run (the AVX-512 pass, on an AVX2 host) takes
# the signatures of one with the same arguments.
SIGNATURES_LIKE = {"direct_forward_quad5": "direct_forward_quad"}

_AVX2 = "+sse4.2,+popcnt,+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+lzcnt,+movbe"
_AVX512 = _AVX2 + ",+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl"
# The features given with NUMBA_CPU_NAME (numba otherwise takes the HOST's
# features, and an AVX2 host would get no 512-bit code for an Intel name).
FEATURES = {cpu: _AVX512 for cpu in ("sapphirerapids", "emeraldrapids", "graniterapids",
                                     "icelake-server", "cascadelake", "skylake-avx512", "znver4")}
FEATURES.update({cpu: _AVX2 for cpu in ("znver1", "znver2", "znver3", "haswell", "skylake", "alderlake")})
# CPUs llvm-mca 14 does not know -> the model used for them
MCA_CPU = {"emeraldrapids": "sapphirerapids", "graniterapids": "sapphirerapids"}


# ----------------------------------------------------------------------------
# Steps 1 and 2, each in a subprocess
# ----------------------------------------------------------------------------

def _signatures() -> dict:
    """Run the public functions once on this host's CPU; {kernel: [pickled float32 signature, ...]}."""
    import numpy as np
    import numpy_cnn.kernels.conv_blocked as blocked
    import numpy_cnn.kernels.conv_direct as direct
    import numpy_cnn.kernels.conv_gemm as gemm
    import numpy_cnn.kernels.winograd as wino

    rng = np.random.default_rng(0)

    def f(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, w = f(2, 6, 22, 22), f(16, 6, 5, 5)                       # the paper's conv2: blocked forward, 5-tap dx
    direct.conv2d_backward(direct.conv2d_forward(x, w, f(16)), x, w)
    g, dw = f(4, 40), f(4, 1, 1, 5)                              # the AVX-512 dw pass: the views it is given
    direct._five_tap_dots_four_channels(g[0], g[1], g[2], g[3], f(44), dw, 0, 0, 0, 0)
    x, w = f(2, 3, 12, 12), f(16, 3, 3, 3)                       # 3x3 padding 1: the 3-tap passes
    direct.conv2d_backward(direct.conv2d_forward(x, w, f(16), padding=1), x, w, padding=1)
    x, w = f(2, 16, 8, 8), f(16, 16, 3, 3)
    wino.winograd_backward(wino.winograd_forward(x, w, f(16), padding=1), x, w, padding=1)
    x, w = f(2, 8, 12, 12), f(16, 8, 3, 3)
    gemm.gemm_conv_backward(gemm.gemm_conv_forward(x, w, f(16), stride=2, padding=1), x, w, stride=2, padding=1)

    modules = {"conv_blocked": blocked, "conv_direct": direct, "conv_gemm": gemm, "winograd": wino}
    out = {}
    for name, (module, fn) in KERNELS.items():
        module, fn = KERNELS[SIGNATURES_LIKE[name]] if name in SIGNATURES_LIKE else (module, fn)
        sigs = [s for s in getattr(modules[module], fn).signatures if "float64" not in str(s)]
        out[name] = [base64.b64encode(pickle.dumps(s)).decode() for s in sigs]
    return out


def _assembly(wanted: dict) -> dict:
    """Compile each {kernel: [pickled signature]} for this process's CPU; {kernel: [asm, ...]}."""
    import importlib

    import llvmlite.binding as ll
    from numba.core import config

    out = {"_cpu": config.CPU_NAME or ll.get_host_cpu_name()}
    for name, sigs in wanted.items():
        module, fn = KERNELS[name]
        disp = getattr(importlib.import_module(f"numpy_cnn.kernels.{module}"), fn)
        out[name] = []
        for blob in sigs:
            sig = pickle.loads(base64.b64decode(blob))
            disp.compile(sig)
            out[name].append(disp.inspect_asm(sig))
    return out


def _subprocess(stage: str, payload: dict, env: dict) -> dict:
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    full.update(env, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, __file__, "--stage", stage], input=json.dumps(payload),
                         env=full, capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"stage {stage} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compile_for(cpu: str, kernels: list[str], features: str | None = None) -> dict:
    """{kernel: [asm, ...], "_cpu": LLVM CPU name} for ``cpu`` ("host": this machine's)."""
    # Empty caches in both steps: a kernel called from cached code never shows
    # its signatures, and code loaded from a cache cannot be inspected.
    with tempfile.TemporaryDirectory() as cache:
        sigs = _subprocess("signatures", {}, {"NUMBA_CACHE_DIR": cache})
    with tempfile.TemporaryDirectory() as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        if cpu != "host":
            env["NUMBA_CPU_NAME"] = cpu
            env["NUMBA_CPU_FEATURES"] = features or FEATURES.get(cpu, "")
            if not env["NUMBA_CPU_FEATURES"]:
                raise SystemExit(f"no feature string known for {cpu}: give --features")
        return _subprocess("asm", {k: sigs[k] for k in kernels}, env)


# ----------------------------------------------------------------------------
# Step 3: cut the innermost loops out, count, model
# ----------------------------------------------------------------------------

_LABEL = re.compile(r"^(\.?L\w+):")
_JUMP = re.compile(r"^\s*j\w+\s+(\.?L\w+)\s*(?:#.*)?$")
_MEM = re.compile(r"(-?\d*)\((%\w+)?(?:,(%\w+))?(?:,(\d))?\)")
_REG = re.compile(r"%([xyz]mm\d+)")
_FMA = re.compile(r"^v?fn?m(?:add|sub)(?:sub|add)?(\d{3})p[sd]$")
_ARITH = re.compile(r"^v(?:add|sub|mul|max|min|xor|and|or)p[sd]$")
_WIDTH = {"xmm": 16, "ymm": 32, "zmm": 64}
_FUNCTION = re.compile(r"^([A-Za-z_$][\w$.]*):")


def kernel_body(asm: str) -> str:
    """The compiled function's own code: numba's CPython and cfunc wrappers (their error paths loop too) dropped."""
    keep, out = True, []
    for line in asm.splitlines():
        m = _FUNCTION.match(line)
        if m:
            keep = not m.group(1).startswith(("_ZN7cpython", "cfunc", "_ZN8cfunc"))
        if keep:
            out.append(line)
    return "\n".join(out)


def inner_loops(asm: str) -> list[list[str]]:
    """The innermost loops of ``asm``, each as its lines from the header label to the last branch back to it.

    numba's assembly has no loop comments, so a loop is a branch back to a
    label above it, and an innermost one contains no other such loop.
    """
    lines = asm.splitlines()
    where, loops, function, owner = {}, {}, "", {}
    for n, line in enumerate(lines):
        f = _FUNCTION.match(line)
        if f:
            function = f.group(1)
        owner[n] = function
        m = _LABEL.match(line.strip())
        if m:
            where[m.group(1)] = n
            continue
        m = _JUMP.match(line)
        if m and m.group(1) in where:
            loops[where[m.group(1)]] = n                 # the last branch back wins
    spans = sorted(loops.items())
    inner = [(a, b) for a, b in spans if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in spans)]
    return [[f"# function {_short(owner[a])}"] + lines[a:b + 1] for a, b in inner]


def _short(symbol: str) -> str:
    """numba's mangled symbol -> the Python function's name (``_ZN9numpy_cnn7kernels11conv_direct14_name...``)."""
    parts, rest = [], symbol[3:] if symbol.startswith("_ZN") else ""
    while rest[:1].isdigit():
        n = int(re.match(r"\d+", rest).group())
        digits = len(str(n))
        parts.append(rest[digits:digits + n])
        rest = rest[digits + n:]
    return parts[-1] if parts else symbol


def instructions(loop: list[str]) -> list[str]:
    """The instructions of a loop: comments, directives and labels dropped."""
    out = []
    for line in loop:
        s = line.split("#")[0].strip()
        if s and not s.startswith(".") and not _LABEL.match(s):
            out.append(s)
    return out


def _operands(ins: str) -> tuple[str, list[str]]:
    op, _, rest = ins.replace("\t", " ").partition(" ")
    parts, depth, cur = [], 0, ""
    for ch in rest:
        if ch == "," and depth == 0:
            parts.append(cur.strip())
            cur = ""
            continue
        depth += ch in "({"
        depth -= ch in ")}"
        cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return op, parts


def analyse(loop: list[str]) -> dict:
    """Counts for one loop body (AT&T syntax: the destination is the last operand)."""
    body = instructions(loop)
    counts, loads, stores = Counter(), [], []
    read_first, written = set(), set()
    depth, max_chain = {}, 0
    for ins in body:
        op, ops = _operands(ins)
        vec = [r for o in ops for r in _REG.findall(o)]
        width = max((r[:3] for r in vec), key=lambda w: _WIDTH[w], default=None)
        fma = bool(_FMA.match(op))
        if fma:
            counts[f"fma_{width}"] += 1
        elif width and _ARITH.match(op):
            counts[f"arith_{width}"] += 1
        for n, o in enumerate(ops):
            m = _MEM.search(o)
            if not m or o.startswith("%") or not width or op.startswith(("lea", "prefetch")):
                continue
            size = _bytes(op, o, width)
            access = (op, int(m.group(1) or 0), m.group(2), m.group(3), size)
            is_store = n == len(ops) - 1 and len(ops) > 1
            (stores if is_store else loads).append(access)
        # data flow of the vector registers: the last operand is written (if a
        # register), the others read; an FMA also reads its destination
        dst = _REG.findall(ops[-1]) if ops and ops[-1].startswith("%") else []
        srcs = [r for o in ops[:-1] for r in _REG.findall(o)] + (dst if fma else [])
        read_first.update(r for r in srcs if r not in written)
        chain = max((depth.get(r, 0) for r in srcs), default=0) + fma
        for r in dst:
            written.add(r)
            depth[r] = chain
        max_chain = max(max_chain, chain)
    carried = read_first & written                        # live into the body and rewritten by it
    return {"instructions": len(body), "counts": dict(counts), "loads": loads, "stores": stores,
            "carried": sorted(carried, key=lambda r: (r[:3], int(r[3:]))), "max_fma_chain": max_chain}


def _bytes(op: str, operand: str, width: str) -> int:
    """Bytes a memory operand of ``op`` touches: a scalar or broadcast element, or the register's width."""
    if "{1to" in operand or op.startswith("vbroadcastss") or op.endswith("ss") or op in ("vmovd", "movl"):
        return 4
    if op.startswith("vbroadcastsd") or op.endswith("sd") or op in ("vmovq", "movq"):
        return 8
    return _WIDTH[width]


def split_counts(accesses: list[tuple]) -> dict:
    """Expected line-crossing accesses per iteration: bases 64-byte aligned, or at a random 4-byte offset.

    (Spill slots, addressed from %rsp alone, are aligned either way.)
    """
    aligned = uniform = 0.0
    for _, disp, base, index, size in accesses:
        aligned += (disp % 64) > 64 - size
        if base == "%rsp" and not index:
            uniform += (disp % 64) > 64 - size
            continue
        # base at 4*u mod 64, u uniform in 0..15
        uniform += sum(((disp + 4 * u) % 64) > 64 - size for u in range(16)) / 16
    return {"aligned_bases": aligned, "any_4_byte_base": round(uniform, 2)}


def is_vector_loop(a: dict) -> bool:
    return any(k.startswith(("fma_z", "fma_y", "arith_z", "arith_y")) for k in a["counts"]) or \
        any(size >= 32 for *_, size in a["loads"] + a["stores"])


def mca(loop: list[str], cpu: str) -> dict:
    """llvm-mca's view of one loop body: block throughput, cycles per iteration, port pressure, bottleneck."""
    with tempfile.NamedTemporaryFile("w", suffix=".s", delete=False) as fh:
        # the instructions alone: a branch to a label the file lacks still assembles
        fh.write("\n".join(instructions(loop)) + "\n")
        path = fh.name
    try:
        out = subprocess.run([LLVM_MCA, "-mtriple=x86_64-unknown-linux-gnu", f"-mcpu={cpu}", "-iterations=100",
                              "-bottleneck-analysis", path], capture_output=True, text=True)
    finally:
        os.unlink(path)
    text = out.stdout
    if out.returncode:
        return {"error": out.stderr.strip().splitlines()[:3]}

    def num(pattern):
        m = re.search(pattern, text)
        return float(m.group(1)) if m else None

    cycles, iters = num(r"Total Cycles:\s+(\d+)"), num(r"Iterations:\s+(\d+)")
    # the per-iteration pressure table: resource names, then the row of numbers
    names = dict(re.findall(r"^\[(\d+(?:\.\d+)?)\]\s+-\s+(\S+)", text, re.M))
    pressure = {}
    m = re.search(r"Resource pressure per iteration:\n(.*)\n(.*)\n", text)
    if m:
        heads = re.findall(r"\[([\d.]+)\]", m.group(1))
        vals = m.group(2).split()
        pressure = {names.get(h, h): float(v) for h, v in zip(heads, vals) if v != "-"}
    return {"block_rthroughput": num(r"Block RThroughput:\s+([\d.]+)"),
            "cycles_per_iteration": cycles / iters if cycles and iters else None,
            "ipc": num(r"IPC:\s+([\d.]+)"), "pressure": pressure, "bottleneck": _bottleneck(text),
            "raw": text}


def _bottleneck(text: str) -> str:
    """llvm-mca's -bottleneck-analysis in one line: cycles lost to port pressure (which ports), to dependencies."""
    if "No resource or data dependency bottlenecks discovered" in text:
        return "none found (the busiest ports set the pace)"
    total = re.search(r"Cycles with backend pressure increase \[ ([\d.]+)% \]", text)
    res = re.search(r"Resource Pressure\s+\[ ([\d.]+)% \]", text)
    ports = sorted(((float(v), k) for k, v in re.findall(r"^\s+- (\S+)\s+\[ ([\d.]+)% \]", text, re.M)),
                   reverse=True)
    regs = re.search(r"Register Dependencies\s+\[ ([\d.]+)% \]", text)
    mem = re.search(r"Memory Dependencies\s+\[ ([\d.]+)% \]", text)
    busiest = ", ".join(f"{k} {v:.0f}%" for v, k in ports[:3])
    return (f"backend pressure in {total.group(1) if total else '?'}% of cycles: ports {res.group(1) if res else 0}%"
            f" ({busiest}); register dependencies {regs.group(1) if regs else 0}%, "
            f"memory {mem.group(1) if mem else 0}%")


# ----------------------------------------------------------------------------
# Reporting
# ----------------------------------------------------------------------------

def describe(name: str, asms: list[str], cpu: str, mca_cpu: str | None, show_asm: bool, raw: bool) -> list[dict]:
    rows, seen = [], {}
    for asm in asms:
        for loop in inner_loops(kernel_body(asm)):
            if loop[0].split()[-1] != KERNELS[name][1]:
                continue                                  # a callee's loops: they have their own entry
            a = analyse(loop)
            if not is_vector_loop(a):
                continue
            # the same loop in another signature or another branch: count it once
            shape = tuple(re.sub(r"%\w+|\.?L\w+", "_", s) for s in instructions(loop))
            if shape in seen:
                seen[shape]["copies"] += 1
                continue
            a["function"] = loop[0].split()[-1]
            a["label"] = loop[1].split(":")[0]
            a["copies"] = 1
            a["split_loads"] = split_counts(a["loads"])
            a["split_stores"] = split_counts(a["stores"])
            if mca_cpu:
                a["mca"] = mca(loop, mca_cpu)
            seen[shape] = a
            rows.append((a, loop))
    # the main loops first: most vector instructions
    rows.sort(key=lambda r: -sum(r[0]["counts"].values()) - len(r[0]["loads"]))
    out = []
    print(f"\n== {name} ({KERNELS[name][0]}.{KERNELS[name][1]}), compiled for {cpu}"
          + (f", llvm-mca -mcpu={mca_cpu}" if mca_cpu else ""))
    if not rows:
        print("  no vector loop: the kernel compiled to scalar code")
    for a, loop in rows:
        widths = Counter(f"{size}B" for *_, size in a["loads"])
        copies = f" (and {a['copies'] - 1} copies of it)" if a["copies"] > 1 else ""
        print(f"\n  loop {a['label']}{copies}: {a['instructions']} instructions; {a['counts']}")
        print(f"    vector loads {len(a['loads'])} {dict(widths)}, stores {len(a['stores'])}; "
              f"loop-carried vector registers {len(a['carried'])}; longest FMA chain in one iteration "
              f"{a['max_fma_chain']}")
        by_base = {}
        for op, disp, base, index, size in a["loads"]:
            by_base.setdefault(f"{base}+{index}" if index else str(base), []).append(f"{disp % 64}/{size}B")
        print(f"    load displacement mod 64 / bytes, by base: {by_base}")
        print(f"    expected split loads/iteration: {a['split_loads']}; split stores: {a['split_stores']}")
        if "mca" in a:
            m = a["mca"]
            if "error" in m:
                print(f"    llvm-mca failed: {m['error']}")
            else:
                top = sorted(m["pressure"].items(), key=lambda kv: -kv[1])[:6]
                print(f"    llvm-mca: Block RThroughput {m['block_rthroughput']}, {m['cycles_per_iteration']:.2f} "
                      f"cycles/iteration, IPC {m['ipc']}; busiest resources {top}")
                print(f"    bottleneck analysis: {m['bottleneck']}")
                if raw:
                    print(m["raw"])
        if show_asm:
            print("\n".join("      " + s for s in instructions(loop)))
        out.append({k: v for k, v in a.items() if k != "mca"} |
                   ({"mca": {k: v for k, v in a["mca"].items() if k != "raw"}} if "mca" in a else {}))
    return out


def summary(report: dict, cpu: str, mca_cpu: str | None) -> None:
    """One markdown row per loop: the figures docs/performance.md tabulates."""
    print(f"\n| kernel | loop | instructions | FMAs | other vector FP | loads | stores | "
          f"split loads (lines / anywhere) | split stores (anywhere) | loop-carried | FMA chain | "
          f"llvm-mca {mca_cpu or '-'}: Block RThroughput / cycles per iteration |")
    print("|" + "---|" * 12)
    for name, loops in report.items():
        for a in loops:
            c = a["counts"]
            fma = sum(v for k, v in c.items() if k.startswith("fma"))
            other = sum(v for k, v in c.items() if k.startswith("arith"))
            width = next((k.split("_")[1] for k in c), "")
            m = a.get("mca", {})
            model = (f"{m['block_rthroughput']} / {m['cycles_per_iteration']:.2f}"
                     if m.get("block_rthroughput") is not None else "-")
            print(f"| {name} | {a['label']} | {a['instructions']} | {fma} {width} | {other} | {len(a['loads'])} | "
                  f"{len(a['stores'])} | {a['split_loads']['aligned_bases']:g} / "
                  f"{a['split_loads']['any_4_byte_base']:g} | {a['split_stores']['any_4_byte_base']:g} | "
                  f"{len(a['carried'])} | {a['max_fma_chain']} | {model} |")
    print(f"(compiled for {cpu}; split counts are expectations per iteration, see the module docstring)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu", default="host", help="LLVM CPU name to compile for (default: this machine's)")
    p.add_argument("--features", help="LLVM feature string to compile with (default: FEATURES[cpu])")
    p.add_argument("--kernel", nargs="+", default=["all"], help=f"kernels: {', '.join(KERNELS)} or all")
    p.add_argument("--mca", action="store_true", help="model each loop with llvm-mca")
    p.add_argument("--mca-cpu", help="llvm-mca's -mcpu (default: --cpu, or its stand-in in MCA_CPU)")
    p.add_argument("--asm", action="store_true", help="print each loop's instructions")
    p.add_argument("--raw", action="store_true", help="print llvm-mca's whole report")
    p.add_argument("--json", help="write the counts to this file")
    p.add_argument("--list", action="store_true", help="list the kernels and exit")
    p.add_argument("--stage", choices=["signatures", "asm"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.stage:                                        # inside a subprocess
        payload = json.loads(sys.stdin.read() or "{}")
        print(json.dumps(_signatures() if args.stage == "signatures" else _assembly(payload)))
        return 0
    if args.list:
        for name, (module, fn) in KERNELS.items():
            print(f"{name:22s} numpy_cnn.kernels.{module}.{fn}")
        return 0
    kernels = list(KERNELS) if args.kernel == ["all"] else args.kernel
    unknown = set(kernels) - set(KERNELS)
    if unknown:
        p.error(f"unknown kernel(s) {sorted(unknown)}; --list shows them")
    compiled = compile_for(args.cpu, kernels, args.features)
    cpu = compiled.pop("_cpu")
    mca_cpu = (args.mca_cpu or MCA_CPU.get(cpu, cpu)) if args.mca else None
    report = {name: describe(name, compiled[name], cpu, mca_cpu, args.asm, args.raw) for name in kernels}
    summary(report, cpu, mca_cpu)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "mca_cpu": mca_cpu, "kernels": report}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
