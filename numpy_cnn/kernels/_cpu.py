"""The CPU the kernels are compiled for: numba's host CPU, minus one tuning flag.

Why
---
On Intel's AVX-512 server cores (Skylake-X to Emerald Rapids) LLVM's CPU
model sets the tuning flag ``prefer-256-bit``: its vectoriser then uses
256-bit ``ymm`` registers although 512-bit ``zmm`` ones exist, to spare the
clock drop that 512-bit code once cost. Our hot loops are long runs of FMAs
on contiguous float32, the case 512-bit units are built for: on a 2-core
Xeon (Emerald Rapids) turning the flag off made conv2's forward pass 1.9x
faster (``docs/performance.md``, "512-bit vectors on AVX-512 CPUs"). AMD's
Zen 4 has no such flag, so there the change does nothing. Without AVX-512
the flag has nothing to choose between.

How, and why this way
---------------------
numba compiles everything in a process with ONE code generator (an LLVM
``TargetMachine`` built once from ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES``
or the host). Setting those variables would change the code of every numba
function in a user's process, and only works if set before numba's first
compilation. Instead the kernels get a code generator of their own: numba's
JIT code generator whose feature string has ``-prefer-256-bit`` appended, in
a copy of numba's CPU target context (``subtarget``, the mechanism numba uses
for its own ahead-of-time compiler). A dispatcher class bound to that target
compiles our kernels, and only them (and the parallel loops inside them).
Everything else in the process keeps numba's settings.

* A user's ``NUMBA_CPU_NAME`` and ``NUMBA_CPU_FEATURES`` are honoured: numba
  reads them as always and we only append the flag, unless the user's
  feature string already says ``prefer-256-bit`` either way (their choice
  wins; ``+prefer-256-bit`` gets numba's default code back).
* The on-disk cache stays valid per CPU: numba keys each cached kernel by
  ``(target triple, CPU name, feature string)``, and the feature string
  includes the appended flag, so code for one CPU or setting is never loaded
  for another.
* Only on x86: other architectures do not know the flag (LLVM would warn).
* Kernels may choose a loop by the target too: :func:`vector_registers`
  reads the same feature string (:func:`target_features`), and a module
  constant made from it is compiled in as a constant. Since the string is
  the cache key, code cached for one choice is never loaded for another
  (``conv_direct.FOUR_BY_FIVE``: four channels per five-tap pass only with
  AVX-512's 32 registers).

:func:`packed_fma_widths` reads the compiled assembly to check the result; the
tests and benchmarks use it (``NUMBA_CPU_NAME=sapphirerapids`` shows Intel's
code generation on any x86 machine).
"""

from __future__ import annotations

import functools
import platform
import re
from collections import Counter

import llvmlite.binding as ll
from numba.core import codegen, config
from numba.core.registry import CPUDispatcher, CPUTarget, cpu_target
from numba.core.utils import threadsafe_cached_property

__all__ = ["KernelDispatcher", "kernel_features", "target_features", "vector_registers", "target_cpu",
           "two_512_bit_fma_units", "packed_fma_widths", "vector_bits", "probe_vector_bits"]

FLAG = "prefer-256-bit"


def kernel_features(features: str, machine: str | None = None) -> str:
    """numba's LLVM feature string -> the kernels' one: ``-prefer-256-bit`` appended on x86.

    Left as it is when it already mentions the flag (a user's explicit choice)
    or on other architectures.
    """
    machine = (machine or platform.machine()).lower()
    if FLAG in features or machine not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return features
    return f"{features},-{FLAG}" if features else f"-{FLAG}"


@functools.cache
def target_features() -> str:
    """The LLVM feature string the kernels are compiled with: numba's, with :func:`kernel_features` applied.

    numba's is ``NUMBA_CPU_FEATURES`` if set, else the host's, every feature
    listed as ``+name`` or ``-name`` (as numba's JIT code generator takes
    it). The kernels' code generator uses exactly this string, and numba's
    ``magic_tuple`` (the key of its on-disk cache) reads it: a choice the
    kernels make from it when they are compiled (:func:`vector_registers`)
    is never served from the cache to another target.
    """
    return kernel_features(config.CPU_FEATURES if config.CPU_FEATURES is not None
                           else codegen.get_host_cpu_features())


def vector_registers(features: str | None = None) -> int:
    """The vector registers the kernels' code may use: 32 when ``features`` (default :func:`target_features`)
    enables AVX-512F (zmm0-31), else 16 (x86's ymm0-15 with AVX2).

    A ``NUMBA_CPU_FEATURES`` that does not mention avx512f counts as 16 (LLVM
    would then take the CPU name's default: 16 is the safe side); so do
    other architectures, where no kernel is tuned by this yet.
    """
    features = target_features() if features is None else features
    named = [f for f in features.split(",") if f[1:] == "avx512f"]
    return 32 if named and named[-1][0] == "+" else 16


# LLVM's names for Intel's AVX-512 server cores: two 512-bit FMA units a core (ports 0+1 fused,
# and port 5). AMD's Zen 4 runs a 512-bit FMA as two halves on its 256-bit units, and Intel's
# client cores with AVX-512 (Ice Lake, Tiger Lake, Rocket Lake) have one 512-bit unit.
_TWO_512_BIT_FMA_UNITS = frozenset({"skylake-avx512", "cascadelake", "cooperlake", "icelake-server",
                                    "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d",
                                    "diamondrapids"})


def target_cpu() -> str:
    """The LLVM CPU name the kernels are compiled for: ``NUMBA_CPU_NAME`` if set, else the host's."""
    return config.CPU_NAME or ll.get_host_cpu_name()


def two_512_bit_fma_units(cpu: str | None = None, features: str | None = None) -> bool:
    """Whether each core of ``cpu`` (default :func:`target_cpu`) retires two 512-bit FMAs a
    cycle with the kernels' ``features`` (default :func:`target_features`): an Intel AVX-512
    server core with AVX-512F enabled. Twice Zen 4's 512-bit rate, four times Zen 1's
    256-bit one: the CPUs where a kernel bound by its FMAs gains most
    (:func:`numpy_cnn.kernels.choice.choose_forward` reads it, on every forward pass)."""
    if cpu is None and features is None:
        return _target_has_two_512_bit_fma_units()
    return vector_registers(features) >= 32 and (cpu or target_cpu()) in _TWO_512_BIT_FMA_UNITS


@functools.cache
def _target_has_two_512_bit_fma_units() -> bool:
    """:func:`two_512_bit_fma_units` of the kernels' target, asked once: the target is fixed
    for the process (numba builds its code generator once), and asking LLVM costs ~24 us."""
    return two_512_bit_fma_units(target_cpu(), target_features())


class _Codegen(codegen.JITCPUCodegen):
    """numba's JIT code generator compiling for :func:`target_features`.

    numba's ``magic_tuple`` (the cache key) reads the same string, so cached
    code is keyed by it.
    """

    def _customize_tm_features(self) -> str:
        return target_features()


class _KernelTarget(CPUTarget):
    """numba's CPU target with the typing shared and the code generator replaced."""

    @threadsafe_cached_property
    def _toplevel_target_context(self):
        return cpu_target.target_context.subtarget(_internal_codegen=_Codegen("numpy_cnn.kernels"))

    @property
    def typing_context(self):
        return cpu_target.typing_context


class KernelDispatcher(CPUDispatcher):
    """A numba CPU dispatcher compiling through the kernels' own code generator."""

    targetdescr = _KernelTarget("cpu")


# A packed (vector) FMA: vfmadd231ps %zmm1, %zmm2, %zmm3 and its variants.
# Scalar ones (..ss/..sd) use xmm registers too; they are not counted.
_PACKED_FMA = re.compile(r"\bv?fn?m(?:add|sub)(?:sub|add)?\d{3}p[sdh]\b.*?%([xyz]mm)")


def packed_fma_widths(asm: str) -> Counter:
    """Count packed FMA instructions in x86 assembly by register: {'zmm': n, 'ymm': n, 'xmm': n}."""
    return Counter(m.group(1) for m in map(_PACKED_FMA.search, asm.splitlines()) if m)


def vector_bits(asm: str) -> int:
    """The widest vector register the code's packed FMAs use: 512, 256, 128, or 0 (none)."""
    widths = packed_fma_widths(asm)
    for reg, bits in (("zmm", 512), ("ymm", 256), ("xmm", 128)):
        if widths[reg]:
            return bits
    return 0


def _axpy(a, x, y):
    for i in range(x.shape[0]):
        y[i] = y[i] + a * x[i]


def probe_vector_bits(dispatcher_class=KernelDispatcher) -> int:
    """Compile a small FMA loop (y += a x, float32) as every kernel is compiled, and read its width.

    Returns :func:`vector_bits` of the fresh (never cached) machine code: what
    the kernels use on this machine, read from code, not assumed. Takes about
    0.2 s. ``dispatcher_class=numba.core.registry.CPUDispatcher`` gives what
    plain ``numba.njit`` code would use, for comparison.
    """
    from numba import float32

    probe = dispatcher_class(py_func=_axpy, locals={},
                             targetoptions=dict(nopython=True, fastmath={"contract"}, boundscheck=False))
    sig = (float32, float32[::1], float32[::1])
    probe.compile(sig)
    return vector_bits(probe.inspect_asm(sig))
