"""numba kernels for the hot loops: convolution, pooling, ReLU, loss, SGD and augmentation.

Pure functions on NumPy arrays (NCHW). Each module holds one idea and
explains its loop layout at the top:

* :mod:`numpy_cnn.kernels.conv_direct` -- ``conv2d_forward``, ``conv2d_backward``
* :mod:`numpy_cnn.kernels.winograd` -- ``winograd_forward``, ``winograd_backward`` (3x3, stride 1)
* :mod:`numpy_cnn.kernels.conv_gemm` -- ``gemm_conv_forward``, ``gemm_conv_backward`` (im2col + GEMM, channels last)
* :mod:`numpy_cnn.kernels.blas` -- ``matmul`` (OpenBLAS's GEMM, called from inside numba loops)
* :mod:`numpy_cnn.kernels.threads` -- ``threads_for`` (how many threads a GEMM-based kernel call uses)
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

Importing this package imports numba; compiled code is cached on disk, so only
the first call after a change of source pays the compile time.
"""

from numpy_cnn.kernels.adam import adam_step
from numpy_cnn.kernels.augment import augment_images, flip_rotate
from numpy_cnn.kernels.batchnorm import batchnorm_backward_train, batchnorm_forward_train
from numpy_cnn.kernels.conv_direct import conv2d_backward, conv2d_forward, conv_output_size
from numpy_cnn.kernels.conv_gemm import gemm_conv_backward, gemm_conv_forward
from numpy_cnn.kernels.loss import cross_entropy, soft_cross_entropy
from numpy_cnn.kernels.pool import argmax_dtype, maxpool2d_backward, maxpool2d_forward, pool_output_size
from numpy_cnn.kernels.relu import relu_backward, relu_forward
from numpy_cnn.kernels.sgd import sgd_step
from numpy_cnn.kernels.winograd import winograd_backward, winograd_forward

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv_output_size", "winograd_forward", "winograd_backward",
    "gemm_conv_forward", "gemm_conv_backward",
    "maxpool2d_forward", "maxpool2d_backward", "pool_output_size", "argmax_dtype",
    "relu_forward", "relu_backward", "batchnorm_forward_train", "batchnorm_backward_train",
    "cross_entropy", "soft_cross_entropy", "sgd_step", "adam_step", "flip_rotate", "augment_images",
]
