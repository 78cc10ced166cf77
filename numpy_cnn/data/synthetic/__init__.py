"""The generated data: a stand-in for SFEW's film frames and FER2013's face crops.

The project makes its own default data so that ``python train_numpy.py`` runs on a
fresh machine; real datasets are the user's to bring. Nothing on the loading path
(:mod:`numpy_cnn.data`) imports this subpackage: the loaders read the files it
writes as they read any dataset.

* :mod:`.sfew` -- 675 film frames in SFEW's layout and naming (``ensure_synthetic_dataset``)
* :mod:`.fer` -- FER2013-like 48x48 crops for pretraining (``ensure_synthetic_fer``)
* :mod:`.face_drawing` -- the shaded faces and their expression cues
* :mod:`.png` -- a fast PNG writer for the frames
* :mod:`.generated` -- make a generated folder once, atomically
"""

from pathlib import Path

from numpy_cnn.data.synthetic.fer import ensure_synthetic_fer
from numpy_cnn.data.synthetic.sfew import ensure_synthetic_dataset, read_boxes

# Where the command line keeps them, relative to the folder holding train_numpy.py.
SYNTHETIC_DATA = Path("data") / "synthetic_sfew"   # the generated dataset, made on first use
SYNTHETIC_FER = Path("data") / "synthetic_fer"     # the generated FER2013-like crops (make-data fer)

__all__ = ["SYNTHETIC_DATA", "SYNTHETIC_FER", "ensure_synthetic_dataset", "ensure_synthetic_fer", "read_boxes"]
