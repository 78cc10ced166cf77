"""Tests of kernels.blas: matmul from numba code equals NumPy's, and so does the plain-loop fallback."""

import ctypes
import glob
import os

import numpy as np
import pytest

numba = pytest.importorskip("numba")
from numpy_cnn.kernels import blas   # noqa: E402


def _operands(rng, dtype, a_transposed, b_transposed):
    """a: (5, 4), b: (4, 3), each either C-contiguous or a transposed view of a contiguous array."""
    a, b = rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((4, 3)).astype(dtype)
    return (np.ascontiguousarray(a.T).T if a_transposed else a,
            np.ascontiguousarray(b.T).T if b_transposed else b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("b_transposed", [False, True])
def test_matmul_is_numpys_product_and_accumulates_with_beta(dtype, a_transposed, b_transposed):
    rng = np.random.default_rng(0)
    a, b = _operands(rng, dtype, a_transposed, b_transposed)
    out = np.full((5, 3), np.nan, dtype)                   # beta = 0 must ignore what out held, NaN included
    blas.matmul(a, b, out)
    np.testing.assert_allclose(out, a @ b, rtol=1e-6)
    blas.matmul(a, b, out, 1.0)
    np.testing.assert_allclose(out, 2 * (a @ b), rtol=1e-6)


def test_matmul_reads_and_writes_blocks_of_bigger_matrices():
    rng = np.random.default_rng(1)
    big_a, b = rng.standard_normal((9, 8)), rng.standard_normal((5, 3))
    out = np.zeros((6, 7))
    blas.matmul(big_a[2:8, 1:6], b, out[:, 2:5])           # rows of 8 and 7 floats, 5 and 3 used
    np.testing.assert_allclose(out[:, 2:5], big_a[2:8, 1:6] @ b, rtol=1e-12)
    assert not out[:, :2].any() and not out[:, 5:].any()   # nothing written beside the block


def test_numpys_bundled_openblas_is_the_one_used_when_it_exists():
    root = os.path.dirname(os.path.dirname(np.__file__))
    bundled = glob.glob(os.path.join(root, "numpy.libs", "*openblas64*")) + \
        glob.glob(os.path.join(root, "numpy", ".dylibs", "*openblas64*"))
    assert blas.BLAS == ("openblas" if bundled else "loops")


@pytest.mark.parametrize("real,ctype", [(numba.types.float32, ctypes.c_float), (numba.types.float64, ctypes.c_double)])
@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("b_transposed", [False, True])
def test_the_fallback_loops_keep_cblas_gemms_contract(real, ctype, a_transposed, b_transposed):
    """_gemm_loops, the GEMM used where NumPy has no OpenBLAS, called as cblas_?gemm is: C = alpha A B + beta C."""
    dtype = np.float32 if ctype is ctypes.c_float else np.float64
    rng = np.random.default_rng(2)
    a, b = _operands(rng, dtype, a_transposed, b_transposed)
    c = rng.standard_normal((5, 3)).astype(dtype)
    want = 0.5 * (a @ b) + 2.0 * c
    stored_a, stored_b = (np.ascontiguousarray(a.T) if a_transposed else a), (np.ascontiguousarray(b.T) if b_transposed else b)
    ptr = ctypes.POINTER(ctype)
    blas._gemm_loops(real).ctypes(
        blas.ROW_MAJOR, blas.TRANS if a_transposed else blas.NO_TRANS, blas.TRANS if b_transposed else blas.NO_TRANS,
        5, 3, 4, 0.5, stored_a.ctypes.data_as(ptr), stored_a.shape[1], stored_b.ctypes.data_as(ptr),
        stored_b.shape[1], 2.0, c.ctypes.data_as(ptr), 3)
    np.testing.assert_allclose(c, want, rtol=1e-5)
