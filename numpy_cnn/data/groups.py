"""Groups: which images belong together and must stay on one side of a split.

Film frames come in clips of near-identical frames, and face datasets hold
several pictures of one person. A split that puts one frame of a clip in the
training set and its neighbour in the test set measures memory, not
recognition. A *group rule* names each image's group from its path (relative
to the dataset root, ``/`` separators); :mod:`.split` then keeps every group
whole.

Rules (``--group-by``):

* ``clip``: SFEW names ``<movie>_<clip>_<frame>.png``, e.g.
  ``Airheads_000519240_00000005.png`` -> ``Airheads_000519240``. The movie is
  everything before the last two digit runs, so it may hold digits, hyphens
  and underscores (``Oceans-11``, ``21``); the separators may be ``_``, ``-``
  or doubled (real copies hold ``OceansThirteen-010619400_00000087.png`` and
  ``IAmSam_013827920__00000055.png``). Any extension and case, and a
  ``" (1)"`` or ``" - Copy"`` that a file manager added, are fine; so is a
  suffix after SFEW's 9-digit clip and 8-digit frame (``..._00000005_1``). A frame
  with another name inside a clip sub-folder (``Angry/<clip>/0001.png``,
  AFEW-style dumps) is grouped by that sub-folder.
* ``movie``: the same names, grouped by film (SFEW's closest stand-in for a
  person-independent protocol: one actor mostly appears in one film).
* ``subject``: the person. JAFFE ``KA.AN1.39.tiff`` -> ``KA``; CK+
  ``S005_001_00000011.png`` -> ``S005``.
* anything else is a regular expression with one capture group, searched
  (``re.search``) in the relative path; the group is what it captured, e.g.
  ``--group-by '^[^/]+/(\\w+?)_'``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from numpy_cnn.errors import UserError
from numpy_cnn.data.classes import class_index
from numpy_cnn.data.sources import SPLIT_NAMES

# <movie><sep><clip digits><sep><frame digits>; the lazy movie stops at the last two digit runs.
_SFEW = re.compile(r"^(?P<movie>.+?)[_\- ]+(?P<clip>\d+)[_\- ]+(?P<frame>\d+)$")
# SFEW's own widths (9-digit clip, 8-digit frame) win wherever they are, even before a suffix
# ("..._00000005_1"), which would otherwise make the frame number look like the clip.
_SFEW_WIDTHS = re.compile(r"^(?P<movie>.+?)[_\- ]+(?P<clip>\d{9})[_\- ]+(?P<frame>\d{8})(?:[_\- ].*)?$")
_JAFFE = re.compile(r"^(?P<subject>[a-z]{2,3})\.(an|di|fe|ha|ne|sa|su)\d*\.\d+$", re.IGNORECASE)
_CK = re.compile(r"^(?P<subject>S\d+)_\d+_\d+$", re.IGNORECASE)
# What file managers append to a copied file: "x (1).png", "x - Copy.png", "x - Copy (2).png", "x copy.png".
_COPY_SUFFIX = re.compile(r"(\s*\(\d+\)|\s*-?\s*copy(\s*\(\d+\))?)+$", re.IGNORECASE)

RULES = ("clip", "movie", "subject")
RULE_HELP = {"clip": "SFEW clip names <movie>_<clip>_<frame>", "movie": "SFEW names <movie>_<clip>_<frame>",
             "subject": "JAFFE KA.AN1.39.tiff or CK+ S005_001_00000011.png names"}
# What each rule's groups are called in messages ("share a clip with a training frame").
UNIT = {"clip": "clip", "movie": "film", "subject": "subject"}


def _stem(relative: str) -> str:
    """The file name without folders, extension or a file manager's copy suffix."""
    name = relative.rsplit("/", 1)[-1]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    return _COPY_SUFFIX.sub("", stem)


def _sfew(relative: str) -> tuple[str, str] | None:
    """(movie, clip number) of an SFEW frame name, or None."""
    stem = _stem(relative)
    match = _SFEW_WIDTHS.match(stem) or _SFEW.match(stem)
    if match is None:
        return None
    return match["movie"].strip("_- "), match["clip"]


def clip_of(relative: str) -> str | None:
    """``Airheads_000519240_00000005.png`` -> ``Airheads_000519240``; a frame named otherwise
    inside a clip sub-folder (``Angry/clip7/0001.png``) -> ``Angry/clip7``; else None."""
    parsed = _sfew(relative)
    if parsed is not None:
        return f"{parsed[0]}_{parsed[1]}"
    folder, _, _ = relative.rpartition("/")
    parent = folder.rpartition("/")[2]
    # Only a folder below a class folder is a clip; "Angry/x.png" or "train/Angry/x.png" are not.
    if "/" in folder and class_index(parent) is None and parent.casefold() not in SPLIT_NAMES:
        return folder
    return None


def movie_of(relative: str) -> str | None:
    """``OceansThirteen-010619400_00000087.png`` -> ``OceansThirteen``; else None."""
    parsed = _sfew(relative)
    return None if parsed is None else parsed[0]


def subject_of(relative: str) -> str | None:
    """JAFFE ``KA.AN1.39.tiff`` -> ``KA``, CK+ ``S005_001_00000011.png`` -> ``S005``; else None."""
    stem = _stem(relative)
    match = _JAFFE.match(stem) or _CK.match(stem)
    return None if match is None else match["subject"].upper()


_NAMERS = {"clip": clip_of, "movie": movie_of, "subject": subject_of}


@dataclass(frozen=True)
class GroupRule:
    """A rule from ``--group-by``: one of :data:`RULES` or a regular expression with one capture group."""

    spec: str

    def __post_init__(self) -> None:
        check_rule(self.spec)

    @property
    def unit(self) -> str:
        """What a group is called in messages: ``clip``, ``film``, ``subject`` or ``group``."""
        return UNIT.get(self.spec, "group")

    def name(self, relative: str) -> str | None:
        """The group of one image (path relative to the dataset root), or None if the rule cannot tell."""
        if self.spec in _NAMERS:
            return _NAMERS[self.spec](relative)
        match = re.search(self.spec, relative)
        return None if match is None or not match.group(1) else match.group(1)

    def names(self, files: Sequence[str], where: str) -> list[str]:
        """The group of every file; ``where`` (the data folder) is named in the error.

        Raises:
            UserError: a file the rule cannot name, with how many others it could not name either.
        """
        groups = [self.name(f) for f in files]
        failed = [f for f, g in zip(files, groups) if g is None]
        if failed:
            others = len(failed) - 1
            what = RULE_HELP.get(self.spec, f"a match with a non-empty capture for {self.spec!r}")
            raise UserError(
                f"{where}: --group-by {self.spec} cannot name the group of {failed[0]} (it expects {what})"
                + (f", nor of {others} other file{'s' if others > 1 else ''}" if others else "")
                + "; rename them, or pass --group-by a regular expression with one capture group")
        return groups  # type: ignore[return-value]


def check_rule(spec: str) -> None:
    """Refuse a ``--group-by`` that is neither a known rule nor a regex with exactly one capture group."""
    if spec in _NAMERS:
        return
    try:
        groups = re.compile(spec).groups
    except re.error as exc:
        raise UserError(f"--group-by {spec!r}: not {', '.join(RULES)} nor a valid regular expression "
                        f"({exc}); use one of those rules or fix the expression") from None
    if groups != 1:
        raise UserError(f"--group-by {spec!r}: a regular expression needs exactly one capture group "
                        f"(it has {groups}), e.g. '^([^_]+)_' ; or use one of {', '.join(RULES)}")


def known_scheme(files: Sequence[str], share: float = 0.9) -> GroupRule | None:
    """The rule that names the images' groups when ``share`` of them follow a known scheme, else None.

    Subjects are tried first: CK+ names ``S005_001_00000011`` also look like SFEW
    clips, and for them the person is what leaks. Only file names count here (not
    clip sub-folders): any dataset with sub-folders would otherwise look grouped.
    """
    if not files:
        return None
    for spec, parse in (("subject", subject_of), ("clip", _sfew)):
        if sum(parse(f) is not None for f in files) >= share * len(files):
            return GroupRule(spec)
    return None
