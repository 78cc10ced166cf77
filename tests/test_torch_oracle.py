"""PyTorch as the oracle: same weights, same numbers (float64, to 1e-10).

Skipped when torch is not installed; CI installs torch==2.13.0 so they run there.
"""

from collections import OrderedDict

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed: pip install torch==2.13.0")
nn = torch.nn
# torch's OpenMP threads next to numba's oversubscribe the 2 cores (and float64 convs
# have no fast path anyway): one torch thread keeps these tests fast.
torch.set_num_threads(1)

from numpy_cnn.nn.arch import build_model  # noqa: E402
from numpy_cnn.train.checkpoint import Checkpoint, load_checkpoint, save_checkpoint  # noqa: E402
from numpy_cnn.nn.layers import BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Linear, MaxPool2d, ReLU  # noqa: E402
from numpy_cnn.nn.loss import cross_entropy  # noqa: E402
from numpy_cnn.nn.models import paper_net  # noqa: E402
from numpy_cnn.nn.optim import SGD, Adam, AdamW  # noqa: E402

ATOL = 1e-10


def torch_twin(layer):
    """The torch module with the same hyper-parameters and weights."""
    if isinstance(layer, Conv2d):
        t = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                      stride=layer.stride, padding=layer.padding).double()
    elif isinstance(layer, Linear):
        t = nn.Linear(layer.in_features, layer.out_features).double()
    elif isinstance(layer, MaxPool2d):
        return nn.MaxPool2d(layer.kernel_size, layer.stride)
    elif isinstance(layer, ReLU):
        return nn.ReLU()
    elif isinstance(layer, (BatchNorm1d, BatchNorm2d)):
        kind = nn.BatchNorm2d if isinstance(layer, BatchNorm2d) else nn.BatchNorm1d
        t = kind(layer.num_features, eps=layer.eps, momentum=layer.momentum).double()
    elif isinstance(layer, Dropout):
        return nn.Dropout(layer.p)
    else:
        return nn.Flatten()
    t.load_state_dict({k: torch.from_numpy(v) for k, v in layer.state_dict().items()})
    return t.train(layer.training)


def torch_paper_net(model):
    t = nn.Sequential(OrderedDict((name, torch_twin(layer)) for name, layer in model.named_children()))
    t.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return t


def compare_layer(layer, x, rng):
    """Forward, input gradient and every parameter gradient against torch."""
    upstream = rng.standard_normal(layer.forward(x).shape)
    y = layer.forward(x)
    dx = layer.backward(upstream)
    twin = torch_twin(layer)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = twin(tx)
    ty.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=ATOL)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, dict(twin.named_parameters())[name].grad.numpy(),
                                   rtol=0, atol=ATOL)


@pytest.mark.parametrize("method", ["reference", "im2col", "direct"])
@pytest.mark.parametrize("shape", [
    (1, 3, 48, 48, 6, 5, 1, 0),     # the paper's conv1, batch 1
    (4, 6, 22, 22, 16, 5, 1, 0),    # the paper's conv2
    (2, 3, 7, 6, 4, (3, 2), 1, 1),
    (3, 2, 9, 8, 3, 3, 2, 1),
    (2, 2, 6, 5, 2, (2, 3), 2, 2),
    (2, 3, 7, 7, 2, 3, 3, 0),
])
def test_conv2d(shape, method, rng):
    n, c, h, w, f, k, s, p = shape
    layer = Conv2d(c, f, k, stride=s, padding=p, rng=rng, dtype=np.float64, method=method)
    compare_layer(layer, rng.standard_normal((n, c, h, w)), rng)


@pytest.mark.parametrize("shape,kernel,stride", [
    ((4, 6, 44, 44), 2, None), ((2, 3, 5, 7), 2, None), ((2, 2, 7, 6), 3, 2), ((1, 2, 7, 5), (2, 3), (1, 2)),
])
@pytest.mark.parametrize("method", ["reference", "numba"])
def test_maxpool2d(shape, kernel, stride, method, rng):
    # Distinct values: torch and we then agree on every argmax without relying on tie rules.
    x = rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64)
    compare_layer(MaxPool2d(kernel, stride, method=method), x, rng)


@pytest.mark.parametrize("method", ["reference", "numba"])
def test_maxpool2d_ties_go_to_the_first_maximum_like_torch(method, rng):
    x = rng.integers(0, 2, size=(2, 3, 6, 6)).astype(np.float64)   # many ties
    compare_layer(MaxPool2d(2, method=method), x, rng)


def test_relu_and_linear(rng):
    compare_layer(ReLU(), rng.standard_normal((3, 4, 5)), rng)
    compare_layer(Linear(1296, 120, rng=rng, dtype=np.float64), rng.standard_normal((4, 1296)), rng)


def test_cross_entropy(rng):
    logits, target = rng.standard_normal((5, 7)) * 4, rng.integers(0, 7, 5)
    loss, grad = cross_entropy(logits, target)
    tl = torch.from_numpy(logits).requires_grad_(True)
    tloss = nn.functional.cross_entropy(tl, torch.from_numpy(target))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), abs=ATOL)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=0, atol=ATOL)


def _assert_same_loss_and_gradients(model, twin, rng):
    """One batch of 4 random 48x48 images through ``model`` and its torch ``twin``: equal loss and gradients."""
    x, target = rng.standard_normal((4, 3, 48, 48)), rng.integers(0, 7, 4)
    loss, dlogits = cross_entropy(model.forward(x), target)
    model.backward(dlogits)
    tloss = nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(target))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), abs=ATOL)
    tparams = dict(twin.named_parameters())
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), rtol=0, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("conv_method,pool_method", [("reference", "reference"), ("direct", "numba")])
def test_whole_network_loss_and_gradients(conv_method, pool_method, rng):
    model = paper_net(rng=rng, dtype=np.float64, conv_method=conv_method, pool_method=pool_method)
    twin = torch_paper_net(model)
    _assert_same_loss_and_gradients(model, twin, rng)


def _twenty_steps_agree(model, twin, opt, topt, rng) -> None:
    """20 steps of ``opt`` on ``model`` and ``topt`` on its torch ``twin``, same batches; weights agree to 1e-8."""
    for _ in range(20):
        x, target = rng.standard_normal((4, 3, 48, 48)), rng.integers(0, 7, 4)
        _, dlogits = cross_entropy(model.forward(x), target)
        model.backward(dlogits)
        opt.step()
        topt.zero_grad()
        nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(target)).backward()
        topt.step()
    tstate = twin.state_dict()
    for name, value in model.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=0, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("weight_decay,nesterov", [(0.0, False), (5e-4, False), (5e-4, True)])
def test_twenty_sgd_momentum_steps_match_torch(weight_decay, nesterov, rng):
    model = paper_net(rng=rng, dtype=np.float64)
    twin = torch_paper_net(model)
    opt = SGD(model.parameters(), lr=0.001, momentum=0.9, weight_decay=weight_decay, nesterov=nesterov)
    topt = torch.optim.SGD(twin.parameters(), lr=0.001, momentum=0.9, weight_decay=weight_decay,
                           nesterov=nesterov)
    _twenty_steps_agree(model, twin, opt, topt, rng)


@pytest.mark.parametrize("method", ["reference", "compact", "numba"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("cls,shape", [(BatchNorm2d, (4, 6, 11, 9)), (BatchNorm2d, (1, 3, 4, 4)),
                                       (BatchNorm1d, (5, 12)), (BatchNorm1d, (2, 3))])
def test_batchnorm(cls, shape, training, method, rng):
    layer = cls(shape[1], dtype=np.float64, method=method).train(training)
    layer.weight.data = rng.uniform(0.5, 2.0, shape[1])
    layer.bias.data = rng.standard_normal(shape[1])
    layer.running_mean.data = rng.standard_normal(shape[1])
    layer.running_var.data = rng.uniform(0.5, 2.0, shape[1])
    twin = torch_twin(layer)   # takes the weights and buffers before our forward moves them
    x = rng.standard_normal(shape) * 3 + 1
    upstream = rng.standard_normal(shape)
    y, dx = layer.forward(x), layer.backward(upstream)
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    ty = twin(tx)
    ty.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=ATOL)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=0, atol=ATOL)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, dict(twin.named_parameters())[name].grad.numpy(), rtol=0, atol=ATOL)
    tstate = twin.state_dict()   # running statistics (the unbiased variance) and the counter
    for name, value in layer.state_dict().items():
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=0, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("cls,shape", [(BatchNorm2d, (4, 6, 11, 9)), (BatchNorm1d, (5, 12))])
def test_batchnorm_training_output_and_running_statistics(cls, shape, rng):
    layer = cls(shape[1], dtype=np.float64)
    layer.running_mean.data = rng.standard_normal(shape[1])
    twin = torch_twin(layer)
    x = rng.standard_normal(shape) * 3 + 1
    for _ in range(3):   # three updates of the moving averages
        y, ty = layer.forward(x), twin(torch.from_numpy(x))
        np.testing.assert_allclose(y, ty.detach().numpy(), rtol=0, atol=ATOL)
    tstate = twin.state_dict()
    for name, value in layer.state_dict().items():
        assert value.dtype == tstate[name].numpy().dtype, name
        np.testing.assert_allclose(value, tstate[name].numpy(), rtol=0, atol=ATOL, err_msg=name)


BN_SPEC = "c6k5-bn-relu-pool2-c16k5-bn-relu-pool2-fc120-bn-relu-drop0.5-fc84-relu"


def test_a_batchnorm_checkpoint_loads_into_torch_strictly_and_gives_the_same_logits(tmp_path, rng):
    model = build_model(BN_SPEC, rng=rng, dtype=np.float64)
    opt = SGD(model.parameters(), lr=0.01, momentum=0.9)
    for _ in range(3):   # train a little, so the running statistics and the weights have moved
        x, target = rng.standard_normal((6, 3, 48, 48)), rng.integers(0, 7, 6)
        model.backward(cross_entropy(model.forward(x), target)[1])
        opt.step()
    save_checkpoint(tmp_path / "c.npz", Checkpoint(model=model.state_dict(), meta={"arch": BN_SPEC}))
    ckpt = np.load(tmp_path / "c.npz")
    twin = nn.Sequential(OrderedDict((name, torch_twin(layer)) for name, layer in model.named_children())).double()
    twin.load_state_dict({k: torch.from_numpy(ckpt[k]) for k in ckpt.files if not k.startswith("_")}, strict=True)
    assert int(twin.bn1.num_batches_tracked) == 3
    x = rng.standard_normal((5, 3, 48, 48))
    model.eval()
    twin.eval()
    with torch.no_grad():
        np.testing.assert_allclose(model.forward(x), twin(torch.from_numpy(x)).numpy(), rtol=0, atol=ATOL)
    assert load_checkpoint(tmp_path / "c.npz").model.keys() == twin.state_dict().keys()


def test_whole_batchnorm_network_loss_and_gradients_in_training_mode(rng):
    model = build_model(BN_SPEC.replace("-drop0.5", ""), rng=rng, dtype=np.float64)
    twin = nn.Sequential(OrderedDict((name, torch_twin(layer)) for name, layer in model.named_children()))
    _assert_same_loss_and_gradients(model, twin, rng)


@pytest.mark.parametrize("method", ["reference", "numba"])
@pytest.mark.parametrize("ours,theirs,options", [
    (Adam, torch.optim.Adam, dict(lr=0.001)),
    (Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    (AdamW, torch.optim.AdamW, dict(lr=0.001)),                        # default weight decay 0.01
    (AdamW, torch.optim.AdamW, dict(lr=0.01, betas=(0.85, 0.995), weight_decay=0.1)),
])
def test_twenty_adam_steps_match_torch(ours, theirs, options, method, rng):
    model = paper_net(rng=rng, dtype=np.float64)
    twin = torch_paper_net(model)
    opt = ours(model.parameters(), method=method, **options)
    topt = theirs(twin.parameters(), **options)
    _twenty_steps_agree(model, twin, opt, topt, rng)
    # The optimizer state too, under torch's names.
    state = opt.state_dict()
    for i, tp in enumerate(twin.parameters()):
        tps = topt.state[tp]
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_allclose(state[f"{i}.{key}"], tps[key].numpy(), rtol=0, atol=1e-8)
        assert int(state[f"{i}.step"]) == int(tps["step"]) == 20
