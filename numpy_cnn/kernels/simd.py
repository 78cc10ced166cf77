"""Vectors of 16 float32 that numba keeps in registers: the few operations conv_blocked needs.

Why
---
numba vectorises loops, not values. A register-blocked kernel (one that
keeps a block of sums in registers while it runs over a long reduction,
as every fast GEMM and oneDNN's convolutions do) needs the opposite: a
fixed set of vector sums that live across a loop. Written with arrays,
numba keeps such sums in memory and loads and stores them on every term
(3 G multiply-adds/s, ``docs/performance.md``); written with scalar
variables, LLVM's SLP vectoriser leaves them scalar. So this module gives
numba a type for one LLVM vector ``<16 x float>`` and a tuple of them is
a block of sums, plain SSA values: LLVM's register allocator keeps them in
registers, as it would keep a C compiler's ``__m512`` variables.

LLVM lowers a ``<16 x float>`` to whatever the target has: one zmm register
with AVX-512, two ymm with AVX2, four xmm with SSE. The kernels choose how
many vectors a block holds by the target's register count
(:func:`numpy_cnn.kernels._cpu.vector_registers`).

The operations (each an ``@intrinsic``: the LLVM IR is built here, at compile time)::

    load16(a, i)                           -> a.flat[i : i + 16] as a vector
    repeat(v, n)                           -> (v, v, ..., v), n times
    fma_broadcast(sums, a, offsets, k, w)  -> (sums[p] + a.flat[offsets[p] + k] * w  for each p)
    store_transposed(a, i, stride, sums)   -> a.flat[i + v*stride + p] = sums[p][v]  for each lane v and p
    block_offsets(oy, ox, width, step_row, step_col, n)
                                           -> the offsets of n positions in a row-major grid
    offsets_at(b, i, n)                    -> (b[i], ..., b[i + n - 1]) of an int64 array
    load_rows(a, i, stride, n)             -> (a.flat[i + p*stride : ... + 16]  for p < n)
    store_rows(a, i, stride, sums)         -> a.flat[i + p*stride : ... + 16] = sums[p]  for each p

``fma_broadcast`` is one fused multiply-add per sum, rounded once, with the
scalar broadcast to every lane: ``fma(x, w, s)`` has the bits of a scalar
``s + x * w`` under ``fastmath={"contract"}``, so a kernel built from it
can add its terms in a scalar kernel's order and give the same results.

Arrays are float32 and C-contiguous (``a.flat[i]`` is ``a``'s data pointer
plus i), and every index is in bounds: nothing here checks. Callers check
shapes in Python first, as everywhere in :mod:`numpy_cnn.kernels`.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model
from numba.np.arrayobj import make_array

__all__ = ["LANES", "load16", "repeat", "fma_broadcast", "store_transposed", "block_offsets", "offsets_at",
           "load_rows", "store_rows"]

LANES = 16
_VECTOR = ir.VectorType(ir.FloatType(), LANES)


class Float32x16(types.Type):
    """numba's name for an LLVM ``<16 x float>`` value."""

    def __init__(self) -> None:
        super().__init__(name="float32x16")


float32x16 = Float32x16()


@register_model(Float32x16)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VECTOR)


def _is_float32_array(a) -> bool:
    return isinstance(a, types.Array) and a.dtype == types.float32 and a.layout == "C"


def _data(context, builder, array_type, array):
    """The array's data pointer (float*)."""
    return make_array(array_type)(context, builder, array).data


def _vector_at(builder, data, index):
    """A <16 x float>* at data + index (unaligned: align 4, as a float's)."""
    return builder.bitcast(builder.gep(data, [index]), _VECTOR.as_pointer())


@intrinsic
def load16(typingctx, a, i):
    """a.flat[i : i + 16] as a vector."""
    if not (_is_float32_array(a) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        return builder.load(_vector_at(builder, _data(context, builder, sig.args[0], args[0]), args[1]), align=4)
    return float32x16(a, i), codegen


@intrinsic
def repeat(typingctx, v, n):
    """(v,) * n for a compile-time n: the starting block of sums."""
    if not isinstance(n, types.IntegerLiteral):
        return None               # numba retries with n as a literal
    block = types.UniTuple(float32x16, n.literal_value)

    def codegen(context, builder, sig, args):
        return context.make_tuple(builder, block, [args[0]] * n.literal_value)
    return block(v, n), codegen


@intrinsic
def fma_broadcast(typingctx, sums, a, offsets, k, w):
    """(fma(a.flat[offsets[p] + k], w, sums[p]) for each p): one tap of weights w for every position."""
    if not (isinstance(sums, types.UniTuple) and sums.dtype == float32x16 and _is_float32_array(a)
            and isinstance(offsets, types.UniTuple) and offsets.count == sums.count):
        return None

    def codegen(context, builder, sig, args):
        sums_v, a_v, offsets_v, k_v, w_v = args
        data = _data(context, builder, sig.args[1], a_v)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(_VECTOR, [_VECTOR] * 3),
                                             "llvm.fma.v16f32")
        undef, lane0 = ir.Constant(_VECTOR, ir.Undefined), ir.Constant(ir.IntType(32), 0)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        out = []
        for p in range(sums.count):
            index = builder.add(builder.extract_value(offsets_v, p), k_v)
            x = builder.load(builder.gep(data, [index]), align=4)
            x16 = builder.shuffle_vector(builder.insert_element(undef, x, lane0), undef, splat)
            out.append(builder.call(fma, [x16, w_v, builder.extract_value(sums_v, p)]))
        return context.make_tuple(builder, sig.return_type, out)
    return sums(sums, a, offsets, types.int64, w), codegen


@intrinsic
def block_offsets(typingctx, oy, ox, width, step_row, step_col, n):
    """(oy_p * step_row + ox_p * step_col for p < n), where (oy_p, ox_p) are the n grid
    positions from (oy, ox) on in row-major order, rows ``width`` long (one step at a
    time, a compare and a select each: no division)."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    block = types.UniTuple(types.int64, n.literal_value)

    def codegen(context, builder, sig, args):
        row, col, width_v, step_row_v, step_col_v, _ = args
        one, zero = ir.Constant(row.type, 1), ir.Constant(row.type, 0)
        out = []
        for p in range(n.literal_value):
            if p:
                col = builder.add(col, one)
                wrap = builder.icmp_signed(">=", col, width_v)
                col = builder.select(wrap, zero, col)
                row = builder.select(wrap, builder.add(row, one), row)
            out.append(builder.add(builder.mul(row, step_row_v), builder.mul(col, step_col_v)))
        return context.make_tuple(builder, block, out)
    return block(types.int64, types.int64, types.int64, types.int64, types.int64, n), codegen


def _transpose(builder, rows):
    """16 vectors ``rows[p][v]`` -> 16 vectors ``out[v][p]``: the 16 x 16 transpose in 4 rounds of shuffles.

    Round d (1, 2, 4, 8) swaps bit d of the row and lane indices: for rows i and i + d
    (bit d of i clear) lane l of row i, bit d set, trades places with lane l - d of row
    i + d. Four rounds of 16 two-vector shuffles, which LLVM lowers to the target's
    permutes (``vpermt2ps`` with AVX-512)."""
    rows = list(rows)
    d = 1
    while d < LANES:
        for i in range(LANES):
            if i & d:
                continue
            a, b = rows[i], rows[i + d]
            # shufflevector indices: 0..15 pick from a, 16..31 from b
            low = [l if not l & d else LANES + l - d for l in range(LANES)]
            high = [l + d if not l & d else LANES + l for l in range(LANES)]
            rows[i] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), LANES), low))
            rows[i + d] = builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), LANES), high))
        d *= 2
    return rows


@intrinsic
def store_transposed(typingctx, a, i, row_stride, sums):
    """``a.flat[i + v*row_stride + p] = sums[p][v]`` for each lane v < 16 and p < len(sums) <= 16:
    a block of sums (positions x 16 channels) into 16 rows of an NCHW output, one
    masked vector store a row, after a transpose in registers."""
    if not (_is_float32_array(a) and isinstance(sums, types.UniTuple) and sums.dtype == float32x16
            and sums.count <= LANES):
        return None

    def codegen(context, builder, sig, args):
        data = _data(context, builder, sig.args[0], args[0])
        undef = ir.Constant(_VECTOR, ir.Undefined)
        rows = [builder.extract_value(args[3], p) for p in range(sums.count)]
        columns = _transpose(builder, rows + [undef] * (LANES - sums.count))
        mask = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [p < sums.count for p in range(LANES)])
        store = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [_VECTOR, _VECTOR.as_pointer(), ir.IntType(32), mask.type]),
            "llvm.masked.store.v16f32.p0v16f32")
        index = args[1]
        for v in range(LANES):
            builder.call(store, [columns[v], _vector_at(builder, data, index), ir.Constant(ir.IntType(32), 4), mask])
            index = builder.add(index, args[2])
        return context.get_dummy_value()
    return types.void(a, types.int64, types.int64, sums), codegen


@intrinsic
def offsets_at(typingctx, b, i, n):
    """(b[i], b[i + 1], ..., b[i + n - 1]) for an int64 array b and a compile-time n: a block's
    offsets read from a table (the weight gradient's (c, i, j) terms)."""
    if not (isinstance(b, types.Array) and b.dtype == types.int64 and b.layout == "C"
            and isinstance(n, types.IntegerLiteral)):
        return None
    block = types.UniTuple(types.int64, n.literal_value)

    def codegen(context, builder, sig, args):
        data = _data(context, builder, sig.args[0], args[0])
        out = [builder.load(builder.gep(data, [builder.add(args[1], ir.Constant(args[1].type, p))]))
               for p in range(n.literal_value)]
        return context.make_tuple(builder, block, out)
    return block(b, types.int64, n), codegen


@intrinsic
def load_rows(typingctx, a, i, stride, n):
    """(a.flat[i + p*stride : i + p*stride + 16] for p < n) as a block of n vectors (compile-time n)."""
    if not (_is_float32_array(a) and isinstance(n, types.IntegerLiteral)):
        return None
    block = types.UniTuple(float32x16, n.literal_value)

    def codegen(context, builder, sig, args):
        data = _data(context, builder, sig.args[0], args[0])
        index, out = args[1], []
        for _ in range(n.literal_value):
            out.append(builder.load(_vector_at(builder, data, index), align=4))
            index = builder.add(index, args[2])
        return context.make_tuple(builder, block, out)
    return block(a, types.int64, types.int64, n), codegen


@intrinsic
def store_rows(typingctx, a, i, stride, sums):
    """``a.flat[i + p*stride : i + p*stride + 16] = sums[p]`` for each p: the inverse of load_rows."""
    if not (_is_float32_array(a) and isinstance(sums, types.UniTuple) and sums.dtype == float32x16):
        return None

    def codegen(context, builder, sig, args):
        data = _data(context, builder, sig.args[0], args[0])
        index = args[1]
        for p in range(sums.count):
            builder.store(builder.extract_value(args[3], p), _vector_at(builder, data, index), align=4)
            index = builder.add(index, args[2])
        return context.get_dummy_value()
    return types.void(a, types.int64, types.int64, sums), codegen
