"""The paper's network: the PyTorch CIFAR-10 tutorial net adapted to 48x48 faces and 7 classes.

::

    (N, 3, 48, 48) -conv1 5x5-> (N, 6, 44, 44) -relu-> -pool 2-> (N, 6, 22, 22)
                   -conv2 5x5-> (N, 16, 18, 18) -relu-> -pool 2-> (N, 16, 9, 9)
                   -flatten-> (N, 1296) -fc1-> 120 -relu-> -fc2-> 84 -relu-> -fc3-> (N, 7)

It has one definition, the spec :data:`numpy_cnn.nn.arch.DEFAULT_ARCH`
(``c6k5-relu-pool2-c16k5-relu-pool2-fc120-relu-fc84-relu``), which is also
what ``python train_numpy.py`` trains: edit the spec and both change.

Layer names match the tutorial's ``Net`` (``conv1``, ``fc3``, ...), so a
``state_dict`` loads into a PyTorch ``nn.Sequential`` built from the same
``OrderedDict`` of names.
"""

from __future__ import annotations

import numpy as np

from numpy_cnn.nn.arch import DEFAULT_ARCH, build_model
from numpy_cnn.nn.module import Sequential


def paper_net(in_channels: int = 3, image_size: int = 48, num_classes: int = 7, *,
              rng: np.random.Generator | int | None = None, dtype: type = np.float32,
              conv_method: str | None = None, pool_method: str = "numba") -> Sequential:
    """conv(in->6, 5) - relu - pool 2 - conv(6->16, 5) - relu - pool 2 - 1296-120-84-classes.

    ``image_size`` sets the flatten width: ``16 * s * s`` with
    ``s = ((image_size - 4) // 2 - 4) // 2`` (9 for 48, so 1296); an image too
    small for the two convs and pools is a one-line error. Layers are
    initialised in order from one Generator, so a seed fixes every weight.
    ``conv_method`` and ``pool_method`` pick the implementations (see
    :class:`~numpy_cnn.nn.layers.Conv2d` and :class:`~numpy_cnn.nn.layers.MaxPool2d`);
    the defaults are the fast ones.
    """
    return build_model(DEFAULT_ARCH, in_channels, image_size, num_classes, rng=rng, dtype=dtype,
                       conv_method=conv_method, pool_method=pool_method)
