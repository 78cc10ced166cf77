"""Data for the experiment: loaders, preprocessing cache, split, augmentation, synthetic faces.

The trainer needs only a few names::

    from numpy_cnn.data import load_dataset, to_network_input, MeanSubtraction, augment

    ds = load_dataset("data/synthetic_sfew", split_dir=run_dir, cache_dir="data/cache")
    mean = MeanSubtraction.fit(to_float(ds.x_train))       # a scalar, on training data only
    x = mean(to_network_input(augment(to_float(ds.x_train), rng)))   # (N, 3, 48, 48) float32

Importing this package is cheap: only NumPy and Pillow.
"""

from .augment import augment, hflip, random_horizontal_flip, random_rotation, rotate
from .classes import CLASSES
from .dataset import Dataset, load_dataset
from .decode import decode_image
from .images import load_images
from .normalize import MeanSubtraction, to_float, to_network_input
from .split import stratified_split
from .synthetic import ensure_synthetic_dataset
from .synthetic_fer import ensure_synthetic_fer

__all__ = [
    "CLASSES", "Dataset", "MeanSubtraction", "augment", "decode_image", "ensure_synthetic_dataset",
    "ensure_synthetic_fer", "hflip", "load_dataset", "load_images", "random_horizontal_flip", "random_rotation",
    "rotate", "stratified_split", "to_float", "to_network_input",
]
