"""The paper's network, assembled from layers.

It is the PyTorch CIFAR-10 tutorial net adapted to 48x48 faces and 7 classes::

    (N, 3, 48, 48) -conv1 5x5-> (N, 6, 44, 44) -relu-> -pool 2-> (N, 6, 22, 22)
                   -conv2 5x5-> (N, 16, 18, 18) -relu-> -pool 2-> (N, 16, 9, 9)
                   -flatten-> (N, 1296) -fc1-> 120 -relu-> -fc2-> 84 -relu-> -fc3-> (N, 7)

Layer names match the tutorial's ``Net`` (``conv1``, ``fc3``, ...), so a
``state_dict`` loads into a PyTorch ``nn.Sequential`` built from the same
``OrderedDict`` of names.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .errors import UserError
from .init import as_generator
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from .module import Sequential


def paper_net(in_channels: int = 3, image_size: int = 48, num_classes: int = 7, *,
              rng: np.random.Generator | int | None = None, dtype: type = np.float32,
              conv_method: str | None = None, pool_method: str = "numba") -> Sequential:
    """Build conv(in->6, 5) - relu - pool 2 - conv(6->16, 5) - relu - pool 2 - 1296-120-84-classes.

    ``image_size`` sets the flatten width: ``16 * s * s`` with
    ``s = ((image_size - 4) // 2 - 4) // 2`` (9 for 48, so 1296). Layers are
    initialised in order from one Generator, so a seed fixes every weight.
    ``conv_method`` and ``pool_method`` pick the implementations (see
    :class:`Conv2d` and :class:`MaxPool2d`); the defaults are the fast ones.
    """
    side = ((image_size - 4) // 2 - 4) // 2
    if side < 1:
        raise UserError(f"paper_net: image_size {image_size} is too small for two 5x5 convs "
                        f"and two 2x2 pools; use at least 16")
    rng = as_generator(rng)
    return Sequential(OrderedDict([
        ("conv1", Conv2d(in_channels, 6, 5, rng=rng, dtype=dtype, method=conv_method,
                         needs_input_grad=False)),   # its input is data: no dx needed
        ("relu1", ReLU()),
        ("pool1", MaxPool2d(2, method=pool_method)),
        ("conv2", Conv2d(6, 16, 5, rng=rng, dtype=dtype, method=conv_method)),
        ("relu2", ReLU()),
        ("pool2", MaxPool2d(2, method=pool_method)),
        ("flatten", Flatten()),
        ("fc1", Linear(16 * side * side, 120, rng=rng, dtype=dtype)),
        ("relu3", ReLU()),
        ("fc2", Linear(120, 84, rng=rng, dtype=dtype)),
        ("relu4", ReLU()),
        ("fc3", Linear(84, num_classes, rng=rng, dtype=dtype)),
    ]))
