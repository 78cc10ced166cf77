"""Tiny datasets and a fast architecture for the training, checkpoint and CLI tests.

Everything is written under a test's ``tmp_path``: a few small PNGs per class
folder (decoding and training take milliseconds), and a FER2013-style CSV.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.cli.main import main
from numpy_cnn.data import CLASSES
from numpy_cnn.train import trainer as run

# A small net: an epoch of 28 images takes a few milliseconds, so tests can run many.
TINY_ARCH = "c4k5-relu-pool4-fc16-relu"


def make_class_folders(root: Path, per_class: int = 5, size: int = 24, seed: int = 0) -> Path:
    """``root/<Class>/img_<i>.png``: gray noise with a class-dependent bright band, so it is learnable."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (size, size), dtype=np.uint8)
            pixels[c * size // 7:(c + 1) * size // 7] = 230
            Image.fromarray(pixels, "L").save(root / name / f"img_{i}.png")
    return root


def make_fer_csv(path: Path, rows_per_class: int = 4, seed: int = 0, with_usage: bool = True) -> Path:
    """A FER2013-style CSV (``emotion,pixels[,Usage]``) with 48x48 random rows."""
    rng = np.random.default_rng(seed)
    lines = ["emotion,pixels,Usage" if with_usage else "emotion,pixels"]
    for label in range(7):
        for i in range(rows_per_class):
            pixels = " ".join(map(str, rng.integers(0, 256, 48 * 48)))
            usage = ",PublicTest" if i == 0 else ",Training"
            lines.append(f"{label},{pixels}{usage if with_usage else ''}")
    path.write_text("\n".join(lines) + "\n")
    return path


def files_snapshot(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file under ``folder`` (to prove nothing was touched)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


FILMS = ("BlueHarbor", "RedRiver", "OceansThirteen", "IAmSam", "Film21")


def make_clips(root: Path, clips_per_class: int = 4, frames: int = 3, size: int = 24, seed: int = 0) -> Path:
    """``root/<Class>/<Film>_<clip:09d>_<frame:08d>.png`` in SFEW's scheme: near-identical frames
    per clip (a class-dependent band, so it is learnable), clips spread over :data:`FILMS`."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for clip in range(clips_per_class):
            film = FILMS[(c + clip) % len(FILMS)]
            base = rng.integers(0, 120, (size, size))
            base[c * size // 7:(c + 1) * size // 7] = 230
            for frame in range(frames):
                pixels = np.clip(base + rng.integers(-3, 4, (size, size)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels, "L").save(root / name / f"{film}_{100 * c + clip:09d}_{frame:08d}.png")
    return root


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """matplotlib costs ~1 s per run; the CLI tests check the figures. Import it to use it."""
    monkeypatch.setattr(run, "write_plots", lambda *args: None)


def train_quietly(config, out: Path, **kw):
    """``train`` into ``out`` with no log and no cache; the run's home is ``out``'s parent."""
    return run.train(config, out, home=out.parent, cache_dir=None, log=None, **kw)


def cli(*args, home: Path) -> tuple[int, str, str]:
    """``train_numpy.py ARGS`` through ``main``, in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args], home=home)
    return code, out.getvalue(), err.getvalue()
