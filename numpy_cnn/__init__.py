"""numpy_cnn: a from-scratch convolutional neural network in NumPy, written to be studied.

Importing the package is cheap: numba and matplotlib are imported only by the
modules that need them, when they are first used.
"""

__version__ = "0.1.0"
