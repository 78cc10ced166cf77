"""Data for the experiment: loaders, preprocessing cache, split, augmentation.

The generated data (:mod:`numpy_cnn.data.synthetic`) is a subpackage of its own:
nothing on the loading path imports it.

The trainer needs only a few names::

    from numpy_cnn.data import load_dataset, to_network_input, MeanSubtraction, augment

    ds = load_dataset("data/synthetic_sfew", split_dir=run_dir, cache_dir="data/cache")
    mean = MeanSubtraction.fit(to_float(ds.x_train))       # a scalar, on training data only
    x = mean(to_network_input(augment(to_float(ds.x_train), rng)))   # (N, 3, 48, 48) float32

The training floor (:mod:`numpy_cnn.train`) imports from here only, never from
the modules below: what a run, its split files, K-fold and the reports use is
exported here, grouped by stage.

Importing this package is cheap: only NumPy and Pillow.
"""

# Loading: a DataSpec says what, load_spec (or load_dataset, the same by keywords) loads it.
from numpy_cnn.data.classes import CLASSES
from numpy_cnn.data.dataset import (TEST_SPLIT_FILE, TRAIN_SPLIT_FILE, DataSpec, Dataset, Labelled, load_dataset,
                                    load_pool, load_spec, validation_split)
from numpy_cnn.data.decode import FITS, decode_image
from numpy_cnn.data.images import load_image, load_images
# Splits: random, group-disjoint, K-fold and validation, and the files that record them.
from numpy_cnn.data.groups import GroupRule, check_rule
from numpy_cnn.data.sources import Listing
from numpy_cnn.data.split import stratified_folds, stratified_split
from numpy_cnn.data.splitfiles import GROUPS_FILE, read_split_file, write_groups_file, write_split_file
# Reports: leakage between train and test, and what the face detector found.
from numpy_cnn.data.faces import DetectorSettings, face_report, require_cv2
from numpy_cnn.data.leakage import leakage_line, leakage_report
# Preprocessing and augmentation.
from numpy_cnn.data.augment import augment, hflip, random_horizontal_flip, random_rotation, rotate
from numpy_cnn.data.normalize import MeanSubtraction, to_float, to_network_input

__all__ = [
    "CLASSES", "DataSpec", "FITS", "Dataset", "DetectorSettings", "GROUPS_FILE", "GroupRule", "Labelled", "Listing",
    "MeanSubtraction", "TEST_SPLIT_FILE", "TRAIN_SPLIT_FILE", "augment", "check_rule", "decode_image",
    "face_report", "hflip", "leakage_line", "leakage_report", "load_dataset", "load_image", "load_images",
    "load_pool", "load_spec", "random_horizontal_flip", "random_rotation", "read_split_file", "require_cv2",
    "rotate", "stratified_folds", "stratified_split", "to_float", "to_network_input", "validation_split",
    "write_groups_file", "write_split_file",
]
