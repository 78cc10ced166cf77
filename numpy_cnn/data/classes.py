"""The seven expression labels and their order, shared by every loader.

The order is the one the paper's confusion matrices use; a label is always an
index into :data:`CLASSES`.
"""

from __future__ import annotations

from numpy_cnn.errors import UserError

CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")

# Other spellings that real copies of these datasets use for the same seven
# expressions (e.g. a FER2013 image dump with disgusted/, fearful/, surprised/).
SYNONYMS: dict[str, str] = {
    "anger": "Angry", "disgusted": "Disgust", "fearful": "Fear", "scared": "Fear",
    "happiness": "Happy", "sadness": "Sad", "surprised": "Surprise",
}
# Expressions some datasets label that are not one of the seven (CK+'s contempt, also in
# Kaggle's CK+48 folders): their images are left out, with a note, rather than refused.
LEFT_OUT: frozenset[str] = frozenset({"contempt"})
_BY_FOLDED_NAME = {name.casefold(): i for i, name in enumerate(CLASSES)}
_BY_FOLDED_NAME.update({alias: CLASSES.index(name) for alias, name in SYNONYMS.items()})


def class_index(name: str) -> int | None:
    """Index of a class name (or a synonym in :data:`SYNONYMS`), matched
    case-insensitively; ``None`` if unknown."""
    return _BY_FOLDED_NAME.get(name.strip().casefold())


def is_left_out(name: str) -> bool:
    """True for an expression of :data:`LEFT_OUT` (any case): known, but not one of ours."""
    return name.strip().casefold() in LEFT_OUT


def parse_label(token: str, where: str) -> int:
    """A label written as an index ``0``-``6`` or a class name; ``where`` names the source for errors."""
    token = token.strip()
    if token.isdigit() and int(token) < len(CLASSES):
        return int(token)
    index = class_index(token)
    if index is None:
        raise UserError(
            f"{where}: bad label {token!r}; use a class index 0-{len(CLASSES) - 1} "
            f"or one of {', '.join(CLASSES)}"
        )
    return index
