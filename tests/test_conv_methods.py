"""Conv2d's method table, and the lazy kernels package that lets the core pick a method without numba.

(Each method's numbers are tested against the reference in test_conv_gemm.py,
test_conv_winograd.py and test_kernels_conv.py.)
"""

import inspect
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.kernels.choice import choose_method
from numpy_cnn.nn.layers import Conv2d
from numpy_cnn.nn.layers.conv import IMPLEMENTATIONS, METHODS

ROOT = Path(__file__).resolve().parent.parent


def _fresh_python(code):
    """Run ``code`` in a new interpreter (nothing imported yet); returns its stdout."""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_building_layers_and_the_paper_net_does_not_import_numba():
    code = ("import sys\n"
            "from numpy_cnn.nn.layers import Conv2d\n"
            "from numpy_cnn.nn.models import paper_net\n"
            "for m in (None, 'reference', 'im2col', 'direct', 'winograd'):\n"
            "    Conv2d(16, 32, 3, padding=1, method=m)\n"
            "Conv2d(3, 6, 5); Conv2d(64, 64, 3, 2); Conv2d(8, 8, 1); paper_net()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'numba'))")
    assert _fresh_python(code) == "[]"


def test_the_kernels_package_imports_a_module_on_first_use_and_keeps_the_name():
    code = ("import sys\n"
            "import numpy_cnn.kernels as K\n"
            "import numpy_cnn.kernels.choice\n"
            "print('numba' in sys.modules, 'relu_forward' in vars(K))\n"
            "f = K.relu_forward\n"
            "print('numba' in sys.modules, vars(K)['relu_forward'] is f is K.relu_forward,\n"
            "      'numpy_cnn.kernels.relu' in sys.modules, 'numpy_cnn.kernels.pool' in sys.modules)")
    assert _fresh_python(code).splitlines() == ["False False", "True True True False"]


def test_every_public_kernel_name_resolves_and_unknown_names_raise():
    import numpy_cnn.kernels as K
    for name in K.__all__:
        assert callable(getattr(K, name)), name
    assert set(K.__all__) <= set(dir(K))
    with pytest.raises(AttributeError, match="no_such_kernel"):
        K.no_such_kernel  # noqa: B018
    from numpy_cnn.kernels import winograd     # a submodule still imports as one
    assert winograd.winograd_forward is K.winograd_forward


def test_the_table_starts_with_the_reference_and_has_one_signature():
    assert METHODS == tuple(IMPLEMENTATIONS) and METHODS[0] == "reference"
    forward = ["x", "weight", "bias", "stride", "padding"]
    backward = ["grad_out", "cache", "weight", "stride", "padding", "needs_input_grad"]
    reference = IMPLEMENTATIONS["reference"]
    assert list(inspect.signature(reference.forward).parameters) == forward
    assert list(inspect.signature(reference.backward).parameters) == backward
    for method, impl in IMPLEMENTATIONS.items():
        assert len(inspect.signature(impl.forward).parameters) == len(forward), method
        assert len(inspect.signature(impl.backward).parameters) == len(backward), method


@pytest.mark.parametrize("c,k,s", [(3, 5, 1), (6, 5, 1), (3, 3, 1), (16, 3, 1), (64, 3, 2), (64, 1, 1), (8, (3, 5), 1)])
def test_method_none_runs_the_rule_and_a_forced_method_wins(c, k, s):
    layer = Conv2d(c, 4, k, s)
    assert layer.method == choose_method(c, layer.kernel_size, s)
    assert Conv2d(c, 4, k, s, method="reference").method == "reference"


def test_an_unknown_method_is_a_one_line_error():
    with pytest.raises(UserError, match=r"^Conv2d: method must be one of \('reference', .*got 'fft'$"):
        Conv2d(3, 4, 3, method="fft")


@pytest.mark.parametrize("method", METHODS)
def test_every_method_skips_dx_on_request_and_leaves_frozen_parameters_without_gradient(method, rng):
    x = rng.standard_normal((2, 4, 6, 7))
    live = Conv2d(4, 3, 3, padding=1, rng=0, dtype=np.float64, method=method)
    frozen = Conv2d(4, 3, 3, padding=1, rng=0, dtype=np.float64, method=method, needs_input_grad=False)
    frozen.weight.requires_grad = frozen.bias.requires_grad = False
    g = rng.standard_normal(live.forward(x).shape)
    frozen.forward(x)
    assert live.backward(g).shape == x.shape
    assert frozen.backward(g) is None
    assert frozen.weight.grad is None and frozen.bias.grad is None
    assert live.weight.grad.shape == live.weight.shape and live.bias.grad.shape == (3,)
