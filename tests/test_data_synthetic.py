"""The synthetic SFEW-shaped dataset: layout, clip structure, face boxes, determinism and safe regeneration."""

import io
import json
import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from numpy_cnn.data import CLASSES, load_dataset
from numpy_cnn.data.synthetic import ensure_synthetic_dataset
from numpy_cnn.data.synthetic.face_drawing import CUES, EXPRESSIONS
from numpy_cnn.data.synthetic.generated import MANIFEST
from numpy_cnn.data.synthetic.png import encode_png
from numpy_cnn.data.synthetic.sfew import BOXES, FILMS, SFEW_COUNTS, Clip, draw_clip, plan_clips, read_boxes
from numpy_cnn.errors import UserError

SMALL = {name: 2 for name in CLASSES}


def test_layout_counts_and_frame_size(tmp_path):
    root = ensure_synthetic_dataset(tmp_path / "syn", seed=0, counts=SMALL, workers=1)
    assert sorted(p.name for p in root.iterdir()) == sorted([*CLASSES, BOXES, MANIFEST])
    files = sorted(root.glob("*/*.png"))
    assert len(files) == 14
    for path in files:  # SFEW's scheme: <Class>/<Film>_<clip: 9 digits>_<frame: 8 digits>.png
        assert re.fullmatch(r"[A-Z][A-Za-z]+_\d{9}_\d{8}\.png", path.name), path.name
        assert path.name.split("_")[0] in FILMS
    with Image.open(files[0]) as image:
        assert image.size == (720, 576) and image.mode == "RGB"
    assert sum(SFEW_COUNTS.values()) == 675
    # boxes.json beside the class folders is not mistaken for data.
    ds = load_dataset(root, image_size=48)
    assert ds.source == "class folders" and len(ds.y_train) == len(ds.y_test) == 7


def test_every_frame_has_a_face_box_inside_the_frame(tmp_path):
    root = ensure_synthetic_dataset(tmp_path / "syn", seed=0, counts=SMALL, workers=1)
    boxes = read_boxes(root)
    assert sorted(boxes) == sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.png"))
    for left, top, right, bottom in boxes.values():
        assert 0 <= left < right <= 720 and 0 <= top < bottom <= 576
        assert 80 <= bottom - top <= 320  # the oval's height, jittered around 90-300


def test_the_box_sits_on_the_face():
    # The face's skin is the only thing inside the box's central part that
    # stays the same from frame to frame; measure it differently: the face's
    # features (eyes, mouth) change with the expression and lie inside the box.
    clip = plan_clips(0, {"Neutral": 3})[0]
    surprised = Clip("Surprise", clip.film, clip.actor, clip.number, clip.frames)
    for (a, box), (b, _) in zip(draw_clip(clip, 0), draw_clip(surprised, 0)):
        changed = np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max(axis=2) > 40
        rows, cols = np.nonzero(changed)
        left, top, right, bottom = box
        assert left <= cols.min() and cols.max() < right and top <= rows.min() and rows.max() < bottom


def test_clip_structure_matches_sfew():
    clips = plan_clips(0, SFEW_COUNTS)
    frames = [f for clip in clips for f in clip.files()]
    assert len(frames) == len(set(frames)) == 675
    assert Counter(f.split("/")[0] for f in frames) == Counter(SFEW_COUNTS)
    lengths = Counter(len(clip.frames) for clip in clips)
    assert min(lengths) == 1 and max(lengths) == 5 and 200 < len(clips) < 340  # several frames per clip
    # A clip's number is unique within its film, and every film appears in several classes.
    assert len({(clip.film, clip.number) for clip in clips}) == len(clips)
    classes_per_film = {film: {c.expression for c in clips if c.film == film} for film in range(len(FILMS))}
    assert all(len(classes) >= 4 for classes in classes_per_film.values())
    # Each film has its own cast: an actor index never leaves its film.
    assert all(0 <= clip.actor < 5 for clip in clips)


def test_frames_of_a_clip_are_near_identical_and_clips_differ():
    clip, other = plan_clips(0, {"Happy": 12})[:2]
    assert len(clip.frames) >= 2
    frames = [np.asarray(image.convert("L"), np.float32) for image, _ in draw_clip(clip, 0)]
    first_other = np.asarray(draw_clip(other, 0)[0][0].convert("L"), np.float32)
    within = np.abs(frames[0] - frames[1]).mean()
    between = np.abs(frames[0] - first_other).mean()
    assert within < 12 < between, (within, between)


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    a = ensure_synthetic_dataset(tmp_path / "a", seed=3, counts=SMALL, workers=1)
    b = ensure_synthetic_dataset(tmp_path / "b", seed=3, counts=SMALL, workers=2)
    c = ensure_synthetic_dataset(tmp_path / "c", seed=4, counts={"Happy": 2}, workers=1)
    for path in a.glob("*/*.png"):
        assert path.read_bytes() == (b / path.relative_to(a)).read_bytes()
    happy_a, happy_c = sorted(a.glob("Happy/*.png")), sorted(c.glob("Happy/*.png"))
    assert [p.name for p in happy_a] != [p.name for p in happy_c]  # another seed, other clips
    assert (a / BOXES).read_bytes() == (b / BOXES).read_bytes()


def test_complete_copy_is_kept_and_incomplete_one_regenerated(tmp_path):
    root = ensure_synthetic_dataset(tmp_path / "syn", counts={"Sad": 2}, workers=1)
    image = sorted(root.glob("Sad/*.png"))[-1]
    stamp = image.stat().st_mtime_ns
    ensure_synthetic_dataset(root, counts={"Sad": 2}, workers=1)
    assert image.stat().st_mtime_ns == stamp  # nothing regenerated

    image.unlink()  # damaged copy: regenerated
    ensure_synthetic_dataset(root, counts={"Sad": 2}, workers=1)
    assert image.is_file()
    ensure_synthetic_dataset(root, seed=1, counts={"Sad": 2}, workers=1)  # another seed: regenerated
    assert json.loads((root / MANIFEST).read_text())["seed"] == 1
    assert not list(tmp_path.glob(".syn.tmp-*"))


def test_refuses_to_replace_a_folder_it_did_not_make(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        ensure_synthetic_dataset(tmp_path / "mine", counts={"Sad": 2})
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"


def test_only_the_expression_depends_on_the_class():
    # The same clip shown with another expression keeps its set, actor and
    # placement; only the face's features change, so the pixels differ in a small region.
    clip = plan_clips(5, {"Neutral": 1})[0]
    surprised = Clip("Surprise", clip.film, clip.actor, clip.number, clip.frames)
    neutral = np.asarray(draw_clip(clip, 5)[0][0], np.int16)
    surprise = np.asarray(draw_clip(surprised, 5)[0][0], np.int16)
    changed = np.abs(neutral - surprise).max(axis=2) > 30
    assert 0.0002 < changed.mean() < 0.05
    assert tuple(EXPRESSIONS) == CLASSES and all(len(cues) == len(CUES) for cues in EXPRESSIONS.values())


def test_a_copy_finished_by_another_process_meanwhile_counts_as_done(tmp_path, monkeypatch):
    # Two runs generating at once: the second to finish must not crash on the rename.
    from numpy_cnn.data.synthetic import sfew as synthetic

    root, counts = tmp_path / "synthetic", {"Happy": 2, "Sad": 1}
    real_write = synthetic._write_clip
    calls = []

    def write_while_another_process_finishes(job):
        if not calls:
            calls.append(job)
            monkeypatch.setattr(synthetic, "_write_clip", real_write)
            # The "other process": it finishes first and renames its copy into place.
            ensure_synthetic_dataset(tmp_path / "elsewhere" / "synthetic", counts=counts, workers=1)
            (tmp_path / "elsewhere" / "synthetic").rename(root)
        return real_write(job)

    monkeypatch.setattr(synthetic, "_write_clip", write_while_another_process_finishes)
    assert ensure_synthetic_dataset(root, counts=counts, workers=1) == root
    assert len(list((root / "Happy").iterdir())) == 2 and len(read_boxes(root)) == 3
    assert not list(tmp_path.glob(".synthetic.*")), "temporary folders are cleaned up"


def test_the_fast_png_writer_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    for image in (rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.integers(0, 256, (4, 3), dtype=np.uint8)):
        with Image.open(io.BytesIO(encode_png(image))) as decoded:
            assert decoded.mode == ("RGB" if image.ndim == 3 else "L")
            assert (np.asarray(decoded) == image).all()
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((2, 2, 4), np.uint8))
