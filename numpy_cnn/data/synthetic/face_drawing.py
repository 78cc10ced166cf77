"""Draw one shaded face showing an expression: the painter behind both generated datasets.

A face is painted in NumPy on a small grid in *face units*: the face oval
(forehead to chin, cheek to cheek) is centred at (0, 0) with half-width 1
and half-height ``actor.aspect`` (~1.3). Hair sits above it and a neck
below. The shading follows what a face detector (and a CNN) keys on in real
faces: eye sockets and brows darker than the cheeks and forehead, a lit nose
ridge with a shadow beneath, dark nostrils and mouth, and the sides of the
head falling off into shadow like a lit cylinder.

The expression lives in seven cues (:data:`CUES`), each scaled by an
intensity, so neighbouring classes overlap:

==========  ======================================================
Angry       brows lowered, inner ends pulled down; tight, slightly down mouth
Disgust     narrowed eyes, lowered brows, upper lip raised on one side
Fear        brows raised, inner ends up; wide eyes; open, stretched mouth
Happy       mouth corners up (a smile), eyes slightly narrowed
Neutral     every cue near zero
Sad         inner brow ends up; mouth corners down
Surprise    brows raised high; wide eyes; round open mouth
==========  ======================================================

An :class:`Actor` is an identity (skin, hair, proportions, a resting face
that leans towards some cues), so a model can be tested on people it never
saw. Everything is a pure function of its arguments and the Generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from numpy_cnn.data.classes import CLASSES

# Expression cues per class, at full intensity, dimensionless:
#   brow_raise  brows up (+) or down (-)
#   brow_tilt   inner brow ends up (+, sad/fear) or down (-, angry)
#   eye_open    eye opening relative to neutral (+ wide, - narrowed)
#   smile       mouth corners up (+) or down (-)
#   mouth_open  lips apart
#   mouth_wide  mouth stretched sideways (+) or pursed (-)
#   sneer       upper lip raised on one side
CUES = ("brow_raise", "brow_tilt", "eye_open", "smile", "mouth_open", "mouth_wide", "sneer")
EXPRESSIONS: dict[str, tuple[float, ...]] = {
    #            raise  tilt   eye   smile  open  wide  sneer
    "Angry":    (-0.8, -1.0, -0.2, -0.3, 0.0, -0.3, 0.0),
    "Disgust":  (-0.4, -0.3, -0.6, -0.4, 0.1, 0.0, 1.0),
    "Fear":     (0.6, 0.8, 0.7, -0.2, 0.5, 0.5, 0.0),
    "Happy":    (0.1, 0.0, -0.2, 1.0, 0.3, 0.5, 0.0),
    "Neutral":  (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "Sad":      (-0.1, 0.9, -0.2, -0.8, 0.0, -0.1, 0.0),
    "Surprise": (1.0, 0.1, 0.8, 0.0, 1.0, -0.4, 0.0),
}
assert tuple(EXPRESSIONS) == CLASSES

# The painted canvas in face units: x in [-CANVAS_X, CANVAS_X], y in [CANVAS_TOP, CANVAS_BOTTOM].
CANVAS_X, CANVAS_TOP, CANVAS_BOTTOM = 1.45, -2.05, 2.35


@dataclass(frozen=True)
class Actor:
    """One identity: what stays the same across all of a person's frames.

    Colours are RGB in 0-255; lengths are in face units (face half-width 1).
    ``resting`` adds to the expression cues: some people's neutral face
    already frowns or smiles a little.
    """

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    lips: tuple[float, float, float]
    clothes: tuple[float, float, float]
    aspect: float         # face half-height / half-width
    eye_dx: float         # eye centre distance from the midline
    eye_size: float       # eye half-width
    brow_width: float     # brow thickness
    nose_length: float
    mouth_width: float    # mouth half-width at rest
    long_hair: bool
    resting: tuple[float, ...]

    @classmethod
    def random(cls, rng: np.random.Generator) -> Actor:
        """A random identity: skin tones from pale to dark brown, dark to fair hair."""
        tone = rng.uniform(0.0, 1.0)
        skin = np.array([235 - 130 * tone, 190 - 120 * tone, 160 - 105 * tone]) * rng.uniform(0.93, 1.05, 3)
        hair = np.array([25, 18, 12]) + rng.uniform(0, 1) ** 2 * np.array([150, 110, 60])
        lips = skin * np.array([0.82, 0.55, 0.55])
        return cls(
            skin=tuple(np.clip(skin, 40, 250)), hair=tuple(hair * rng.uniform(0.85, 1.15, 3)),
            lips=tuple(lips), clothes=tuple(rng.uniform(20, 200, 3)), aspect=rng.uniform(1.22, 1.42), eye_dx=rng.uniform(0.36, 0.44),
            eye_size=rng.uniform(0.15, 0.19), brow_width=rng.uniform(0.045, 0.075),
            nose_length=rng.uniform(0.38, 0.5), mouth_width=rng.uniform(0.3, 0.4),
            long_hair=bool(rng.random() < 0.4),
            resting=tuple(rng.normal(0.0, 0.22, len(CUES))),
        )


def expression_cues(expression: str, intensity: float, actor: Actor,
                    rng: np.random.Generator, noise: float = 0.1) -> dict[str, float]:
    """The cue values of one frame: the class's cues at ``intensity``, the actor's resting face, noise."""
    nominal = np.array(EXPRESSIONS[expression])
    values = intensity * nominal + np.array(actor.resting) + rng.normal(0.0, noise, len(CUES))
    return dict(zip(CUES, values.tolist()))


def draw_face(actor: Actor, cues: dict[str, float], face_height: float, light: float = 0.0) -> Image.Image:
    """Paint one upright face as an RGBA image.

    Args:
        actor: the identity.
        cues: the expression, one value per name in :data:`CUES`.
        face_height: the face oval's height in pixels (forehead to chin).
        light: side lighting, -0.3 (lit from the left) to 0.3 (from the right).

    Returns:
        An RGBA image of ``canvas_size(actor, face_height)``; the face oval's
        centre is at :func:`face_centre`. Transparent outside hair, head and neck.
    """
    c = _Canvas(actor, face_height)
    a = actor.aspect
    skin = np.asarray(actor.skin, np.float32)
    hair = np.asarray(actor.hair, np.float32)

    # The neck (shadowed skin; the body is the frame's business), hair behind the head, ears.
    c.paint(c.rectangle(-0.55, 0.4 * a, 0.55, CANVAS_BOTTOM), skin * 0.62)
    if actor.long_hair:
        c.paint(c.ellipse(0, -0.1 * a, 1.32, a * 1.05, bottom=0.75 * a), hair)
    c.paint(c.ellipse(0, -0.25 * a, 1.15, a * 0.95), hair)
    for side in (-1, 1):
        c.paint(c.ellipse(side, -0.02 * a, 0.14, 0.26), skin * 0.8)

    # The face: a lit cylinder (sides darker), brighter forehead and cheeks,
    # dark eye sockets (deepest at the inner corners), a lit nose ridge with a
    # shadow beneath and to the unlit side: the contrasts a face detector keys on.
    eye_y = -0.13 * a
    nose_tip = eye_y + actor.nose_length + 0.1
    # A shading map over the canvas (1 = the skin colour as is), built from Gaussian bumps.
    shade = np.tile(1.0 - 0.38 * np.abs(c.x) ** 3 + light * c.x, (len(c.y), 1))
    c.shade(shade, 0.07, 0, -0.6 * a, 0.5, 0.22)
    for side in (-1, 1):
        c.shade(shade, 0.08, side * 0.5, 0.18 * a, 0.22, 0.18)
        c.shade(shade, -0.32, side * actor.eye_dx * 0.95, eye_y - 0.04, 0.24, 0.13)
    c.shade(shade, -0.22, 0, a * 1.02, 0.5, 0.12)  # under the jaw
    c.shade(shade, 0.1, 0, (eye_y + nose_tip) / 2, 0.06, 0.22)
    c.shade(shade, -0.3, 0, nose_tip + 0.07, 0.2, 0.05)
    c.shade(shade, -0.12, -0.12 * (1 if light >= 0 else -1), (eye_y + nose_tip) / 2 + 0.05, 0.05, 0.18)
    face = c.ellipse(0, 0, 1.0, a)
    c.paint(face, skin)
    window, mask = face
    c.rgb[window] *= np.where(mask > 0, np.clip(shade[window], 0.25, 1.3), 1.0)[..., None]
    c.paint(c.ellipse(0, -1.02 * a, 0.95, 0.34 * a), hair)  # the fringe over the forehead

    eye_h = actor.eye_size * 0.5 * max(0.25, 1.0 + 0.75 * cues["eye_open"])
    brow_y = eye_y - 0.25 - 0.14 * cues["brow_raise"]
    for side in (-1, 1):
        ex = side * actor.eye_dx
        window, white = c.ellipse(ex, eye_y, actor.eye_size, eye_h)
        c.paint((window, white * 0.85), skin * 0.35 + 150)
        c.paint((window, white * c.ellipse(ex, eye_y, eye_h * 1.2, eye_h * 1.2, within=window)[1]), (35, 25, 20))
        # Upper lid: a dark line along the top of the eye.
        c.paint(c.ellipse(ex, eye_y - eye_h * 0.8, actor.eye_size * 1.05, 0.035, bottom=eye_y), skin * 0.3)
        # Brow: a thick bar; the inner end (near the nose) moves by brow_tilt.
        inner = (side * 0.1, brow_y - 0.14 * cues["brow_tilt"])
        outer = (side * (actor.eye_dx + 0.32), brow_y + 0.04 * cues["brow_tilt"])
        c.paint(c.bar(inner, outer, actor.brow_width), hair * 0.6)
    for side in (-1, 1):  # nostrils
        window, nostril = c.ellipse(side * 0.09, nose_tip + 0.03, 0.055, 0.03)
        c.paint((window, nostril * 0.8), skin * 0.3)
    _paint_mouth(c, actor, cues, nose_tip + 0.3 + 0.12 * (a - 1.3))
    return c.image()


Window = tuple[slice, slice]


class _Canvas:
    """An RGBA float canvas in face units; each shape is computed only over its own bounding box."""

    def __init__(self, actor: Actor, face_height: float):
        width, height = canvas_size(actor, face_height)
        self.half = face_height / (2 * actor.aspect)  # pixels per face unit
        # Pixel centres in face units; y grows downwards like image rows.
        self.x = ((np.arange(width) + 0.5 - width / 2) / self.half).astype(np.float32)
        self.y = ((np.arange(height) + 0.5) / self.half + CANVAS_TOP).astype(np.float32)
        self.soft = 1.2 / self.half  # anti-aliasing: edges ramp over about a pixel
        self.rgb = np.zeros((height, width, 3), np.float32)
        self.alpha = np.zeros((height, width), np.float32)

    def window(self, x0: float, y0: float, x1: float, y1: float) -> tuple[Window, np.ndarray, np.ndarray]:
        """The pixels covering [x0, x1] x [y0, y1] (face units): (slices, X (1, w), Y (h, 1))."""
        cols = slice(*np.searchsorted(self.x, [x0 - self.soft, x1 + self.soft]))
        rows = slice(*np.searchsorted(self.y, [y0 - self.soft, y1 + self.soft]))
        return (rows, cols), self.x[None, cols], self.y[rows, None]

    def ellipse(self, cx, cy, rx, ry, *, bottom=np.inf, within: Window | None = None):
        """(window, mask): 1 inside the ellipse (cut at y = ``bottom``), 0 outside, a one-pixel ramp between."""
        if within is None:
            window, X, Y = self.window(cx - rx, cy - ry, cx + rx, min(cy + ry, bottom))
        else:
            window, X, Y = within, self.x[None, within[1]], self.y[within[0], None]
        r = np.sqrt(((X - cx) / rx) ** 2 + ((Y - cy) / ry) ** 2)
        mask = np.clip((1.0 - r) * min(rx, ry) / self.soft + 0.5, 0.0, 1.0)
        if bottom < np.inf:
            mask = mask * (Y < bottom)
        return window, mask

    def rectangle(self, x0, y0, x1, y1):
        window, X, Y = self.window(x0, y0, x1, y1)
        return window, np.ones((Y.shape[0], X.shape[1]), np.float32)

    def bar(self, p0, p1, half_width):
        """(window, mask) of a thick line from p0 to p1 with rounded ends."""
        (x0, y0), (x1, y1) = p0, p1
        window, X, Y = self.window(min(x0, x1) - half_width, min(y0, y1) - half_width,
                                   max(x0, x1) + half_width, max(y0, y1) + half_width)
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((X - x0) * dx + (Y - y0) * dy) / (dx * dx + dy * dy), 0.0, 1.0)
        dist = np.hypot(X - x0 - t * dx, Y - y0 - t * dy)
        return window, np.clip((half_width - dist) / self.soft + 0.5, 0.0, 1.0)

    def shade(self, shade: np.ndarray, amount, cx, cy, sx, sy) -> None:
        """Add a Gaussian bump of height ``amount`` to the shading map ``shade`` (cut at 3 sigma)."""
        window, X, Y = self.window(cx - 3 * sx, cy - 3 * sy, cx + 3 * sx, cy + 3 * sy)
        shade[window] += amount * np.exp(-0.5 * (((X - cx) / sx) ** 2 + ((Y - cy) / sy) ** 2))

    def paint(self, shape: tuple[Window, np.ndarray], colour) -> None:
        """Blend ``colour`` over the canvas with the shape's mask as coverage."""
        window, mask = shape
        m = mask[..., None]
        self.rgb[window] = self.rgb[window] * (1 - m) + m * np.asarray(colour, np.float32)
        self.alpha[window] = np.maximum(self.alpha[window], mask)

    def image(self) -> Image.Image:
        out = np.dstack([np.clip(self.rgb, 0, 255), self.alpha * 255]).astype(np.uint8)
        return Image.fromarray(out, "RGBA")


def _paint_mouth(c: _Canvas, actor: Actor, cues: dict[str, float], y0: float) -> None:
    """Lips as two curves over t in [-1, 1]; the gap between them is dark."""
    half_width = actor.mouth_width * (1.0 + 0.35 * cues["mouth_wide"])
    window, X, Y = c.window(-half_width, y0 - 0.45, half_width, y0 + 0.35)
    t = (X / half_width).clip(-1.0, 1.0)
    inside = np.clip((1.0 - np.abs(X / half_width)) * half_width / c.soft, 0.0, 1.0)
    # Positive smile lowers the middle relative to the corners: corners up.
    bend = 0.16 * cues["smile"] * (1.0 - t**2) - 0.08 * cues["smile"]
    gap = 0.28 * max(0.0, cues["mouth_open"]) * np.sqrt(1.0 - t**2)
    lift = 0.16 * max(0.0, cues["sneer"]) * np.clip(t, 0.0, None) * (1.2 - t)  # upper lip, right side
    top = y0 + bend - gap / 2 - lift
    bottom = y0 + bend + gap / 2
    lip = 0.055
    lips = inside * np.clip(np.minimum(Y - (top - lip), bottom + lip * 1.3 - Y) / c.soft, 0.0, 1.0)
    opening = inside * np.clip(np.minimum(Y - top, bottom - Y) / c.soft + 0.5, 0.0, 1.0)
    line = inside * np.clip(1.0 - np.abs(Y - (top + bottom) / 2) / 0.018, 0.0, 1.0)
    c.paint((window, lips), actor.lips)
    c.paint((window, np.maximum(opening, line)), (45, 15, 15))


def place_face(frame: Image.Image, face: Image.Image, actor: Actor, drawn: float, size: float,
               degrees: float, at: np.ndarray) -> tuple[int, int, int, int]:
    """Paste a body and a face from :func:`draw_face` into ``frame``, in place.

    Args:
        frame: an RGB image.
        face: the canvas :func:`draw_face` painted for ``actor`` at face height ``drawn``.
        size: the face height wanted in the frame; the canvas is scaled by ``size / drawn``
            (a big face is painted smaller and scaled up: its detail is lost at 48x48 anyway).
        degrees: the face's in-plane turn, counter-clockwise.
        at: ``(x, y)`` in frame pixels where the face oval's centre goes.

    Returns:
        The turned oval's bounding box ``(left, top, right, bottom)``, clipped to the frame.
    """
    # The body: a coat from the neck's base down, drawn in the frame (it is
    # mostly cut off by the frame's bottom edge, so it is not turned).
    unit = size / (2 * actor.aspect)  # pixels per face unit
    shoulders = at[1] + (actor.aspect + 0.45) * unit
    ImageDraw.Draw(frame).rounded_rectangle(
        (at[0] - 1.9 * unit, shoulders, at[0] + 1.9 * unit, shoulders + 14 * unit),
        radius=0.9 * unit, fill=tuple(int(v) for v in actor.clothes))

    # One affine resampling turns and scales the canvas about its centre. Image
    # rows grow downwards, so a counter-clockwise turn maps an offset (x, y) to
    # s * (x cos + y sin, -x sin + y cos); Pillow wants the inverse map.
    scale, theta = size / drawn, np.deg2rad(degrees)
    cos, sin = np.cos(theta), np.sin(theta)
    w, h = face.size
    out_w = int(np.ceil(scale * (w * abs(cos) + h * abs(sin))))
    out_h = int(np.ceil(scale * (w * abs(sin) + h * abs(cos))))
    a, b, d, e = cos / scale, -sin / scale, sin / scale, cos / scale
    inverse = (a, b, w / 2 - a * out_w / 2 - b * out_h / 2, d, e, h / 2 - d * out_w / 2 - e * out_h / 2)
    turned = face.transform((out_w, out_h), Image.AFFINE, inverse, Image.BILINEAR)
    # The oval centre's offset from the canvas centre, turned and scaled the same way.
    fx, fy = face_centre(actor, drawn)
    dx, dy = fx - w / 2, fy - h / 2
    offset = scale * np.array([dx * cos + dy * sin, -dx * sin + dy * cos])
    corner = np.round(at - np.array([out_w / 2, out_h / 2]) - offset)
    frame.paste(turned, (int(corner[0]), int(corner[1])), turned)

    # Bounding box of an ellipse with half-axes (unit, size / 2) turned by theta,
    # around where the centre landed after rounding the paste corner.
    ex = np.hypot(unit * cos, size / 2 * sin)
    ey = np.hypot(unit * sin, size / 2 * cos)
    x, y = corner + np.array([out_w / 2, out_h / 2]) + offset
    return (max(0, int(np.floor(x - ex))), max(0, int(np.floor(y - ey))),
            min(frame.width, int(np.ceil(x + ex))), min(frame.height, int(np.ceil(y + ey))))


def canvas_size(actor: Actor, face_height: float) -> tuple[int, int]:
    """(width, height) in pixels of the canvas :func:`draw_face` paints for this face height."""
    half = face_height / (2 * actor.aspect)
    return int(np.ceil(2 * CANVAS_X * half)), int(np.ceil((CANVAS_BOTTOM - CANVAS_TOP) * half))


def face_centre(actor: Actor, face_height: float) -> tuple[float, float]:
    """(x, y) in canvas pixels of the face oval's centre."""
    width, _ = canvas_size(actor, face_height)
    return width / 2, -CANVAS_TOP * face_height / (2 * actor.aspect)
