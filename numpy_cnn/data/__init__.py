"""Data for the experiment: loaders, preprocessing cache, split, augmentation.

The generated data (:mod:`numpy_cnn.data.synthetic`) is a subpackage of its own:
nothing on the loading path imports it.

The trainer needs only a few names::

    from numpy_cnn.data import load_dataset, to_network_input, MeanSubtraction, augment

    ds = load_dataset("data/synthetic_sfew", split_dir=run_dir, cache_dir="data/cache")
    mean = MeanSubtraction.fit(to_float(ds.x_train))       # a scalar, on training data only
    x = mean(to_network_input(augment(to_float(ds.x_train), rng)))   # (N, 3, 48, 48) float32

Importing this package is cheap: only NumPy and Pillow.
"""

from numpy_cnn.data.augment import augment, hflip, random_horizontal_flip, random_rotation, rotate
from numpy_cnn.data.classes import CLASSES
from numpy_cnn.data.dataset import Dataset, load_dataset
from numpy_cnn.data.decode import decode_image
from numpy_cnn.data.images import load_images
from numpy_cnn.data.normalize import MeanSubtraction, to_float, to_network_input
from numpy_cnn.data.split import stratified_split

__all__ = [
    "CLASSES", "Dataset", "MeanSubtraction", "augment", "decode_image", "hflip", "load_dataset", "load_images", "random_horizontal_flip", "random_rotation",
    "rotate", "stratified_split", "to_float", "to_network_input",
]
