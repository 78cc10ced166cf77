"""A deterministic generated face-expression dataset with SFEW's shape and structure.

SFEW cannot be shipped or downloaded, so the default experiment runs on
drawn film frames instead: 675 RGB PNGs of 720x576 in seven class folders
with SFEW's class counts, named in SFEW's scheme
``<Class>/<Film>_<clip>_<frame>.png`` (``Angry/BlueHarbor_000123456_00000012.png``:
a CamelCase film title, a 9-digit clip number, an 8-digit frame number).

Like SFEW, the frames come in **clips**: one to five near-identical frames
of the same actor in the same shot (background, lighting and position fixed;
the face moves by a few pixels and the expression's intensity varies a
little), all in one class. The clips come from a dozen invented **films**,
each with its own look (palette, set, grain) and its own three to five
actors. So a random split puts frames of one clip on both sides of the split
(the test set is partly a copy of the training set, as on real SFEW),
grouping by clip removes that, and grouping by film is a stand-in for
SFEW's person-independent protocol.

The face (:mod:`numpy_cnn.data.synthetic.face_drawing`) is shaded like a real one, so
OpenCV's Viola-Jones detector finds it, and it sits at a random position
and scale as in SFEW: its oval is 90-300 px tall in a 576 px frame, so at
48x48 of the whole frame a face is 8-25 px and its expression a few pixels.
The true face box of every frame is written to ``boxes.json`` at the root,
``{"Angry/BlueHarbor_000123456_00000012.png": [left, top, right, bottom]}``
in frame pixels (the face oval's bounding box, forehead to chin, cheek to
cheek), for measuring a face detector.

Every frame is a pure function of the seed, its class, its film, its clip
number and its frame's place in the clip (``np.random.default_rng`` seeded
with those), so the same seed gives the same bytes whatever the order or
the number of worker processes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import CLASSES
from numpy_cnn.data.synthetic.face_drawing import Actor, draw_face, expression_cues, place_face
from numpy_cnn.data.synthetic.generated import make_once
from numpy_cnn.data.synthetic.png import write_png

SFEW_COUNTS: dict[str, int] = {
    "Angry": 100, "Disgust": 75, "Fear": 100, "Happy": 100,
    "Neutral": 100, "Sad": 100, "Surprise": 100,
}
FRAME_SIZE = (720, 576)  # (width, height), SFEW's frame size
BOXES = "boxes.json"
# Bump when the drawing changes, so old copies on disk are regenerated.
RECIPE_VERSION = 4

# Invented titles: CamelCase without "_", as SFEW writes its film names.
FILMS = (
    "BlueHarbor", "SilentOrchard", "CopperSkies", "GlassRiver", "WinterLedger", "RedCanyonRoad",
    "VelvetStorm", "OrchidHotel", "MarbleCoast", "LastFerry", "IronMeadow", "QuietEmbers",
)
CAST_SIZE = (3, 5)  # actors per film, inclusive
# Frames per clip: 1-5, about 2.6 on average (real SFEW: 675 frames in ~467 clips).
_CLIP_LENGTHS, _CLIP_LENGTH_P = (1, 2, 3, 4, 5), (0.2, 0.3, 0.25, 0.15, 0.1)

# Difficulty knobs. The intensity range and the cue noise make classes
# overlap; face size, position and tilt decide how hard the face is to find
# and how many pixels its expression gets at 48x48.
_INTENSITY = (0.3, 1.0)
_CUE_NOISE = 0.25         # per clip; a frame adds a quarter of it
_FACE_HEIGHT = (90, 300)  # the face oval, in frame pixels (log-uniform)
_MAX_TILT_DEGREES = 10.0
# Within a clip: the face moves and scales a little, the expression flickers.
_JITTER_SHIFT, _JITTER_SCALE, _JITTER_TILT, _JITTER_INTENSITY = 0.02, 0.03, 2.0, 0.08
# Faces taller than this are painted at this height and scaled up: a 48x48
# crop of them keeps no finer detail, and painting costs the face's area.
_DRAW_MAX = 96

Box = tuple[int, int, int, int]  # (left, top, right, bottom) in frame pixels


@dataclass(frozen=True)
class Clip:
    """One shot: frames of one actor of one film showing one expression."""

    expression: str
    film: int               # index into FILMS
    actor: int              # index into the film's cast
    number: int             # the 9-digit clip number, unique within the film
    frames: tuple[int, ...]  # 8-digit frame numbers, increasing

    def files(self) -> list[str]:
        """The frames' paths relative to the dataset root, in SFEW's naming scheme."""
        return [f"{self.expression}/{FILMS[self.film]}_{self.number:09d}_{frame:08d}.png"
                for frame in self.frames]


def plan_clips(seed: int, counts: Mapping[str, int]) -> list[Clip]:
    """Cut each class's frame count into clips, each from a film and an actor.

    Class ``c``'s clips depend only on ``(seed, c, counts[c])``. A clip number
    drawn twice in one film (a one-in-millions chance) is moved to the next free one.
    """
    clips, taken = [], set()
    for c, name in enumerate(CLASSES):
        rng = np.random.default_rng([seed, c])
        left = counts.get(name, 0)
        while left > 0:
            length = min(left, int(rng.choice(_CLIP_LENGTHS, p=_CLIP_LENGTH_P)))
            left -= length
            film = int(rng.integers(len(FILMS)))
            actor = int(rng.integers(cast_size(seed, film)))
            number = int(rng.integers(10**8, 10**9 - 1000))
            while (film, number) in taken:
                number += 1
            taken.add((film, number))
            start = int(rng.integers(1, 300))
            frames = start + np.concatenate([[0], np.cumsum(rng.integers(1, 8, length - 1))])
            clips.append(Clip(name, film, actor, number, tuple(int(f) for f in frames)))
    return clips


def cast_size(seed: int, film: int) -> int:
    """How many actors a film has."""
    return int(np.random.default_rng([seed, 1001, film]).integers(CAST_SIZE[0], CAST_SIZE[1] + 1))


def ensure_synthetic_dataset(
    root: Path | str,
    seed: int = 0,
    *,
    counts: Mapping[str, int] | None = None,
    workers: int = 2,
) -> Path:
    """Generate the synthetic dataset into ``root`` unless a complete copy is already there.

    Args:
        root: the dataset folder (the project default is ``data/synthetic_sfew``).
        seed: the dataset seed; a copy made with another seed is regenerated.
        counts: images per class name; defaults to SFEW's counts (675 images).
            Tests pass small counts.
        workers: processes used to draw the images (1 draws in this process).

    Returns:
        ``root``, holding ``<Class>/<Film>_<clip>_<frame>.png`` (RGB, 720x576),
        ``boxes.json`` and a ``manifest.json`` written last (see
        :func:`numpy_cnn.data.synthetic.generated.make_once`: an interrupted run never
        leaves a half dataset that looks complete).
    """
    root = Path(root)
    counts = dict(SFEW_COUNTS if counts is None else counts)
    unknown = set(counts) - set(CLASSES)
    if unknown:
        raise UserError(f"unknown class names in counts: {sorted(unknown)}; use {', '.join(CLASSES)}")

    def fill(folder: Path) -> None:
        jobs = [(folder, seed, clip) for clip in plan_clips(seed, counts)]
        for name in CLASSES:
            (folder / name).mkdir()
        frames = sum(counts.values())
        print(f"drawing the generated dataset: {frames} frames in {len(jobs)} clips into {folder.parent} "
              "(once; later runs read the files)", file=sys.stderr, flush=True)
        if workers > 1 and len(jobs) > 4:
            with ProcessPoolExecutor(workers) as pool:
                results = _with_progress(pool.map(_write_clip, jobs, chunksize=4), len(jobs))
        else:
            results = _with_progress(map(_write_clip, jobs), len(jobs))
        boxes = {file: box for result in results for file, box in result.items()}
        # One frame per line: readable, and diffable between two copies.
        lines = (f"{json.dumps(file)}: {json.dumps(list(boxes[file]))}" for file in sorted(boxes))
        (folder / BOXES).write_text("{\n" + ",\n".join(lines) + "\n}\n")

    def complete(folder: Path) -> bool:
        return (folder / BOXES).is_file() and all(
            len(list((folder / name).glob("*.png"))) == n for name, n in counts.items())

    manifest = {"recipe_version": RECIPE_VERSION, "seed": seed, "counts": counts}
    return make_once(root, manifest, fill, complete, "synthetic dataset")


def _with_progress(results: Iterable[dict], total: int, every: float = 3.0) -> list[dict]:
    """Collect the clips' results, printing ``drawing: 120/266 clips (4 s)`` to stderr every few seconds."""
    out, start = [], time.monotonic()
    last = start
    for result in results:
        out.append(result)
        now = time.monotonic()
        if now - last > every:
            print(f"drawing: {len(out)}/{total} clips ({now - start:.0f} s)", file=sys.stderr, flush=True)
            last = now
    return out


def read_boxes(root: Path | str) -> dict[str, Box]:
    """The true face box of every frame of a generated dataset, by path relative to ``root``."""
    path = Path(root) / BOXES
    try:
        return {name: tuple(box) for name, box in json.loads(path.read_text()).items()}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the face boxes ({e}); regenerate the dataset") from None


def _write_clip(job: tuple[Path, int, Clip]) -> dict[str, Box]:
    """Draw and save one clip's frames; returns their true face boxes by file name."""
    folder, seed, clip = job
    boxes = {}
    for file, (image, box) in zip(clip.files(), draw_clip(clip, seed)):
        write_png(folder / file, np.asarray(image))
        boxes[file] = box
    return boxes


def draw_clip(clip: Clip, seed: int) -> list[tuple[Image.Image, Box]]:
    """Draw a clip's frames (720x576 RGB) with each frame's true face box.

    The shot (background, light, the face's place, size and tilt, the
    expression's intensity) comes from ``default_rng([seed, film, clip number])``,
    frame ``j``'s small changes from ``default_rng([seed, film, clip number, j])``,
    so the same clip shown with another expression differs only in the face's features.
    """
    width, height = FRAME_SIZE
    look = np.random.default_rng([seed, 1000, clip.film])
    actor = Actor.random(np.random.default_rng([seed, 2000, clip.film, clip.actor]))
    shot = np.random.default_rng([seed, clip.film, clip.number])
    background = _background(look, shot)
    # The film's sensor noise, one pattern per shot (drawing it per frame costs
    # more than the frame's face, and at 48x48 nobody can tell).
    grain = make_grain(shot, look.uniform(2.0, 7.0))

    face_height = float(np.exp(shot.uniform(*np.log(_FACE_HEIGHT))))
    tilt = shot.uniform(-_MAX_TILT_DEGREES, _MAX_TILT_DEGREES)
    light = shot.uniform(-0.3, 0.3)
    intensity = shot.uniform(*_INTENSITY)
    cue_offset = shot.normal(0.0, _CUE_NOISE, 7)
    # The oval's centre, far enough inside the frame that the face and hair fit.
    half_w, half_h = 0.75 * face_height, 0.85 * face_height
    centre = np.array([shot.uniform(half_w, width - half_w), shot.uniform(half_h, height - 0.55 * face_height)])

    frames = []
    for j in range(len(clip.frames)):
        rng = np.random.default_rng([seed, clip.film, clip.number, j])
        size = face_height * (1.0 + rng.uniform(-_JITTER_SCALE, _JITTER_SCALE))
        degrees = tilt + rng.uniform(-_JITTER_TILT, _JITTER_TILT)
        at = centre + rng.uniform(-_JITTER_SHIFT, _JITTER_SHIFT, 2) * face_height
        cues = expression_cues(clip.expression, intensity + rng.uniform(-_JITTER_INTENSITY, _JITTER_INTENSITY),
                               actor, rng, noise=_CUE_NOISE / 4)
        cues = {k: v + o for (k, v), o in zip(cues.items(), cue_offset)}
        drawn = min(size, _DRAW_MAX)
        face = draw_face(actor, cues, drawn, light)
        frame = background.copy()
        box = place_face(frame, face, actor, drawn, size, degrees, at)
        frames.append((add_grain(frame, grain), box))
    return frames


def _background(look: np.random.Generator, shot: np.random.Generator) -> Image.Image:
    """A clip's set: the film's palette as a colour ramp, clutter, and a lighting fall-off.

    ``look`` (the film's generator) is read in the same order for every clip,
    so all clips of a film share its palette and clutter style.
    """
    palette = look.uniform(30, 225, (4, 3))
    tint = look.uniform(0.75, 1.0, 3)
    clutter = look.integers(3, 12)
    width, height = FRAME_SIZE
    a, b = palette[shot.integers(4)], palette[shot.integers(4)]
    frame = smooth_field(shot, a + shot.normal(0, 15, 3), b + shot.normal(0, 15, 3))
    draw = ImageDraw.Draw(frame)
    for _ in range(clutter + shot.integers(0, 4)):
        colour = tuple(int(v) for v in np.clip(palette[shot.integers(4)] * shot.uniform(0.6, 1.3), 0, 255))
        x0, y0 = shot.uniform(-100, width), shot.uniform(-100, height)
        w, h = shot.uniform(20, 300, 2)
        kind = shot.integers(3)
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            points = [(float(x0 + shot.uniform(0, w)), float(y0 + shot.uniform(0, h))) for _ in range(3)]
            draw.polygon(points, fill=colour)
    light = smooth_field(shot, 255 * tint * shot.uniform(0.5, 0.8), 255 * tint)
    return ImageChops.multiply(frame, light)


def smooth_field(rng: np.random.Generator, a: np.ndarray, b: np.ndarray,
                 size: tuple[int, int] = FRAME_SIZE) -> Image.Image:
    """A linear ramp from RGB colour ``a`` to ``b`` in a random direction, as an image of ``size`` (w, h).

    Drawn at a quarter of the resolution and upsampled: a ramp is smooth, so this
    is exact enough and 16x cheaper.
    """
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.ogrid[0:1:complex(0, max(2, size[1] // 4)), 0:1:complex(0, max(2, size[0] // 4))]
    t = np.cos(angle) * xs + np.sin(angle) * ys
    t = (t - t.min()) / (t.max() - t.min())
    ramp = np.clip(a + t[..., None] * (np.asarray(b) - a), 0, 255).astype(np.uint8)
    return Image.fromarray(ramp, "RGB").resize(size, Image.BILINEAR)


_NOISE_OFFSET = 64  # noise is stored as uint8 around this value, then subtracted


def make_grain(rng: np.random.Generator, sigma: float, size: tuple[int, int] = FRAME_SIZE,
               block: int = 4) -> Image.Image:
    """Sensor noise of ``size`` (w, h) in ``block`` x ``block`` squares, for :func:`add_grain`.

    In a whole frame finer grain vanishes at 48x48 anyway and only bloats the PNG.
    """
    width, height = size
    noise = rng.normal(_NOISE_OFFSET, sigma, (height // block, width // block, 3))
    return Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), "RGB").resize(size, Image.NEAREST)


def add_grain(frame: Image.Image, grain: Image.Image) -> Image.Image:
    """``frame`` plus the zero-mean noise of :func:`make_grain`, saturating at 0 and 255."""
    return ImageChops.add(frame, grain, offset=-_NOISE_OFFSET)
