"""TrainConfig: every rule about the settings, checked with no side effects.

Building a config makes no weights (``--freeze`` is checked against the spec's
plan) and imports no OpenCV (the trainer checks for it when a run starts); the
rules between flags (:meth:`TrainConfig.given_settings`) and what ``--resume``
may change (:meth:`TrainConfig.resumed`) live here too, not in the command line.
"""

import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from numpy_cnn.data import DetectorSettings
from numpy_cnn.errors import UserError
from numpy_cnn.nn import arch
from numpy_cnn.train import finetune
from numpy_cnn.train.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def test_a_config_with_face_crops_imports_no_opencv():
    code = ("import sys; from numpy_cnn.train.config import TrainConfig; "
            "c = TrainConfig(crop_faces={}, no_face='drop'); "
            "print(c.detector_settings().cascade, 'cv2' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [DetectorSettings().cascade, "False"]


def test_freeze_names_are_checked_without_building_the_network(monkeypatch):
    def no_weights(*args, **kwargs):
        raise AssertionError("a config built a network")

    for layer in ("Conv2d", "Linear", "BatchNorm2d", "BatchNorm1d"):   # what build_model makes weights with
        monkeypatch.setattr(arch, layer, no_weights)
    spec = "c4k5-bn-relu-pool2-fc16-relu"
    assert TrainConfig(arch=spec, freeze="fc1,bn1, conv1").freeze == "conv1,bn1,fc1"
    with pytest.raises(UserError, match="no layer with parameters is called relu1; name some of conv1,bn1,fc1,fc2"):
        TrainConfig(arch=spec, freeze="relu1")


def test_check_freeze_takes_the_names_of_a_spec_or_of_a_model():
    spec = "c4k5-relu-fc8"
    model = arch.build_model(spec, rng=0)
    assert finetune.trainable_layers(model) == arch.trainable_layer_names(spec) == ["conv1", "fc1", "fc2"]
    assert finetune.check_freeze(arch.trainable_layer_names(spec), ["fc1", "conv1"]) == ["conv1", "fc1"]


def _flags(**given):
    """argparse's namespace as a dict: every flag, None where not given, and some that are no setting."""
    flags = dict.fromkeys(f for f in TrainConfig.__dataclass_fields__)
    return {**flags, "out": None, "resume": None, "quiet": False, **given}


def test_given_settings_keep_what_was_typed_made_storable(tmp_path):
    given = TrainConfig.given_settings(_flags(data=Path("faces"), epochs=3, crop_faces=True, quiet=True))
    assert given == {"data": str(Path("faces").resolve()), "epochs": 3, "crop_faces": asdict(DetectorSettings())}
    assert TrainConfig(**given).epochs == 3


@pytest.mark.parametrize("flags, needle", [
    ({"optimizer": "adam", "momentum": 0.5}, "--momentum is SGD's; adam keeps its own moving averages"),
    ({"split_dir": Path("some/run")}, f"--split-dir {Path('some/run')} is read only with --reuse-split"),
])
def test_flags_that_other_flags_leave_without_effect_are_refused(flags, needle):
    with pytest.raises(UserError, match=needle):
        TrainConfig.given_settings(_flags(**flags))


def test_a_resumed_config_may_raise_epochs_and_follow_moved_data_only(tmp_path):
    gone = tmp_path / "gone"
    stored = TrainConfig(data=str(gone), epochs=4)
    assert stored.moved_data() == ["data"]
    resumed = stored.resumed({"epochs": 6, "data": str(tmp_path)}, done=4, run=tmp_path / "run")
    assert (resumed.epochs, resumed.data) == (6, str(tmp_path))
    with pytest.raises(UserError, match="run has already trained 4 epochs; --epochs must be at least that"):
        stored.resumed({"epochs": 3}, done=4, run=tmp_path / "run")
    with pytest.raises(UserError, match=r"--resume continues the same run, but --lr 0.5 \(the run used 0.001\); "
                                        "--no-augment"):
        stored.resumed({"lr": 0.5, "augment": False}, done=4, run=tmp_path / "run")
