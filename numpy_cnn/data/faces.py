"""Find the face in a frame and cut a square crop around it: OpenCV's Viola-Jones detector.

The paper's own proposed fix was to "crop the images and put the face in the
center of the image before training". This module is the detector behind
that: the classic Viola-Jones frontal-face cascade (Haar-like features,
boosted, evaluated as a cascade of ever stricter stages) that OpenCV 4.x
wheels ship with their data files. It is an optional extra::

    pip install -e ".[faces]"        # opencv-python-headless>=4,<5

(OpenCV 5 removed ``CascadeClassifier`` and ships no cascades.) Nothing here
imports OpenCV until a detector is built, and without it that is one
:class:`UserError` giving the command above.

Usage::

    detector = FaceDetector(DetectorSettings())
    found = detector.find(gray)           # gray: (H, W) uint8 -> Detection
    face = crop(gray, found.crop)         # (h, w) with h == w unless the frame is smaller

Boxes are ``(left, top, right, bottom)`` in pixels, right and bottom exclusive,
like Pillow's ``Image.crop``.

The settings were chosen by measurement on the generated frames, whose true
face boxes are known (``boxes.json``): see :data:`DEFAULT_CASCADE`. They are
also meant for real SFEW frames (720x576 film frames whose faces are about
40-200 pixels), which is why the smallest face searched is 40 pixels. How
often it finds real film faces cannot be measured without real frames (none
are in this repository); drawn faces are easier than real ones, so expect
fewer hits there (a study with OpenCV's cascade found a face in 77% of
SFEW's frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError

INSTALL_HINT = 'pip install -e ".[faces]"'
Box = tuple[int, int, int, int]  # (left, top, right, bottom)

# The four frontal-face cascades OpenCV 4 ships, compared on generated frames
# by benchmarks/bench_faces.py (share of crops with IoU >= 0.5 against the
# true box, 225 frames): alt 99%, alt2 97%, default 85% (its boxes are wider,
# so its crops overshoot), alt_tree 55% (it misses 42% of the faces); dlib's
# HOG detector (pip install dlib-bin, no model download) 96%. alt2 is the
# default: nearly alt's hits at 3/4 of its time, and on all 675 frames of
# the default dataset its crops hit 98.4% with no frame left without a face.
CASCADES = {
    "default": "haarcascade_frontalface_default.xml",
    "alt": "haarcascade_frontalface_alt.xml",
    "alt2": "haarcascade_frontalface_alt2.xml",
    "alt_tree": "haarcascade_frontalface_alt_tree.xml",
}
DEFAULT_CASCADE = "alt2"


@dataclass(frozen=True)
class DetectorSettings:
    """Everything that decides which crop a frame gets; :meth:`key` names it for caches and checkpoints.

    Attributes:
        cascade: one of :data:`CASCADES`.
        scale_factor: the image pyramid's step (OpenCV's ``scaleFactor``): 1.1
            tries window sizes 10% apart; smaller finds more, slower.
        min_neighbors: overlapping hits needed to report a face (``minNeighbors``);
            higher means fewer false faces and more missed ones.
        min_size: the smallest face searched, in pixels of the frame.
        margin: the crop's margin around the face box, as a fraction of the
            box side on each side (0.1: the crop is 1.2 box sides across).
    """

    cascade: str = DEFAULT_CASCADE
    scale_factor: float = 1.1
    min_neighbors: int = 3
    min_size: int = 40
    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.cascade not in CASCADES:
            raise UserError(f"unknown face cascade {self.cascade!r}; use one of {', '.join(CASCADES)}")
        if not 1.0 < self.scale_factor <= 2.0:
            raise UserError(f"face detector scale factor must be in (1, 2], got {self.scale_factor}")
        if self.min_neighbors < 0 or self.min_size < 1:
            raise UserError(f"face detector needs min_neighbors >= 0 and min_size >= 1, "
                            f"got {self.min_neighbors} and {self.min_size}")
        if not 0.0 <= self.margin <= 1.0:
            raise UserError(f"face crop margin must be in [0, 1] (a fraction of the face box), got {self.margin}")

    def key(self) -> str:
        """A stable one-line name of these settings, e.g. ``haar-alt2 sf1.1 mn3 min40 m0.1``."""
        return (f"haar-{self.cascade} sf{self.scale_factor:g} mn{self.min_neighbors} "
                f"min{self.min_size} m{self.margin:g}")


@dataclass(frozen=True)
class Detection:
    """What the detector made of one frame.

    Attributes:
        faces: every face found, ``(K, 4)`` int boxes, largest first (K may be 0).
        crop: the square crop around the largest face with the margin, moved
            inside the frame; the whole frame when no face was found.
    """

    faces: np.ndarray
    crop: Box

    @property
    def found(self) -> bool:
        return len(self.faces) > 0

    @property
    def face(self) -> Box | None:
        """The face the crop is built on (the largest), or None."""
        return tuple(int(v) for v in self.faces[0]) if self.found else None


@dataclass
class DetectionCounts:
    """How many frames had no face, or several (the largest was taken)."""

    frames: int = 0
    no_face: int = 0
    several_faces: int = 0
    no_face_files: list[str] = field(default_factory=list)

    def add(self, detection: Detection, name: str = "") -> None:
        self.add_count(len(detection.faces), name)

    def add_count(self, faces: int, name: str = "") -> None:
        """Count one frame in which ``faces`` faces were found (what the crop cache stores)."""
        self.frames += 1
        if faces == 0:
            self.no_face += 1
            self.no_face_files.append(name)
        elif faces > 1:
            self.several_faces += 1

    def summary(self, policy: str = "keep", detail: str = "") -> str:
        """One line, e.g. ``faces: 675 frames, 12 without a face (kept whole), 3 with several (the largest taken)``;
        ``detail`` goes in the parenthesis (``kept whole: 9 train, 3 test``)."""
        fate = ("kept whole" if policy == "keep" else "dropped") + (f": {detail}" if detail else "")
        return (f"faces: {self.frames} frames, {self.no_face} without a face ({fate}), "
                f"{self.several_faces} with several (the largest taken)")


def face_report(settings: DetectorSettings, policy: str, sides: dict[str, tuple[list[str], np.ndarray]]) -> dict:
    """What the detector made of a run's frames, for the printed line and ``results.json``.

    Args:
        settings: the detector's settings (their :meth:`~DetectorSettings.key` is reported).
        policy: ``keep`` or ``drop``, what happened to a frame without a face.
        sides: ``{"train": (names, faces found per frame), "test": (...)}``, before any drop.

    Returns:
        ``detector``, ``policy``, ``frames``, ``no_face``, ``several_faces``,
        ``no_face_<side>`` per side, ``no_face_files`` (all of them, by name)
        and ``line``, the one line a run prints.
    """
    total = DetectionCounts()
    report: dict = {"detector": settings.key(), "policy": policy}
    for side, (names, faces) in sides.items():
        counts = DetectionCounts()
        for name, n in zip(names, faces):
            counts.add_count(int(n), name)
            total.add_count(int(n), name)
        report[f"no_face_{side}"] = counts.no_face
    per_side = ", ".join(f"{report[f'no_face_{side}']} {side}" for side in sides) if len(sides) > 1 else ""
    report.update(frames=total.frames, no_face=total.no_face, several_faces=total.several_faces,
                  no_face_files=total.no_face_files,
                  line=f"{total.summary(policy, per_side)}; detector {settings.key()}")
    return report


class FaceDetector:
    """OpenCV's Haar cascade with fixed :class:`DetectorSettings`.

    Raises:
        UserError: OpenCV is not installed (the message gives the install
            command), or is a version without the cascades.
    """

    def __init__(self, settings: DetectorSettings | None = None):
        self.settings = settings or DetectorSettings()
        cv2 = require_cv2()
        path = Path(cv2.data.haarcascades) / CASCADES[self.settings.cascade]
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise UserError(f"{path}: OpenCV could not load this face cascade; reinstall with {INSTALL_HINT}")

    def detect(self, gray: np.ndarray) -> np.ndarray:
        """Faces in a grayscale frame.

        Args:
            gray: ``(H, W)`` uint8.

        Returns:
            ``(K, 4)`` int64 boxes ``(left, top, right, bottom)``, largest area first.
        """
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise ValueError(f"detect needs a (H, W) uint8 gray frame, got {gray.shape} {gray.dtype}")
        s = self.settings
        found = self._cascade.detectMultiScale(gray, scaleFactor=s.scale_factor, minNeighbors=s.min_neighbors,
                                               minSize=(s.min_size, s.min_size))
        boxes = np.asarray(found, np.int64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # (x, y, w, h) -> (left, top, right, bottom)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[np.argsort(-area, kind="stable")]

    def find(self, gray: np.ndarray) -> Detection:
        """Detect, take the largest face and build its crop: ``(H, W)`` uint8 -> :class:`Detection`."""
        faces = self.detect(gray)
        height, width = gray.shape
        if len(faces) == 0:
            return Detection(faces, (0, 0, width, height))
        return Detection(faces, square_crop(tuple(faces[0]), self.settings.margin, (height, width)))


def square_crop(face: Box, margin: float, frame_shape: tuple[int, int]) -> Box:
    """A square around ``face``'s centre, ``(1 + 2 margin)`` times its longer side, kept inside the frame.

    A crop that would stick out is moved inside rather than cut, so it stays
    square and the face is not squashed when resized to 48x48; only a crop
    larger than the frame itself is clipped to the frame edges.

    Args:
        face: ``(left, top, right, bottom)``.
        margin: the margin on each side, as a fraction of the face's longer side.
        frame_shape: ``(H, W)``.
    """
    left, top, right, bottom = face
    height, width = frame_shape
    side = round(max(right - left, bottom - top) * (1 + 2 * margin))
    cx, cy = (left + right) / 2, (top + bottom) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, max(0, width - side)))
    y0 = int(np.clip(round(cy - side / 2), 0, max(0, height - side)))
    return x0, y0, min(width, x0 + side), min(height, y0 + side)


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    """``image[top:bottom, left:right]`` for an ``(H, W)`` or ``(H, W, C)`` image."""
    left, top, right, bottom = box
    return image[top:bottom, left:right]


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, 0 to 1."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def require_cv2():
    """Import OpenCV, or raise a one-line :class:`UserError` that gives the install command."""
    try:
        import cv2
    except ImportError:
        raise UserError(f"face detection needs OpenCV 4: {INSTALL_HINT}") from None
    if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
        raise UserError(f"OpenCV {cv2.__version__} has no Haar cascades (OpenCV 5 removed them); "
                        f"install OpenCV 4 with {INSTALL_HINT}")
    return cv2
