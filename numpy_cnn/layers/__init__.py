"""The layers: each file holds one layer, its forward and its backward side by side."""

from .activation import ReLU
from .batchnorm import BatchNorm1d, BatchNorm2d
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .pool import MaxPool2d

__all__ = ["BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Linear", "MaxPool2d", "ReLU"]
