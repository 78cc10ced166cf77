"""The layers: each file holds one layer, its forward and its backward side by side."""

from numpy_cnn.nn.layers.activation import ReLU
from numpy_cnn.nn.layers.batchnorm import BatchNorm1d, BatchNorm2d
from numpy_cnn.nn.layers.conv import Conv2d
from numpy_cnn.nn.layers.dropout import Dropout
from numpy_cnn.nn.layers.flatten import Flatten
from numpy_cnn.nn.layers.linear import Linear
from numpy_cnn.nn.layers.pool import MaxPool2d

__all__ = ["BatchNorm1d", "BatchNorm2d", "Conv2d", "Dropout", "Flatten", "Linear", "MaxPool2d", "ReLU"]
