"""The kernels' CPU target: 512-bit vectors on AVX-512 machines, Intel's included.

Code generation is deterministic, so these tests read the compiled assembly
instead of timing anything. Each compiles in a fresh subprocess: numba's
settings are read once per process, and code loaded from the on-disk cache
cannot be inspected (so each subprocess gets an empty cache directory).
"""

import json
import os
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

from numpy_cnn.kernels._cpu import kernel_features, packed_fma_widths, vector_bits, vector_registers

X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _run(code, tmp_path, **env):
    """Run ``code`` in a new Python with an empty numba cache and ``env`` added; returns its last stdout line as JSON."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    full.update(NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"), **env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------
# The feature string
# ----------------------------------------------------------------------------

def test_flag_appended_on_x86():
    assert kernel_features("+avx2,+avx512f", "x86_64") == "+avx2,+avx512f,-prefer-256-bit"
    assert kernel_features("", "x86_64") == "-prefer-256-bit"


def test_users_own_choice_of_the_flag_is_kept():
    for own in ("+avx512f,+prefer-256-bit", "+avx512f,-prefer-256-bit"):
        assert kernel_features(own, "x86_64") == own


def test_other_architectures_unchanged():
    assert kernel_features("+neon,+sve", "aarch64") == "+neon,+sve"


def test_vector_registers_read_from_the_feature_string():
    assert vector_registers("+avx,+avx2,+fma,+avx512f,+avx512vl,-prefer-256-bit") == 32
    assert vector_registers("+avx,+avx2,+fma,-avx512f,-avx512vl") == 16
    assert vector_registers("+avx512f,-avx512f") == 16                 # the last word wins, as in LLVM
    assert vector_registers("+avx2") == 16                              # not named: the safe side
    assert vector_registers("+neon,+sve") == 16


def test_target_features_are_the_kernels_code_generators():
    """The string the kernels' choices are made from is the one their code is compiled
    with and cached under (numba's magic tuple), and numba's own with the flag added."""
    from numba.core.registry import cpu_target

    from numpy_cnn.kernels._cpu import KernelDispatcher, target_features
    ours = KernelDispatcher.targetdescr.target_context.codegen().magic_tuple()
    assert ours[2] == target_features()
    assert kernel_features(cpu_target.target_context.codegen().magic_tuple()[2]) == target_features()


def test_counting_reads_packed_fmas_only():
    asm = """
        vfmadd231ps %zmm1, %zmm2, %zmm3
        vfmadd213ps (%rax), %ymm2, %ymm3
        vfnmadd231ps %zmm1, %zmm2, %zmm3
        vfmadd231ss %xmm1, %xmm2, %xmm3
        vmulps %zmm1, %zmm2, %zmm3
    """
    assert packed_fma_widths(asm) == {"zmm": 2, "ymm": 1}
    assert vector_bits(asm) == 512
    assert vector_bits("vfmadd231ps %ymm0, %ymm1, %ymm2") == 256
    assert vector_bits("vaddps %zmm0, %zmm1, %zmm2") == 0


# ----------------------------------------------------------------------------
# Intel's code generation, on any x86 machine
# ----------------------------------------------------------------------------

PROBE = """
import json
from numba.core.registry import CPUDispatcher
from numpy_cnn.kernels._cpu import probe_vector_bits
print(json.dumps({"kernels": probe_vector_bits(), "plain_numba": probe_vector_bits(CPUDispatcher)}))
"""

# An AVX-512 feature set given explicitly, so the code can be *compiled* (never
# run) for an Intel server core on an x86 host without AVX-512 too.
INTEL = dict(NUMBA_CPU_NAME="sapphirerapids",
             NUMBA_CPU_FEATURES="+avx,+avx2,+fma,+f16c,+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl")


@pytest.mark.skipif(not X86, reason="Intel's CPU names only exist for x86")
def test_intel_avx512_target_gets_512_bit_fmas(tmp_path):
    widths = _run(PROBE, tmp_path, **INTEL)
    # Plain numba code keeps LLVM's Intel tuning (256-bit): the tuning is in play
    # and this process's other numba code is left alone; the kernels get 512 bits.
    assert widths == {"kernels": 512, "plain_numba": 256}


@pytest.mark.skipif(not X86, reason="Intel's CPU names only exist for x86")
def test_users_prefer_256_bit_is_honoured(tmp_path):
    own = dict(INTEL, NUMBA_CPU_FEATURES=INTEL["NUMBA_CPU_FEATURES"] + ",+prefer-256-bit")
    assert _run(PROBE, tmp_path, **own) == {"kernels": 256, "plain_numba": 256}


# ----------------------------------------------------------------------------
# The real hot kernels, on a host with AVX-512
# ----------------------------------------------------------------------------

HOT = """
import inspect
import json
import numpy as np
import numpy_cnn.kernels as K
from numpy_cnn.kernels import _cpu

rng = np.random.default_rng(0)
f = lambda *s: rng.standard_normal(s).astype(np.float32)
x, w = f(2, 3, 48, 48), f(6, 3, 5, 5)
y = K.conv2d_forward(x, w, f(6))
K.conv2d_backward(y, x, w)
p, a = K.maxpool2d_forward(y, 2)
K.maxpool2d_backward(p, a, y.shape, 2)
K.relu_backward(y, K.relu_forward(y))
K.cross_entropy(f(4, 7), np.arange(4))
K.sgd_step([f(40)], [f(40)], [f(40)], [False], 0.01, momentum=0.9)
K.flip_rotate(f(2, 48, 48), np.ones(2, bool), np.ones(2))

report = {}
for mod in [m for m in vars(K).values() if inspect.ismodule(m) and m.__name__.startswith("numpy_cnn.kernels.")]:
    for name, fn in vars(mod).items():
        if isinstance(fn, _cpu.KernelDispatcher):
            for sig in fn.signatures:
                asm = fn.inspect_asm(sig)
                lines = asm.splitlines()
                report[f"{mod.__name__}.{name}{sig}"] = {
                    "fma": dict(_cpu.packed_fma_widths(asm)),
                    "zmm_lines": sum("%zmm" in s for s in lines),
                    "ymm_lines": sum("%ymm" in s and "%zmm" not in s for s in lines)}
print(json.dumps(report))
"""


def _host_has_avx512():
    import llvmlite.binding as ll
    try:
        return bool(ll.get_host_cpu_features().get("avx512f"))
    except RuntimeError:
        return False


@pytest.mark.skipif(not X86 or not _host_has_avx512(), reason="needs an x86 host with AVX-512")
@pytest.mark.parametrize("cpu_name", [None, "sapphirerapids"])
def test_hot_kernels_use_512_bit_vectors(tmp_path, cpu_name):
    """Host tuning, and Intel's (on this host's features, so running it is safe)."""
    report = _run(HOT, tmp_path, **({"NUMBA_CPU_NAME": cpu_name} if cpu_name else {}))
    with_fma = {k: v["fma"] for k, v in report.items() if v["fma"]}
    assert any("conv" in k for k in with_fma), report     # the convolution loops are FMAs
    for kernel, fma in with_fma.items():
        assert fma.get("zmm", 0) > fma.get("ymm", 0), (kernel, fma)
    vector = {k: v for k, v in report.items() if v["zmm_lines"] + v["ymm_lines"] > 0}
    for part in ("pool", "relu", "sgd", "augment"):
        assert any(part in k for k in vector), (part, report)
    for kernel, v in vector.items():
        assert v["zmm_lines"] > 0, (kernel, v)


# ----------------------------------------------------------------------------
# Cache-line alignment of the direct forward's sums and of the scratch
# buffers (docs/performance.md, "Intel: what limits each kernel")
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols", [(1, 1), (6, 17), (16, 1188), (7, 2401)])
def test_forward_sums_rows_start_on_cache_lines(rows, cols, dtype):
    from numpy_cnn.kernels.conv_direct import _line_aligned_rows
    for _ in range(3):                                   # fresh allocations land anywhere
        acc = _line_aligned_rows(rows, cols, np.zeros(1, dtype))
        assert acc.dtype == dtype and acc.flags.c_contiguous
        assert acc.shape[0] == rows and cols <= acc.shape[1] < cols + 64 // acc.itemsize
        assert acc.ctypes.data % 64 == 0 and acc.strides[0] % 64 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rows, cols, at", [(2, 30, 1), (16, 3000, 100), (6, 1200, 115), (7, 50, 16), (3, 9, 8)])
def test_backward_gradient_rows_start_on_cache_lines_at_p0(rows, cols, at, dtype):
    """The backward's stacked gradient: element ``at`` (P0, where the dw loop reads from) of every row on a line."""
    from numpy_cnn.kernels.conv_direct import _line_aligned_rows
    for _ in range(3):
        gs = _line_aligned_rows(rows, cols, np.zeros(1, dtype), at)
        assert gs.dtype == dtype and gs.flags.c_contiguous
        assert gs.shape[0] == rows and cols <= gs.shape[1] < cols + 64 // gs.itemsize
        assert (gs.ctypes.data + at * gs.itemsize) % 64 == 0 and gs.strides[0] % 64 == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.complex128])
def test_scratch_buffers_start_on_cache_lines_and_are_reused(dtype):
    """layout.scratch: every buffer starts on a 64-byte line, when first made,
    when reused (smaller or the same) and after growing; reuse gives the same memory."""
    from numpy_cnn.kernels.layout import scratch
    name = f"test_line_{np.dtype(dtype).name}"
    first = scratch(name, (3, 5), dtype)
    for shape in [(3, 5), (1,), (0, 4), (2, 16, 17), (1000,), (7, 301, 33), (4, 4), (2, 16, 4099)]:
        buf = scratch(name, shape, dtype)
        assert buf.shape == shape and buf.dtype == dtype and buf.flags.c_contiguous
        assert buf.ctypes.data % 64 == 0, (shape, buf.ctypes.data % 64)
        if shape == (4, 4):                              # smaller than what was grown: the same memory
            assert buf.ctypes.data == grown
        grown = buf.ctypes.data
    assert scratch(name, (3, 5), dtype).ctypes.data == grown != first.ctypes.data


ACC_STORES = """
import json
from numba import types
from numpy_cnn.kernels import conv_direct as D

f32 = types.float32
row, rows, w4 = f32[::1], f32[:, ::1], f32[:, :, :, ::1]
i64 = types.int64
report = {}
for fn, sig in [(D._three_taps_four_channels, (row, w4, i64, i64, i64, i64, row, row, row, row)),
                (D._correlate_flat, (rows, w4, i64, i64, rows, i64, i64))]:
    fn.compile(sig)
    report[fn.__name__] = fn.inspect_asm(sig)
print(json.dumps(report))
"""

_ZMM_STORE = re.compile(r"^\s*vmovups\s+%zmm\d+,\s*(-?\d*)\(%\w+,%\w+,4\)\s*$", re.M)


@pytest.mark.skipif(not X86, reason="Intel's CPU names only exist for x86")
def test_intel_forward_stores_its_sums_a_line_at_a_time(tmp_path):
    """Compiled for Intel, every 512-bit store of a sum lands a whole number of lines from its row's start.

    (At j*4 bytes plus a displacement that is 0 mod 64, j stepping by 16.)
    With rows that start on cache lines (_line_aligned_rows, j from 0 in the
    forward), no such store straddles two lines.
    """
    asm = _run(ACC_STORES, tmp_path, **INTEL)
    for name, text in asm.items():
        stores = _ZMM_STORE.findall(text)
        assert len(stores) >= 2, (name, stores)          # one per channel of a pass
        assert all(int(d or 0) % 64 == 0 for d in stores), (name, stores)
        assert re.search(r"^\s*addq\s+\$16,", text, re.M), name     # j steps by one zmm of floats


# ----------------------------------------------------------------------------
# Winograd's dx transform vectorises (docs/performance.md, "Intel: what limits
# each kernel")
# ----------------------------------------------------------------------------

INPUT_GRAD = """
import json
from numba import types
from numpy_cnn.kernels import winograd

f32, i64 = types.float32, types.int64
sig = (f32[:, ::1], i64, i64, f32[:, :, :, ::1])      # dv planes, th, tw, dxp: as training calls it
winograd._input_grad_tiles.compile(sig)
print(json.dumps(winograd._input_grad_tiles.inspect_asm(sig)))
"""

_LABEL = re.compile(r"^(\.?L\w+):")
_BRANCH = re.compile(r"^\s*j\w+\s+(\.?L\w+)\s*$")


def _innermost_loops(asm):
    """Each innermost loop of ``asm`` as its lines: a branch back to a label above it, with no such loop inside."""
    lines = asm.splitlines()
    seen, loops = {}, {}
    for n, line in enumerate(lines):
        label = _LABEL.match(line.strip())
        if label:
            seen[label.group(1)] = n
            continue
        branch = _BRANCH.match(line.split("#")[0])
        if branch and branch.group(1) in seen:
            loops[seen[branch.group(1)]] = n
    spans = sorted(loops.items())
    return [lines[a:b + 1] for a, b in spans
            if not any(a <= c and d <= b and (c, d) != (a, b) for c, d in spans)]


@pytest.mark.skipif(not X86, reason="Intel's CPU names only exist for x86")
def test_intel_input_grad_transform_adds_16_channels_at_a_time(tmp_path):
    """_input_grad_tiles compiled for Intel: its loops over channels (one per row of a tile)
    add and subtract with packed zmm instructions, not the scalar vaddss/vsubss it once
    compiled to. (Scalar remainder loops for the last C % 16 channels may remain.)"""
    asm = _run(INPUT_GRAD, tmp_path, **INTEL)
    packed = re.compile(r"^\s*v(?:add|sub)ps\s.*%zmm", re.M)
    scalar = re.compile(r"^\s*v(?:add|sub)ss\s", re.M)
    vector = [loop for loop in map("\n".join, _innermost_loops(asm)) if packed.search(loop)]
    assert len(vector) >= 4, asm                          # the four rows of a tile
    for loop in vector:
        assert not scalar.search(loop), loop
        assert len(packed.findall(loop)) >= 8, loop       # B down the columns and along the row, 16 channels each


# ----------------------------------------------------------------------------
# Five taps x four channels per pass on AVX-512 targets only
# ----------------------------------------------------------------------------

FIVE_TAPS = """
import json
from numba import types
from numpy_cnn.kernels import conv_direct

f32, i64 = types.float32, types.int64
sig = (f32[:, ::1], f32[:, :, :, ::1], i64, i64, f32[:, ::1], i64, i64)     # x, w, row_len, n_out, acc, nz_lo, nz_hi
conv_direct._correlate_flat.compile(sig)
print(json.dumps({"four_by_five": conv_direct.FOUR_BY_FIVE, "asm": conv_direct._correlate_flat.inspect_asm(sig)}))
"""

AVX2 = "+sse4.2,+popcnt,+avx,+avx2,+fma,+f16c,+bmi,+bmi2,+lzcnt,+movbe"


@pytest.mark.skipif(not X86, reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["sapphirerapids", "znver3", "znver1"])
def test_five_tap_pass_takes_four_channels_on_avx512_targets_only(tmp_path, cpu):
    """Compiled for Intel's AVX-512 cores (32 vector registers), _correlate_flat's code has the
    four-channel five-tap pass: 20 packed zmm FMAs per iteration, and no weight reloaded from
    the stack. Compiled for AVX2 (16 registers) it has not: its five-tap loop is the
    two-channel one, 10 ymm FMAs (the 12 of the three-tap, four-channel pass are the most)."""
    env = INTEL if cpu == "sapphirerapids" else dict(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=AVX2)
    out = _run(FIVE_TAPS, tmp_path, **env)
    loops = [(packed_fma_widths(loop), loop) for loop in map("\n".join, _innermost_loops(out["asm"]))]
    if cpu == "sapphirerapids":
        assert out["four_by_five"]
        wide = [loop for fma, loop in loops if fma == {"zmm": 20}]
        assert wide, [fma for fma, _ in loops]
        for loop in wide:
            assert "(%rsp)" not in loop, loop             # no spills: the 20 weights stay in registers
    else:
        assert not out["four_by_five"]
        assert "_five_taps_four_channels" not in out["asm"]
        assert {"ymm": 10} in [fma for fma, _ in loops]
        assert max(sum(fma.values()) for fma, _ in loops) == 12


WEIGHT_GRAD = """
import json
from numba import types
from numpy_cnn.kernels import conv_direct

i64 = types.int64
report = {"four_by_five": conv_direct.FOUR_BY_FIVE}
for name, ft in (("f32", types.float32), ("f64", types.float64)):
    sig = (ft[:, ::1], i64, ft[:, ::1], i64, i64, ft[:, :, :, ::1])      # g, g_start, x, row_len, n_out, dw
    conv_direct._weight_grad_flat.compile(sig)
    report[name] = conv_direct._weight_grad_flat.inspect_asm(sig)
print(json.dumps(report))
"""


@pytest.mark.skipif(not X86, reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["sapphirerapids", "znver3", "znver1"])
def test_weight_grad_five_tap_pass_takes_four_channels_on_avx512_targets_only(tmp_path, cpu):
    """Compiled for Intel's AVX-512 cores, _weight_grad_flat's five-tap dot products take four
    channels per pass (_five_tap_dots_four_channels): 20 packed zmm FMAs per iteration on 9 loads
    (4 of g, 5 shifted inputs), the 20 sums in registers (no stack access in the loop). Its loops
    over j have the vector widths of the two-channel pass's (f32: 16 floats, then 4; f64: 8): each
    dot product is split into lanes the same way. Compiled for AVX2 the pass is not there: the
    five-tap loop is the two-channel one, 10 ymm FMAs."""
    env = INTEL if cpu == "sapphirerapids" else dict(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=AVX2)
    out = _run(WEIGHT_GRAD, tmp_path, **env)
    for dtype in ("f32", "f64"):
        loops = [(packed_fma_widths(loop), loop) for loop in map("\n".join, _innermost_loops(out[dtype]))]
        pairs = sorted(reg for fma, _ in loops if sum(fma.values()) == 10 for reg in fma)
        if cpu == "sapphirerapids":
            assert out["four_by_five"]
            wide = [loop for fma, loop in loops if fma == {"zmm": 20}]
            assert len(wide) == 1, [fma for fma, _ in loops]
            body = [s.split("#")[0].strip() for s in wide[0].splitlines()[1:]]
            assert sum("(%" in s for s in body) == 9, wide[0]       # 4 g + 5 inputs, nothing else
            assert "(%rsp)" not in wide[0], wide[0]                 # no spills: the 20 sums stay in registers
            fours = sorted(reg for fma, _ in loops if sum(fma.values()) == 20 for reg in fma)
            assert fours == pairs and "zmm" in pairs, (fours, pairs)
        else:
            assert not out["four_by_five"]
            assert "_five_tap_dots_four_channels" not in out[dtype]
            assert {"ymm": 10} in [fma for fma, _ in loops]
            assert max(sum(fma.values()) for fma, _ in loops) == 12


# Intel's vectorisation, run here: _weight_grad_flat's two paths as LLVM optimised them for
# sapphirerapids (16-lane sums, then a 4-lane epilogue, the reduction trees), each compiled
# the way the kernels are, with FOUR_BY_FIVE forced as in tests/test_kernels_conv.py.
SPR_WEIGHT_GRAD_IR = """
import json, types
from numba import types as nt
from numpy_cnn.kernels import conv_direct
from numpy_cnn.kernels._cpu import KernelDispatcher

fn = conv_direct._weight_grad_flat
report = {}
for four in (False, True):
    copy = types.FunctionType(fn.py_func.__code__, dict(fn.py_func.__globals__, FOUR_BY_FIVE=four), fn.__name__)
    kernel = KernelDispatcher(py_func=copy, locals={}, targetoptions=dict(fn.targetoptions))
    for name, ft in (("f32", nt.float32), ("f64", nt.float64)):
        sig = (ft[:, ::1], nt.int64, ft[:, ::1], nt.int64, nt.int64, ft[:, :, :, ::1])
        kernel.compile(sig)
        report[f"{name} {four}"] = kernel.inspect_llvm(sig)
print(json.dumps(report))
"""

# ... and that IR turned into this host's machine code (MCJIT) and called through numba's C
# wrapper, whose array arguments LLVM passes as their fields: (meminfo, parent, nitems,
# itemsize, data, *shape, *strides). The lanes' arithmetic is the IR's, whatever this CPU.
RUN_IR = """
import ctypes, json, re, sys
import llvmlite.binding as ll
import numpy as np

ll.initialize_native_target()
ll.initialize_native_asmprinter()
irs, cases = json.load(open(sys.argv[1])), json.loads(sys.argv[2])
engines, out = [], {}
for key, ir in irs.items():
    ir = re.sub(r"\\ndefine [^\\n]*@_ZN7cpython[^\\n]*\\{.*?\\n\\}\\n", "\\n", ir, flags=re.S)   # needs numba's env
    mod = ll.parse_assembly(ir)
    tm = ll.Target.from_default_triple().create_target_machine(         # (each engine owns its machine)
        cpu=ll.get_host_cpu_name(), features=ll.get_host_cpu_features().flatten(), opt=3)
    engines.append(ll.create_mcjit_compiler(mod, tm))
    engines[-1].finalize_object()
    cfunc = next(f.name for f in mod.functions if f.name.startswith("cfunc.") and not f.is_declaration)
    dtype = np.float32 if key.startswith("f32") else np.float64
    for n, (F, C, kH, kW, R, n_out, g_start) in enumerate(cases):
        rng = np.random.default_rng(n)
        x = rng.standard_normal((C, (kH - 1) * R + (kW - 1) + n_out)).astype(dtype)
        g = rng.standard_normal((F, g_start + n_out + 7)).astype(dtype)
        dw = rng.standard_normal((F, C, kH, kW)).astype(dtype)
        types, args = [], []
        for a in (g, g_start, x, R, n_out, dw):
            if isinstance(a, int):
                types.append(ctypes.c_int64)
                args.append(a)
                continue
            types += [ctypes.c_void_p] * 2 + [ctypes.c_int64] * 2 + [ctypes.c_void_p] + [ctypes.c_int64] * 2 * a.ndim
            args += [None, None, a.size, a.itemsize, a.ctypes.data, *a.shape, *a.strides]
        want = dw.astype(np.float64)
        for ky in range(kH):
            for kx in range(kW):
                want[:, :, ky, kx] += g[:, g_start:g_start + n_out] @ x[:, ky * R + kx:ky * R + kx + n_out].T
        ctypes.CFUNCTYPE(ctypes.c_void_p, *types)(engines[-1].get_function_address(cfunc))(*args)
        assert np.abs(dw - want).max() <= (1e-5 if dtype == np.float32 else 1e-12) * max(1, np.abs(want).max())
        out[f"{key} {n}"] = dw.tobytes().hex()
print(json.dumps(out))
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="runs x86-64 code")
def test_weight_grad_four_channels_keeps_the_pairs_bits_as_compiled_for_intel(tmp_path):
    """The five-tap x four-channel dw pass adds up each dot product as the two-channel pass does,
    in the AVX-512 targets' vectorisation too: both paths, optimised for sapphirerapids and run
    here, give the same bits (this host cannot run AVX-512 instructions, but the order of the sums
    is fixed in the IR: lanes, epilogue and reduction tree). The shapes: the paper's conv2 and
    conv1, 10-wide kernels, a pair only, n_out from 1 to a multiple of 16 plus remainders."""
    ir = _run(SPR_WEIGHT_GRAD_IR, tmp_path, **INTEL)
    for dtype, lanes in (("f32", "<16 x float>"), ("f64", "<8 x double>")):
        assert "_five_tap_dots_four_channels" in ir[f"{dtype} True"]
        assert "_five_tap_dots_four_channels" not in ir[f"{dtype} False"]
        assert lanes in ir[f"{dtype} True"] and lanes in ir[f"{dtype} False"]      # AVX-512's vectors
    irs = tmp_path / "irs.json"
    irs.write_text(json.dumps(ir))
    cases = [(16, 6, 5, 5, 22, 17 * 22 + 18, 0), (6, 3, 5, 5, 48, 43 * 48 + 44, 196), (10, 3, 3, 10, 31, 201, 64),
             (2, 5, 5, 5, 12, 7, 0), (4, 2, 2, 5, 9, 16 * 5 + 15, 13), (8, 3, 5, 8, 15, 100, 30),
             (16, 6, 5, 5, 22, 1, 0), (16, 6, 5, 5, 22, 19, 0), (8, 4, 5, 5, 20, 4000, 7)]
    full = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU_")}
    run = subprocess.run([sys.executable, "-c", RUN_IR, str(irs), json.dumps(cases)], env=full,
                         capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr
    dw = json.loads(run.stdout.strip().splitlines()[-1])
    for dtype in ("f32", "f64"):
        for n in range(len(cases)):
            assert dw[f"{dtype} True {n}"] == dw[f"{dtype} False {n}"], (dtype, cases[n])


# ----------------------------------------------------------------------------
# The register-blocked forward: its sums stay in registers
# ----------------------------------------------------------------------------

BLOCKED = """
import json
from numba import types
from numpy_cnn.kernels import conv_blocked

f32, i64 = types.float32, types.int64
# xp, wb, bias, stride_row, stride_col, wo, origin, y, n
sig = (f32[:, :, ::1], f32[:, :, :, :, ::1], f32[::1], i64, i64, i64, i64, f32[:, :, ::1], i64)
conv_blocked._image.compile(sig)
print(json.dumps({"positions": conv_blocked.POSITIONS, "asm": conv_blocked._image.inspect_asm(sig)}))
"""


@pytest.mark.skipif(not X86, reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["sapphirerapids", "znver1"])
def test_blocked_forward_keeps_its_block_of_sums_in_registers(tmp_path, cpu):
    """conv_blocked._image's term loop, as compiled: 12 sums of 16 lanes, one FMA each per
    term, with nothing loaded from or stored to the stack. For Intel (32 registers) 12
    positions x one zmm, each FMA taking its input broadcast from memory ({1to16}) and one
    weight vector load: 13 loads per 12 FMAs. For AVX2 (16 registers) 6 positions x two
    ymm: 6 broadcasts and 2 weight loads per 12 FMAs. For Intel, a block's sums go to y
    as 16 masked vector stores, with no single float stored."""
    env = INTEL if cpu == "sapphirerapids" else dict(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=AVX2)
    out = _run(BLOCKED, tmp_path, **env)
    loops = [loop for loop in map("\n".join, _innermost_loops(out["asm"])) if packed_fma_widths(loop)]
    assert len(loops) == 1, loops                          # the term loop; nothing else has FMAs
    loop = loops[0]
    assert "(%rsp)" not in loop, loop
    assert not re.search(r"^\s*vmovups\s+%[xyz]mm\d+, ", loop, re.M), loop     # no sum stored in the loop
    if cpu == "sapphirerapids":
        assert out["positions"] == 12
        assert packed_fma_widths(loop) == {"zmm": 12}
        assert len(re.findall(r"\{1to16\}", loop)) == 12, loop
        assert len(re.findall(r"^\s*vmovups\s+[^,]*\(", loop, re.M)) == 1, loop   # the weight vector
        # the block into y: 16 rows stored as vectors under a mask, after a transpose in registers,
        # not 16 x 12 single floats
        assert len(re.findall(r"vmovups\s+%zmm\d+, [^\n]*\{%k\d\}", out["asm"])) >= 16
        assert not re.search(r"vmovss\s+%xmm\d+, [^\n]*\(", out["asm"])
    else:
        assert out["positions"] == 6
        assert packed_fma_widths(loop) == {"ymm": 12}
        assert len(re.findall(r"^\s*vbroadcastss\s", loop, re.M)) == 6, loop


BLOCKED_GRAD = """
import json
from numba import types
from numpy_cnn.kernels import conv_blocked

f32, i64 = types.float32, types.int64
# xp, dyt, terms, stride_row, stride_col, wo, dw
sig = (f32[:, :, ::1], f32[:, ::1], i64[::1], i64, i64, i64, f32[:, ::1])
conv_blocked._image_grad.compile(sig)
print(json.dumps({"asm": conv_blocked._image_grad.inspect_asm(sig)}))
"""


@pytest.mark.skipif(not X86, reason="x86 CPU names")
@pytest.mark.parametrize("cpu", ["sapphirerapids", "znver1"])
def test_blocked_weight_grad_keeps_its_block_of_sums_in_registers(tmp_path, cpu):
    """conv_blocked._image_grad's position loop, as compiled: the weight gradient's 12 (Intel)
    or 6 x 2 (AVX2) sums stay in registers over an image's positions, one FMA each per position
    with the input broadcast, one vector load of dy: no sum loaded or stored. For Intel the 12
    term offsets take 12 general registers, so the two pointers' steps are read from the stack
    (two loads beside the 13, still within the three load ports of 6 FMA cycles; llvm-mca:
    7.9 cycles per 12 FMAs); nothing is stored there."""
    env = INTEL if cpu == "sapphirerapids" else dict(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=AVX2)
    out = _run(BLOCKED_GRAD, tmp_path, **env)
    loops = [loop for loop in map("\n".join, _innermost_loops(out["asm"])) if packed_fma_widths(loop)]
    assert len(loops) == 1, loops
    loop = loops[0]
    assert not re.search(r", -?\d*\(%rsp\)", loop), loop                          # nothing stored on the stack
    assert len(re.findall(r"\(%rsp\)", loop)) <= (2 if cpu == "sapphirerapids" else 0), loop
    assert not re.search(r"^\s*vmovups\s+%[xyz]mm\d+, ", loop, re.M), loop
    if cpu == "sapphirerapids":
        assert packed_fma_widths(loop) == {"zmm": 12}
        assert len(re.findall(r"\{1to16\}", loop)) == 12, loop
        assert len(re.findall(r"^\s*vmovups\s+[^,]*\(", loop, re.M)) == 1, loop   # dy's vector
    else:
        assert packed_fma_widths(loop) == {"ymm": 12}
        assert len(re.findall(r"^\s*vbroadcastss\s", loop, re.M)) == 6, loop
