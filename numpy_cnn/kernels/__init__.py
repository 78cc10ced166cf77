"""numba kernels for the hot loops: direct convolution and max-pooling.

Pure functions on NumPy arrays (NCHW). Each module holds one idea and
explains its loop layout at the top:

* :mod:`numpy_cnn.kernels.conv_direct` -- ``conv2d_forward``, ``conv2d_backward``
* :mod:`numpy_cnn.kernels.pool` -- ``maxpool2d_forward``, ``maxpool2d_backward``

Importing this package imports numba; compiled code is cached on disk, so only
the first call after a change of source pays the compile time.
"""

from numpy_cnn.kernels.conv_direct import conv2d_backward, conv2d_forward, conv_output_size
from numpy_cnn.kernels.pool import argmax_dtype, maxpool2d_backward, maxpool2d_forward, pool_output_size

__all__ = [
    "conv2d_forward", "conv2d_backward", "conv_output_size",
    "maxpool2d_forward", "maxpool2d_backward", "pool_output_size", "argmax_dtype",
]
