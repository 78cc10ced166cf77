"""Label smoothing and class weights in cross_entropy: reference == numba, gradcheck, PyTorch oracle.

Tolerances as elsewhere: numba against the reference to 1e-12 in float64 and
1e-6 in float32 (the same formulas, rounded in another order); finite
differences in float64 to TOLERANCE (see numpy_cnn.nn.gradcheck); PyTorch in
float64 to 1e-12.
"""

import numpy as np
import pytest

from numpy_cnn.errors import UserError
from numpy_cnn.nn.gradcheck import TOLERANCE, numerical_gradient, rel_error
from numpy_cnn.nn.loss import CrossEntropyLoss, cross_entropy

OPTIONS = [dict(label_smoothing=0.1), dict(label_smoothing=1.0), dict(weight="random"),
           dict(weight="random", label_smoothing=0.2), dict(weight="zero one", label_smoothing=0.05)]


def case(n, k, dtype, options, seed=0):
    rng = np.random.default_rng(seed + 10 * n + k)
    z = (3 * rng.standard_normal((n, k))).astype(dtype)
    t = rng.integers(0, k, n)
    options = dict(options)
    if options.get("weight") == "random":
        options["weight"] = rng.uniform(0.2, 3.0, k)
    elif options.get("weight") == "zero one":     # a class of weight 0 (with one class, the loss is 0/0)
        options["weight"] = np.where(np.arange(k) == k - 1, 0.0 if k > 1 else 1.0, rng.uniform(0.5, 2.0, k))
        t[0] = 0
    return z, t, options


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("n, k", [(4, 7), (1, 2), (135, 7), (3, 1)])
def test_numba_equals_reference(options, dtype, tol, n, k):
    z, t, options = case(n, k, dtype, options)
    loss_ref, g_ref = cross_entropy(z, t, method="reference", **options)
    loss, g = cross_entropy(z, t, **options)
    assert g.dtype == dtype == g_ref.dtype and g.shape == (n, k)
    assert loss == pytest.approx(loss_ref, rel=tol, abs=tol)
    np.testing.assert_allclose(g, g_ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_the_defaults_are_todays_numbers_bit_for_bit(method):
    z, t, _ = case(4, 7, np.float32, {})
    plain = cross_entropy(z, t, method=method)
    explicit = cross_entropy(z, t, method=method, weight=None, label_smoothing=0.0)
    assert plain[0] == explicit[0] and plain[1].tobytes() == explicit[1].tobytes()
    # Weights of one and no smoothing take the general code: the same loss to rounding.
    ones = cross_entropy(z, t, method=method, weight=np.ones(7))
    assert ones[0] == pytest.approx(plain[0], rel=1e-6)
    np.testing.assert_allclose(ones[1], plain[1], atol=1e-7)


@pytest.mark.parametrize("method", ["numba", "reference"])
@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("n, k", [(1, 2), (4, 7), (9, 3)])
def test_gradient_matches_finite_differences(method, options, n, k):
    z, t, options = case(n, k, np.float64, options, seed=3)
    _, grad = cross_entropy(z, t, method=method, **options)
    numeric = numerical_gradient(lambda: cross_entropy(z, t, method=method, **options)[0], z)
    assert rel_error(grad, numeric) <= TOLERANCE


def test_smoothing_is_the_mean_cross_entropy_against_the_smoothed_distribution():
    z, t, _ = case(5, 4, np.float64, {})
    eps = 0.3
    q = np.full((5, 4), eps / 4)
    q[np.arange(5), t] += 1 - eps
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert cross_entropy(z, t, label_smoothing=eps)[0] == pytest.approx(-(q * log_p).sum(axis=1).mean(), rel=1e-12)


def test_weights_are_a_weighted_mean_normalised_by_the_targets_weights():
    z, t, _ = case(6, 3, np.float64, {})
    w = np.array([1.0, 2.0, 5.0])
    per_row = np.array([cross_entropy(z[i:i + 1], t[i:i + 1])[0] for i in range(6)])
    expected = (w[t] * per_row).sum() / w[t].sum()
    assert cross_entropy(z, t, weight=w)[0] == pytest.approx(expected, rel=1e-12)
    assert cross_entropy(z, t, weight=3 * w)[0] == pytest.approx(expected, rel=1e-12)   # scale-free


@pytest.mark.parametrize("options", OPTIONS)
def test_torch_oracle(options):
    torch = pytest.importorskip("torch")
    z, t, options = case(6, 7, np.float64, options, seed=5)
    loss, grad = cross_entropy(z, t, **options)
    tz = torch.from_numpy(z).requires_grad_(True)
    weight = options.get("weight")
    tloss = torch.nn.functional.cross_entropy(tz, torch.from_numpy(t),
                                              weight=None if weight is None else torch.from_numpy(weight),
                                              label_smoothing=options.get("label_smoothing", 0.0))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(grad, tz.grad.numpy(), rtol=0, atol=1e-12)


def test_criterion_object_passes_the_options():
    z, t, options = case(4, 7, np.float32, dict(weight="random", label_smoothing=0.1))
    criterion = CrossEntropyLoss(**options)
    loss = criterion(z, t)
    expected = cross_entropy(z, t, **options)
    assert loss == expected[0] and np.array_equal(criterion.backward(), expected[1])


@pytest.mark.parametrize("method", ["numba", "reference"])
@pytest.mark.parametrize("options, match", [
    (dict(label_smoothing=-0.1), r"label_smoothing must be in \[0, 1\]"),
    (dict(label_smoothing=1.5), r"label_smoothing must be in \[0, 1\]"),
    (dict(weight=np.ones(6)), "weight must hold 7"),
    (dict(weight=-np.ones(7)), "weight must hold 7"),
    (dict(weight=np.full(7, np.nan)), "weight must hold 7"),
])
def test_bad_options_give_one_line_errors(method, options, match):
    with pytest.raises(UserError, match=match):
        cross_entropy(np.zeros((2, 7), np.float32), np.array([0, 1]), method=method, **options)


@pytest.mark.parametrize("method", ["numba", "reference"])
def test_bad_targets_with_options(method):
    with pytest.raises(UserError, match=r"class indices in \[0, 7\)"):
        cross_entropy(np.zeros((2, 7), np.float32), np.array([0, 7]), method=method, label_smoothing=0.1)
