"""A deterministic synthetic face-expression dataset in SFEW's shape.

SFEW cannot be shipped or downloaded, so the default experiment runs on
drawn faces instead: 675 RGB PNGs of 720x576 in seven class folders with
SFEW's class counts (``Angry/angry_000.png`` ...). Each frame holds one
cartoon face drawn with Pillow. The expression lives only in a few facial
cues, each scaled by a random per-image intensity so that neighbouring
classes overlap:

==========  ======================================================
Angry       brows lowered, inner ends pulled down; tight, slightly down mouth
Disgust     narrowed eyes, lowered brows, upper lip raised on one side
Fear        brows raised, inner ends up; wide eyes; open, stretched mouth
Happy       mouth corners up (a smile), eyes slightly narrowed
Neutral     every cue near zero
Sad         inner brow ends up; mouth corners down
Surprise    brows raised high; wide eyes; round open mouth
==========  ======================================================

The frame is "in the wild": the face is not centred (its centre moves up to
8% of the frame from the middle), and its size (55-75% of the frame height:
at 48x48 the frame shrinks ~13x, and smaller faces lose their expression),
in-plane rotation, skin tone, lighting gradient, background clutter and
pixel noise all vary.

Image ``i`` of class ``c`` depends only on ``np.random.default_rng([seed, c, i])``,
so the same seed always gives the same bytes, whatever the order or the
number of worker processes.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from ..errors import UserError
from .classes import CLASSES

SFEW_COUNTS: dict[str, int] = {
    "Angry": 100, "Disgust": 75, "Fear": 100, "Happy": 100,
    "Neutral": 100, "Sad": 100, "Surprise": 100,
}
FRAME_SIZE = (720, 576)  # (width, height), SFEW's frame size
MANIFEST = "manifest.json"
# Bump when the drawing changes, so old copies on disk are regenerated.
RECIPE_VERSION = 2

# Expression cues per class, at full intensity. Each is a small dimensionless
# number; the drawing code turns it into pixels.
#   brow_raise  brows up (+) or down (-)
#   brow_tilt   inner brow ends up (+, sad/fear) or down (-, angry)
#   eye_open    eye opening relative to neutral (+ wide, - narrowed)
#   smile       mouth corners up (+) or down (-)
#   mouth_open  lips apart
#   mouth_wide  mouth stretched sideways (+) or pursed (-)
#   sneer       upper lip raised on one side
_CUES = ("brow_raise", "brow_tilt", "eye_open", "smile", "mouth_open", "mouth_wide", "sneer")
_EXPRESSIONS: dict[str, tuple[float, ...]] = {
    #            raise  tilt   eye   smile  open  wide  sneer
    "Angry":    (-0.8, -1.0, -0.2, -0.3, 0.0, -0.3, 0.0),
    "Disgust":  (-0.4, -0.3, -0.6, -0.4, 0.1, 0.0, 1.0),
    "Fear":     (0.6, 0.8, 0.7, -0.2, 0.5, 0.5, 0.0),
    "Happy":    (0.1, 0.0, -0.2, 1.0, 0.3, 0.5, 0.0),
    "Neutral":  (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "Sad":      (-0.1, 0.9, -0.2, -0.8, 0.0, -0.1, 0.0),
    "Surprise": (1.0, 0.1, 0.8, 0.0, 1.0, -0.4, 0.0),
}
# Difficulty knobs: the intensity range and the per-cue noise make classes
# overlap; face size, shift and tilt decide how hard the face is to find.
# Tuned with a PyTorch copy of the paper's recipe (200 epochs, SGD 0.001,
# batch 4, flip + rotation, 80/20 split): test accuracy 73%, 68% and 72% for
# seeds 0, 1 and 2 (bigger shift and noise gave ~63%, smaller faces ~30-40%).
_INTENSITY = (0.5, 1.0)
_CUE_NOISE = 0.1
_FACE_HEIGHT = (0.55, 0.75)  # fraction of the frame height
_MAX_TILT_DEGREES = 8.0
_MAX_SHIFT = 0.08  # of the frame size, from the centre


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
        ``root``, holding ``<Class>/<class>_<i:03d>.png`` (RGB, 720x576) and a
        ``manifest.json`` written last. Generation goes into a temporary sibling
        folder that is renamed into place, so an interrupted run never leaves a
        half dataset that looks complete.
    """
    root = Path(root)
    counts = dict(SFEW_COUNTS if counts is None else counts)
    unknown = set(counts) - set(CLASSES)
    if unknown:
        raise UserError(f"unknown class names in counts: {sorted(unknown)}; use {', '.join(CLASSES)}")
    manifest = {"recipe_version": RECIPE_VERSION, "seed": seed, "counts": counts}
    if _is_complete(root, manifest):
        return root
    if root.exists() and not (root / MANIFEST).is_file() and any(root.iterdir()):
        raise UserError(
            f"{root} exists but is not a synthetic dataset (no {MANIFEST}); remove it or choose another folder"
        )

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.with_name(f".{root.name}.tmp-{os.getpid()}")
    old = root.with_name(f".{root.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    jobs = [(tmp, seed, c, name, i) for c, name in enumerate(CLASSES) for i in range(counts.get(name, 0))]
    for name in CLASSES:
        (tmp / name).mkdir(parents=True)
    try:
        if workers > 1 and len(jobs) > 8:
            with ProcessPoolExecutor(workers) as pool:
                list(pool.map(_write_image, jobs, chunksize=16))
        else:
            for job in jobs:
                _write_image(job)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        # Another process (a second training run, a test) may have finished the
        # same dataset while we drew ours: same seed, same bytes, so theirs will do.
        if _is_complete(root, manifest):
            return root
        try:
            if root.exists():  # an outdated or damaged copy of ours: swap it out only now
                os.replace(root, old)
            os.replace(tmp, root)
        except OSError:
            if not _is_complete(root, manifest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return root


def _is_complete(root: Path, manifest: dict) -> bool:
    """True if ``root`` holds a finished copy made with exactly this recipe, seed and counts."""
    try:
        if json.loads((root / MANIFEST).read_text()) != manifest:
            return False
    except (OSError, ValueError):
        return False
    return all(
        len(list((root / name).glob("*.png"))) == n for name, n in manifest["counts"].items()
    )


def _write_image(job: tuple[Path, int, int, str, int]) -> None:
    folder, seed, class_idx, name, i = job
    image = draw_frame(name, np.random.default_rng([seed, class_idx, i]))
    # compress_level 1: the frames are noisy, so higher levels cost time and save little.
    image.save(folder / name / f"{name.lower()}_{i:03d}.png", compress_level=1)


def draw_frame(expression: str, rng: np.random.Generator) -> Image.Image:
    """Draw one 720x576 RGB frame: background clutter plus one face showing ``expression``."""
    width, height = FRAME_SIZE
    frame = _smooth_field(rng, low=40, high=220, channels=3)
    _draw_clutter(ImageDraw.Draw(frame), rng, width, height)

    intensity = rng.uniform(*_INTENSITY)
    nominal = np.array(_EXPRESSIONS[expression])
    cues = dict(zip(_CUES, intensity * nominal + rng.normal(0.0, _CUE_NOISE, len(_CUES))))
    face = _draw_face(cues, rng)
    face = _rotate_and_scale(
        face,
        degrees=rng.uniform(-_MAX_TILT_DEGREES, _MAX_TILT_DEGREES),
        scale=rng.uniform(*_FACE_HEIGHT) * height / _FACE_BOX[1],
    )
    # Off-centre: the face centre falls anywhere in the middle part of the frame.
    cx = width * rng.uniform(0.5 - _MAX_SHIFT, 0.5 + _MAX_SHIFT)
    cy = height * rng.uniform(0.5 - _MAX_SHIFT, 0.5 + _MAX_SHIFT)
    frame.paste(face, (round(cx - face.width / 2), round(cy - face.height / 2)), face)

    # Lighting falls off across the frame, then sensor noise. The noise is drawn
    # in 4x4 blocks: finer grain vanishes at 48x48 anyway and only bloats the PNG.
    frame = ImageChops.multiply(frame, _smooth_field(rng, low=130, high=255, channels=1).convert("RGB"))
    sigma = rng.uniform(3.0, 12.0)
    noise = rng.normal(_NOISE_OFFSET, sigma, (height // 4, width // 4, 3))
    noise = Image.fromarray(np.clip(noise, 0, 255).astype(np.uint8), "RGB").resize(FRAME_SIZE, Image.NEAREST)
    return ImageChops.add(frame, noise, offset=-_NOISE_OFFSET)


_NOISE_OFFSET = 64  # noise is stored as uint8 around this value, then subtracted


def _smooth_field(rng: np.random.Generator, low: float, high: float, channels: int) -> Image.Image:
    """A linear ramp between two random colours in a random direction, as a frame-sized image.

    Drawn at a quarter of the resolution and upsampled: a ramp is smooth, so this
    is exact enough and 16x cheaper.
    """
    angle = rng.uniform(0, 2 * np.pi)
    ys, xs = np.ogrid[0:1:complex(0, FRAME_SIZE[1] // 4), 0:1:complex(0, FRAME_SIZE[0] // 4)]
    t = np.cos(angle) * xs + np.sin(angle) * ys
    t = (t - t.min()) / (t.max() - t.min())
    a, b = rng.uniform(low, high, (2, channels))
    ramp = (a + t[..., None] * (b - a)).astype(np.uint8)
    image = Image.fromarray(ramp if channels == 3 else ramp[..., 0], "RGB" if channels == 3 else "L")
    return image.resize(FRAME_SIZE, Image.BILINEAR)


def _rotate_and_scale(image: Image.Image, degrees: float, scale: float) -> Image.Image:
    """Rotate about the centre and scale in one affine resampling; the canvas grows to fit."""
    theta = np.deg2rad(degrees)
    cos, sin = np.cos(theta), np.sin(theta)
    w, h = image.size
    out_w = int(np.ceil(scale * (w * abs(cos) + h * abs(sin))))
    out_h = int(np.ceil(scale * (w * abs(sin) + h * abs(cos))))
    # Pillow's AFFINE maps each output pixel (x, y) back to an input pixel.
    a, b, d, e = cos / scale, sin / scale, -sin / scale, cos / scale
    c = w / 2 - a * out_w / 2 - b * out_h / 2
    f = h / 2 - d * out_w / 2 - e * out_h / 2
    return image.transform((out_w, out_h), Image.AFFINE, (a, b, c, d, e, f), Image.BILINEAR)


def _draw_clutter(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    """Random ellipses, rectangles and polygons: a busy background, as in film frames."""
    for _ in range(rng.integers(4, 14)):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        x0, y0 = rng.uniform(-100, width), rng.uniform(-100, height)
        w, h = rng.uniform(20, 300, 2)
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse((x0, y0, x0 + w, y0 + h), fill=colour)
        elif kind == 1:
            draw.rectangle((x0, y0, x0 + w, y0 + h), fill=colour)
        else:
            points = [(float(x0 + rng.uniform(0, w)), float(y0 + rng.uniform(0, h))) for _ in range(3)]
            draw.polygon(points, fill=colour)


# The face is drawn upright in its own RGBA box, then transformed into the frame.
_FACE_BOX = (300, 380)  # (width, height)


def _draw_face(cues: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """One upright face in a transparent 300x380 box; ``cues`` follow :data:`_CUES`."""
    face = Image.new("RGBA", _FACE_BOX, (0, 0, 0, 0))
    draw = ImageDraw.Draw(face)
    cx = _FACE_BOX[0] / 2
    skin = np.array([rng.uniform(90, 250), 0, 0])
    skin[1] = skin[0] * rng.uniform(0.7, 0.85)
    skin[2] = skin[0] * rng.uniform(0.55, 0.75)
    skin_rgb = tuple(int(v) for v in skin)
    dark = tuple(int(v * 0.25) for v in skin) + (255,)

    # Hair behind, head, ears.
    hair = tuple(int(v) for v in rng.integers(10, 120, 3))
    draw.ellipse((15, 5, 285, 230), fill=hair)
    draw.ellipse((10, 150, 50, 230), fill=skin_rgb)
    draw.ellipse((250, 150, 290, 230), fill=skin_rgb)
    draw.ellipse((30, 40, 270, 370), fill=skin_rgb)

    # Features are caricatured: at 48x48 the face is ~30 px tall, so a cue
    # must move a feature by tens of pixels here to move it by one there.
    eye_y, eye_dx = 170.0, 62.0
    eye_h = 28.0 * max(0.2, 1.0 + 0.8 * cues["eye_open"])
    brow_y = eye_y - 28.0 - 35.0 * cues["brow_raise"] - eye_h / 2
    for side in (-1, 1):
        ex = cx + side * eye_dx
        draw.ellipse((ex - 32, eye_y - eye_h / 2, ex + 32, eye_y + eye_h / 2), fill=(245, 245, 245))
        r = min(13.0, eye_h / 2)
        draw.ellipse((ex - r, eye_y - r, ex + r, eye_y + r), fill=(30, 20, 10))
        # Brow: the inner end (near the nose) moves by brow_tilt.
        inner = (cx + side * 18, brow_y - 40.0 * cues["brow_tilt"])
        outer = (cx + side * 100, brow_y + 12.0 * cues["brow_tilt"])
        draw.line((inner, outer), fill=dark, width=18)

    # Nose.
    draw.line(((cx, 200), (cx - 10, 250), (cx + 6, 255)), fill=dark, width=4)

    _draw_mouth(draw, cues, cx, 295.0)
    return face


def _draw_mouth(draw: ImageDraw.ImageDraw, cues: dict[str, float], cx: float, y0: float) -> None:
    """Lips as two curves over u in [-1, 1]; the gap between them is filled dark."""
    half_width = 70.0 * (1.0 + 0.35 * cues["mouth_wide"])
    u = np.linspace(-1.0, 1.0, 21)
    # Positive smile lowers the middle relative to the corners: corners up.
    bend = 50.0 * cues["smile"] * (1.0 - u**2) - 25.0 * cues["smile"]
    gap = 80.0 * max(0.0, cues["mouth_open"]) * np.sqrt(1.0 - u**2)
    # Sneer lifts the upper lip on the right side only.
    lift = 45.0 * max(0.0, cues["sneer"]) * np.clip(u, 0.0, None) * (1.2 - u)
    xs = cx + half_width * u
    upper = list(zip(xs, y0 + bend - gap / 2 - lift))
    lower = list(zip(xs, y0 + bend + gap / 2))
    draw.polygon(upper + lower[::-1], fill=(60, 10, 15))
    draw.line(upper, fill=(150, 40, 50), width=12)
    draw.line(lower, fill=(150, 40, 50), width=12)
