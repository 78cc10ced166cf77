"""The network core: what a student reads to learn backprop.

It reads on its own, as a small deep-learning library. Nothing in it imports
the data loaders, the trainer or the command line (``lint-imports`` checks):

* :mod:`.module` -- ``Module``, ``Parameter``, ``Sequential``: the parameter protocol
* :mod:`.layers` -- ``Conv2d``, ``MaxPool2d``, ``ReLU``, ``Linear``, ``Flatten``,
  ``BatchNorm1d/2d``, ``Dropout``: each forward beside its backward
* :mod:`.loss` -- softmax cross-entropy and its gradient
* :mod:`.optim` -- ``SGD``, ``Adam``, ``AdamW``
* :mod:`.init` -- PyTorch's default initialisation
* :mod:`.im2col` -- the readable im2col / col2im, and the reference convolution built on them
* :mod:`.winograd` -- Winograd F(2x2, 3x3) in NumPy, the readable twin of the numba kernel
* :mod:`.naive` -- loop-by-loop convolution and max-pool, the slowest and plainest truth
* :mod:`.gradcheck` -- finite differences in float64, the proof of every backward
* :mod:`.arch` -- a network from a one-line spec, ``c6k5-relu-pool2-...``
* :mod:`.models` -- the paper's network

The fast numba kernels live beside it, in :mod:`numpy_cnn.kernels`; the layers
reach them through :mod:`._fast`, so importing the core does not import numba.
"""
