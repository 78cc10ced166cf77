"""CK+ (the extended Cohn-Kanade set) in its original layout: each labelled sequence's peak and first frames.

The release unpacks to two trees that mirror each other, side by side in one
folder (names matched case-insensitively)::

    CK+/cohn-kanade-images/S005/001/S005_001_00000001.png ... S005_001_00000011.png
    CK+/Emotion/S005/001/S005_001_00000011_emotion.txt    one line: "   3.0000000e+00"

Each ``S<subject>/<sequence>`` folder of ``cohn-kanade-images`` is one posed
sequence, from a neutral face (its first frame) to the expression at its peak
(its last). 327 of the 593 sequences have an emotion file: it names the peak
frame and holds one code, 0 neutral, 1 anger, 2 contempt, 3 disgust, 4 fear,
5 happy, 6 sadness, 7 surprise. Either folder may also sit one level down
(``extended-cohn-kanade-images/cohn-kanade-images``, ``Emotion_labels/Emotion``),
and the whole may be the only folder inside the one given. ``FACS/`` and
``Landmarks/`` are not read; colour frames become gray as any image does.

The protocol (the common one):

* each sequence with an emotion file gives two images: the frame the file
  names, labelled with its code, and the sequence's first frame (by name),
  labelled Neutral. One neutral face per sequence, not per subject: the
  Neutral class then has as many images as the six expressions together have
  sequences;
* contempt (code 2) is not one of the seven classes, so a contempt sequence
  gives neither image (its first frame too: every image comes from a
  sequence of one of the seven classes). The listing's ``left_out`` counts them;
* a sequence without an emotion file is not read.

The full release so gives 309 peak frames and 309 Neutral first frames, 618
images (18 contempt sequences left out). Paths are relative to the folder given,
``cohn-kanade-images/S005/001/S005_001_00000011.png``, so ``--group-by subject``
names the person (``S005``): split that way, no one is both trained and tested on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import class_index
from numpy_cnn.data.sources import Listing, visible_entries, visible_files

IMAGES_FOLDER = "cohn-kanade-images"
EMOTION_FOLDER = "emotion"
_SUFFIX = "_emotion.txt"
# Our class of each CK+ code (the index); None: contempt, not one of the seven.
_CODES = ("Neutral", "Angry", None, "Disgust", "Fear", "Happy", "Sad", "Surprise")
_NEUTRAL = class_index("Neutral")


@dataclass(frozen=True)
class CkFolders:
    """The two trees of a CK+ copy: ``images`` (``cohn-kanade-images``) and ``emotion`` (``Emotion``)."""

    images: Path
    emotion: Path


def find_ckplus(root: Path) -> CkFolders | None:
    """CK+'s two folders, if ``root`` (or its only visible entry, a folder) holds them; else None.

    Each is looked for among the folder's sub-folders, then one level further down.

    Raises:
        UserError: ``cohn-kanade-images`` without an ``Emotion`` folder (its images have
            no labels), two copies of either, or ``root`` is ``cohn-kanade-images`` itself.
    """
    if root.name.casefold() == IMAGES_FOLDER and _named(root.parent, EMOTION_FOLDER) is not None:
        raise UserError(f"{root}: is CK+'s image folder; pass the folder holding it and Emotion/, {root.parent}")
    entries = visible_entries(root)
    bases = [root] + (entries if len(entries) == 1 and entries[0].is_dir() else [])
    for base in bases:
        images = _named(base, IMAGES_FOLDER)
        if images is None:
            continue
        emotion = _named(base, EMOTION_FOLDER)
        if emotion is None:
            raise UserError(f"{images}: CK+ images without an Emotion folder, so they have no labels; unpack "
                            f"CK+'s Emotion labels into {base} (Emotion/S005/001/S005_001_00000011_emotion.txt)")
        return CkFolders(images, emotion)
    return None


def _named(base: Path, name: str) -> Path | None:
    """``base/<name>``, else the one ``base/*/<name>`` (case-insensitive), else None."""
    folders = [p for p in visible_entries(base) if p.is_dir()]
    direct = [p for p in folders if p.name.casefold() == name]
    if direct:
        return direct[0]
    # Names first: a stat per file of a 30,000-image class folder would be wasted.
    below = [q for p in folders for q in visible_entries(p) if q.name.casefold() == name and q.is_dir()]
    if len(below) > 1:
        raise UserError(f"{base}: holds {len(below)} {below[0].name} folders ({below[0]} and {below[1]}); "
                        "keep one, or pass the folder holding the one to use")
    return below[0] if below else None


def list_ckplus(folders: CkFolders, root: Path) -> Listing:
    """Each labelled sequence's peak frame (its label) and first frame (Neutral), paths relative to ``root``.

    In the order of the emotion files: per sequence, its first frame, then its peak.

    Raises:
        UserError: an emotion file that does not hold a code 0-7, one whose frame is
            missing, or no emotion file at all; each names the file.
    """
    files: list[str] = []
    labels: list[int] = []
    contempt, sequences = 0, set()
    emotion_files = [p for p in visible_files(folders.emotion) if p.name.casefold().endswith(_SUFFIX)]
    for path in emotion_files:
        code = _read_code(path)
        if _CODES[code] is None:
            contempt += 1
            continue
        sequence = path.parent.relative_to(folders.emotion)
        frames = _frames(folders.images / sequence)
        stem = path.name[:-len(_SUFFIX)].casefold()
        peak = next((f for f in frames if f.stem.casefold() == stem), None)
        if peak is None:
            raise UserError(f"{path}: names frame {path.name[:-len(_SUFFIX)]}, which is not in "
                            f"{folders.images / sequence}; restore that sequence from your CK+ copy, "
                            "or delete the emotion file to leave it out")
        if sequence not in sequences and frames[0] != peak:   # one neutral face per sequence
            sequences.add(sequence)
            files.append(frames[0].relative_to(root).as_posix())
            labels.append(_NEUTRAL)
        files.append(peak.relative_to(root).as_posix())
        labels.append(class_index(_CODES[code]))
    if not files:
        raise UserError(f"{folders.emotion}: " + (f"only contempt sequences ({contempt}), not one of the seven "
                                                  "classes; nothing to read" if contempt else
                                                  f"no *{_SUFFIX} files, so no CK+ sequence has a label; "
                                                  "unpack CK+'s Emotion labels there"))
    note = (f"{contempt} contempt sequence{'s' * (contempt != 1)} left out (code 2: not one of the seven classes)"
            if contempt else "")
    return Listing(files, np.array(labels, dtype=np.int64), note)


def _frames(sequence: Path) -> list[Path]:
    """The frames of one sequence folder, by name (the first is the neutral face); [] if it is missing."""
    return [p for p in visible_entries(sequence) if p.is_file()] if sequence.is_dir() else []


def _read_code(path: Path) -> int:
    """The code an emotion file holds (``   3.0000000e+00`` -> 3).

    Raises:
        UserError: anything but one whole number 0-7, naming the file.
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror or exc}); fix its permissions "
                        "or delete it to leave the sequence out") from None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value.is_integer() and 0 <= value < len(_CODES)):
        raise UserError(f"{path}: {text[:30]!r} is not a CK+ emotion code (one number 0-7, e.g. 3.0000000e+00); "
                        "restore the file from your CK+ copy, or delete it to leave the sequence out")
    return int(value)
