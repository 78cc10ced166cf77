"""The study commands end to end, on a small image file (the default dataset is too slow for tests)."""

import json

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.nn.arch import build_model
from numpy_cnn.train.checkpoint import Checkpoint, save_checkpoint
from numpy_cnn.data import CLASSES
from numpy_cnn.cli.main import main


def summary_command(argv):
    return main(["summary", *argv])


def trace_command(argv):
    return main(["trace", *argv])


def visualize_command(argv):
    return main(["visualize", *argv])

SMALL = "c4k3-relu-pool2-fc16-relu"


@pytest.fixture
def face(tmp_path):
    path = tmp_path / "face.png"
    pixels = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def run_dir(tmp_path, face):
    """A run as the trainer leaves it: checkpoint, test split, per-epoch metrics with gradient norms."""
    run = tmp_path / "run"
    model = build_model(SMALL, 3, 24, len(CLASSES), rng=1)
    meta = {"arch": SMALL, "in_channels": 3, "image_size": 24, "classes": list(CLASSES),
            "data": {"root": str(face.parent)}}
    save_checkpoint(run / "checkpoint.npz", Checkpoint(model=model.state_dict(), meta=meta, mean=np.float32(0.4)))
    (run / "test.txt").write_text("# relative/path label\nface.png 5\n")
    rows = [{"epoch": e, "train_loss": 1.0, **{f"grad_norm.{k}": 1.0 / e for k in model.state_dict()}}
            for e in (1, 2, 3)]
    (run / "metrics.json").write_text(json.dumps(rows))
    return run


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert ": error: " in err and "\n" not in err and "Traceback" not in err
    return err


def test_summary_of_any_spec_printed_and_saved(tmp_path, capsys):
    assert summary_command(["--arch", SMALL, "--image-size", "24", "--out", str(tmp_path / "s.txt")]) == 0
    text = capsys.readouterr().out
    # conv1 4*3*3*3+4 = 112, fc1 (4*11*11)*16+16 = 7,760, fc2 16*7+7 = 119
    assert "(1, 4, 22, 22)" in text and "7,991" in text
    assert (tmp_path / "s.txt").read_text().strip() == text.strip()


def test_summary_of_a_checkpoint(run_dir, capsys):
    assert summary_command(["--checkpoint", str(run_dir), "--batch", "2"]) == 0
    assert "(2, 4, 22, 22)" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--arch", "c6k5-banana"], "banana"),
    (["--arch", "c6k60"], "kernel"),
    (["--checkpoint", "no/such/run"], "no checkpoint"),
    (["--batch", "0"], "--batch"),
])
def test_summary_mistakes_are_one_line_errors(argv, words, capsys):
    assert summary_command(argv) == 2
    assert words in one_line_error(capsys)


def test_trace_of_an_image_file(face, tmp_path, capsys):
    out = tmp_path / "trace.txt"
    assert trace_command(["--arch", SMALL, "--image-size", "24", "--image", str(face),
                          "--label", "Happy", "--out", str(out)]) == 0
    text = out.read_text()
    for s in ("conv1", "pool1", "fc2", "1x27x484", "against class 3 (Happy)", "dL/dweight", "no mean subtracted"):
        assert s in text


def test_trace_of_a_checkpoint_uses_its_mean(run_dir, face, capsys):
    assert trace_command(["--checkpoint", str(run_dir / "checkpoint.npz"), "--image", str(face)]) == 0
    text = capsys.readouterr().out
    assert "training mean from the checkpoint" in text and "predicted class" in text


@pytest.mark.parametrize("argv, words", [
    (["--image", "missing.png"], "missing.png"),
    (["--label", "Bored"], "Bored"),
])
def test_trace_mistakes_are_one_line_errors(argv, words, face, capsys):
    if "--label" in argv:
        argv = argv + ["--image", str(face)]
    assert trace_command(argv) == 2
    assert words in one_line_error(capsys)


def test_trace_of_a_run_defaults_to_its_first_test_image(run_dir, capsys):
    assert trace_command(["--checkpoint", str(run_dir)]) == 0
    text = capsys.readouterr().out
    assert "face.png (the run's first test image)" in text and "against class 5 (Sad)" in text


def test_visualize_writes_pngs_into_the_run_directory(run_dir, capsys):
    assert visualize_command(["--checkpoint", str(run_dir)]) == 0
    names = sorted(p.name for p in (run_dir / "visualize").iterdir())
    assert names == ["features_conv1.png", "features_pool1.png", "filters_conv1.png",
                     "gradient_flow.png", "saliency.png"]
    for name in names:
        assert (run_dir / "visualize" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
