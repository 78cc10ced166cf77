"""numba kernels for the hot loops: convolution, pooling, ReLU, loss, SGD and augmentation.

Pure functions on NumPy arrays (NCHW). Each module holds one idea and
explains its loop layout at the top:

* :mod:`numpy_cnn.kernels.conv_direct` -- ``conv2d_forward``, ``conv2d_backward``
* :mod:`numpy_cnn.kernels.conv_blocked` -- ``blocked_forward``: the forward register-blocked (16 output channels
  x a block of positions in registers), which ``conv2d_forward`` runs where it fits; ``blocked_weight_grad``
  and ``blocked_input_grad``, the same blocks for the backward, which ``gemm_conv_backward`` runs where they fit
* :mod:`numpy_cnn.kernels.simd` -- vectors of 16 float32 that numba keeps in registers (for conv_blocked)
* :mod:`numpy_cnn.kernels.conv_phases` -- the polyphase split that turns conv_direct's stride > 1 into stride 1
  (plain NumPy: ``split_input``, ``split_weight`` and their inverses for the gradients)
* :mod:`numpy_cnn.kernels.winograd` -- ``winograd_forward``, ``winograd_backward`` (3x3, stride 1)
* :mod:`numpy_cnn.kernels.conv_gemm` -- ``gemm_conv_forward``, ``gemm_conv_backward`` (im2col + GEMM, channels last)
* :mod:`numpy_cnn.kernels.choice` -- ``choose_method`` (which of those three a ``Conv2d`` runs by default) and
  ``choose_forward`` (a faster forward for it)
* :mod:`numpy_cnn.kernels.blas` -- ``matmul`` (OpenBLAS's GEMM, called from inside numba loops)
* :mod:`numpy_cnn.kernels.threads` -- ``use_threads`` (how many threads every kernel runs on), ``threads_for``
  (how many of them a GEMM-based kernel call uses)
* :mod:`numpy_cnn.kernels.layout` -- NCHW <-> channels-last copies and per-thread scratch memory (for those kernels)
* :mod:`numpy_cnn.kernels.pool` -- ``maxpool2d_forward``, ``maxpool2d_backward``
* :mod:`numpy_cnn.kernels.relu` -- ``relu_forward``, ``relu_backward``
* :mod:`numpy_cnn.kernels.batchnorm` -- ``batchnorm_forward_train``, ``batchnorm_backward_train``
* :mod:`numpy_cnn.kernels.loss` -- ``cross_entropy``, ``soft_cross_entropy`` (softmax cross-entropy and its gradient;
  the second with class weights and label smoothing)
* :mod:`numpy_cnn.kernels.sgd` -- ``sgd_step`` (momentum SGD over all parameters in one call)
* :mod:`numpy_cnn.kernels.adam` -- ``adam_step`` (Adam and AdamW, the same way)
* :mod:`numpy_cnn.kernels.augment` -- ``flip_rotate``, ``augment_images`` (the training augmentation)

Each has a readable NumPy twin that the tests prove equal: the ``method="reference"``
path of the layer, loss, optimizer or augmentation that calls it.

Importing this package is cheap: it imports nothing. The first use of a name
below (``numpy_cnn.kernels.conv2d_forward``) imports its module, and numba
with it (about half a second); the name is then kept in this module, so every
later use is a plain attribute lookup. That lets the core import
:mod:`numpy_cnn.kernels.choice` without importing numba (PEP 562). Compiled
code is cached on disk, so only the first call after a change of source pays
the compile time.
"""

from importlib import import_module

# name -> the module that defines it
_HOME = {
    "adam_step": "adam",
    "flip_rotate": "augment", "augment_images": "augment",
    "batchnorm_forward_train": "batchnorm", "batchnorm_backward_train": "batchnorm",
    "choose_method": "choice", "choose_forward": "choice",
    "blocked_forward": "conv_blocked", "blocked_weight_grad": "conv_blocked", "blocked_input_grad": "conv_blocked",
    "conv2d_forward": "conv_direct", "conv2d_backward": "conv_direct", "conv_output_size": "conv_direct",
    "gemm_conv_forward": "conv_gemm", "gemm_conv_backward": "conv_gemm",
    "cross_entropy": "loss", "soft_cross_entropy": "loss",
    "maxpool2d_forward": "pool", "maxpool2d_backward": "pool", "pool_output_size": "pool", "argmax_dtype": "pool",
    "relu_forward": "relu", "relu_backward": "relu",
    "sgd_step": "sgd",
    "winograd_forward": "winograd", "winograd_backward": "winograd",
}

__all__ = list(_HOME)


def __getattr__(name: str) -> object:
    """Import the module that defines ``name`` and keep the name here (called only on a miss)."""
    if name not in _HOME:
        # Submodules (``from numpy_cnn.kernels import winograd``) go on to the import system from here.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{_HOME[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
