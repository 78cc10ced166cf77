"""The opt-in pieces of a training epoch: lr schedule, loss options, one channel, test-time augmentation.

Each is checked against the same computation written out by hand, and each
default against today's epoch, bit for bit.
"""

import numpy as np
import pytest
from train_support import TINY_ARCH

from numpy_cnn.data import MeanSubtraction
from numpy_cnn.errors import UserError
from numpy_cnn.nn.arch import build_model
from numpy_cnn.nn.loss import cross_entropy, softmax
from numpy_cnn.nn.optim import SGD, build_optimizer
from numpy_cnn.train import loop
from numpy_cnn.train.balance import class_weights
from numpy_cnn.train.schedule import build_schedule, steps_per_epoch

SIZE = 24


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (22, SIZE, SIZE), dtype=np.uint8), rng.integers(0, 7, 22)


def model_and_sgd(channels=3, seed=0):
    model = build_model(TINY_ARCH, channels, SIZE, 7, rng=seed)
    return model, SGD(model.parameters(), lr=0.05, momentum=0.9)


def weights(model):
    return {name: p.data.copy() for name, p in model.named_parameters()}


def same(a, b):
    return a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)


def an_epoch(data, channels=3, seed=1, **options):
    x, y = data
    mean = MeanSubtraction.fit(x)
    return loop.epoch_inputs(x, y, np.random.default_rng(seed), mean, channels=channels), mean


def test_the_defaults_are_todays_epoch_bit_for_bit(data):
    (xe, ye), _ = an_epoch(data)
    a, opt_a = model_and_sgd()
    b, opt_b = model_and_sgd()
    stats_a = loop.train_epoch(a, opt_a, xe, ye, 4)
    constant = build_schedule("constant", 0.05, epochs=1, steps_per_epoch=steps_per_epoch(len(ye), 4))
    stats_b = loop.train_epoch(b, opt_b, xe, ye, 4, schedule=constant, label_smoothing=0.0, class_weight=None)
    assert same(weights(a), weights(b)) and stats_a.loss == stats_b.loss
    assert stats_a.lr is None and stats_b.lr == 0.05


def by_hand(model, optimizer, xe, ye, batch, lr_at=None, first_step=0, **loss_options):
    """train_epoch's steps written out: forward, loss, backward, lr, step."""
    model.train()
    for step, start in enumerate(range(0, len(ye), batch)):
        logits = model.forward(xe[start:start + batch])
        _, dlogits = cross_entropy(logits, ye[start:start + batch], **loss_options)
        model.backward(dlogits)
        if lr_at is not None:
            optimizer.lr = lr_at(first_step + step)
        optimizer.step()


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_a_schedule_sets_the_lr_of_every_step(data, optimizer):
    (xe, ye), _ = an_epoch(data)
    per_epoch = steps_per_epoch(len(ye), 4)
    schedule = build_schedule("onecycle", 0.05, epochs=3, steps_per_epoch=per_epoch, warmup=1)
    runs = []
    for _ in range(2):
        model = build_model(TINY_ARCH, 3, SIZE, 7, rng=0)
        runs.append((model, build_optimizer(optimizer, model.parameters(), 0.05, 0.0, momentum=0.9)))
    (a, opt_a), (b, opt_b) = runs
    stats = loop.train_epoch(a, opt_a, xe, ye, 4, schedule=schedule, first_step=2 * per_epoch)   # the third epoch
    by_hand(b, opt_b, xe, ye, 4, schedule, 2 * per_epoch)
    assert same(weights(a), weights(b))
    assert stats.lr == schedule(3 * per_epoch - 1) == opt_a.lr
    c = build_model(TINY_ARCH, 3, SIZE, 7, rng=0)
    loop.train_epoch(c, build_optimizer(optimizer, c.parameters(), 0.05, 0.0, momentum=0.9), xe, ye, 4)
    assert not same(weights(a), weights(c))                            # the schedule changed the steps


@pytest.mark.parametrize("options", [dict(label_smoothing=0.1), dict(class_weight="balanced"),
                                     dict(label_smoothing=0.2, class_weight="balanced")])
def test_loss_options_reach_the_loss(data, options):
    (xe, ye), _ = an_epoch(data)
    if options.get("class_weight") == "balanced":
        options = {**options, "class_weight": class_weights(data[1], 7)}
    a, opt_a = model_and_sgd()
    b, opt_b = model_and_sgd()
    stats = loop.train_epoch(a, opt_a, xe, ye, 4, **options)
    by_hand(b, opt_b, xe, ye, 4, weight=options.get("class_weight"),
            label_smoothing=options.get("label_smoothing", 0.0))
    assert same(weights(a), weights(b)) and np.isfinite(stats.loss)
    c, opt_c = model_and_sgd()
    loop.train_epoch(c, opt_c, xe, ye, 4)
    assert not same(weights(a), weights(c))


def test_one_channel_trains_end_to_end(data):
    """--channels 1: the gray image itself (no copies) through a network built for one channel."""
    x, y = data
    (xe, ye), mean = an_epoch(data, channels=1)
    assert xe.shape == (22, 1, SIZE, SIZE) and np.asarray(xe).dtype == np.float32
    model, opt = model_and_sgd(channels=1)
    before = weights(model)
    stats = loop.train_epoch(model, opt, xe, ye, 4)
    assert np.isfinite(stats.loss) and not same(before, weights(model))
    x_test = loop.lazy_network_input(x, mean, 1)
    loss, accuracy, predicted = loop.evaluate(model, x_test, y)
    assert np.isfinite(loss) and predicted.shape == (22,) and 0 <= accuracy <= 1
    # One channel sees what each of the three copies sees.
    (x3, _), _ = an_epoch(data, channels=3)
    np.testing.assert_array_equal(np.asarray(xe)[:, 0], np.asarray(x3)[:, 2])


def test_predict_proba_without_tta_is_the_softmax(data):
    x, _ = data
    model, _ = model_and_sgd()
    inputs = loop.network_input(x / np.float32(255), MeanSubtraction.fit(x))
    np.testing.assert_allclose(loop.predict_proba(model, inputs), softmax(loop.predict_logits(model, inputs)),
                               rtol=1e-6)


def test_flip_tta_averages_the_image_and_its_mirror(data):
    x, y = data
    model, _ = model_and_sgd()
    mean = MeanSubtraction.fit(x)                            # a scalar mean
    inputs = loop.network_input(x / np.float32(255), mean)
    manual = (softmax(model.forward(inputs).astype(np.float64))
              + softmax(model.forward(np.ascontiguousarray(inputs[..., ::-1])).astype(np.float64))) / 2
    got = loop.predict_proba(model, inputs, tta="flip")                  # one batch, as the manual forward
    np.testing.assert_allclose(got, manual, rtol=1e-12)
    np.testing.assert_allclose(loop.predict_proba(model, inputs, tta="flip", batch_size=8), manual, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1)
    lazy = loop.predict_proba(model, loop.lazy_network_input(x, mean), tta="flip")
    np.testing.assert_allclose(lazy, got, atol=1e-6)                     # uint8 built lazily: the same
    loss, accuracy, predicted = loop.evaluate(model, inputs, y, tta="flip")
    np.testing.assert_array_equal(predicted, manual.argmax(axis=1))
    assert loss == pytest.approx(-np.log(manual[np.arange(len(y)), y]).mean(), rel=1e-6)
    assert accuracy == pytest.approx((predicted == y).mean())
    with pytest.raises(UserError, match="--tta must be one of none, flip"):
        loop.predict_proba(model, inputs, tta="five-crop")


def test_flip_tta_with_a_per_pixel_mean_mirrors_the_raw_image(data):
    x, _ = data
    model, _ = model_and_sgd()
    mean = MeanSubtraction.fit(x, per_pixel=True)
    raw = x / np.float32(255)
    manual = (softmax(model.forward(loop.network_input(raw, mean)).astype(np.float64))
              + softmax(model.forward(loop.network_input(np.ascontiguousarray(raw[..., ::-1]), mean))
                        .astype(np.float64))) / 2
    got = loop.predict_proba(model, loop.network_input(raw, mean), tta="flip", mean=mean)
    np.testing.assert_allclose(got, manual, atol=1e-6)
    naive = loop.predict_proba(model, loop.network_input(raw, mean), tta="flip")   # mirrors the mean too
    assert not np.allclose(naive, manual, atol=1e-6)


def test_evaluate_without_tta_is_unchanged(data):
    x, y = data
    model, _ = model_and_sgd()
    inputs = loop.network_input(x / np.float32(255), MeanSubtraction.fit(x))
    loss, accuracy, predicted = loop.evaluate(model, inputs, y)
    logits = loop.predict_logits(model, inputs)
    assert loss == cross_entropy(logits, y)[0] and np.array_equal(predicted, logits.argmax(axis=1))


def test_background_compile_of_the_optional_kernels():
    model, opt = model_and_sgd()
    thread = loop.compile_in_background(model, opt, (3, SIZE, SIZE), soft_loss=True, jitter=True)
    thread.join()
    assert not thread.is_alive()
