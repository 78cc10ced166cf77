"""The layers: each file holds one layer, its forward and its backward side by side."""

from .activation import ReLU
from .conv import Conv2d
from .flatten import Flatten
from .linear import Linear
from .pool import MaxPool2d

__all__ = ["Conv2d", "Flatten", "Linear", "MaxPool2d", "ReLU"]
