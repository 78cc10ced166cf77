"""The FER2013 CSV: ``emotion,pixels,Usage`` with 48x48 = 2304 pixels per row.

* ``emotion`` uses FER2013's order (0 Angry, 1 Disgust, 2 Fear, 3 Happy,
  4 Sad, 5 Surprise, 6 Neutral) and is mapped to ours (:data:`CLASSES`).
* ``Usage`` ``Training`` rows form the training set; ``PublicTest`` and
  ``PrivateTest`` rows together form the test set. Without a ``Usage``
  column the caller makes a stratified split.
* Rows are named ``<file name>:<line number>`` (the header is line 1).
* Re-saved files are read as written: pixel values separated by any run of
  spaces or tabs, and labels as integral floats (``3.0``, as pandas writes a
  column that held a NaN).

The real file has 35,887 rows (~290 MB of text). Parsing is vectorised: the
pixel strings of many rows are joined and their digits decoded with NumPy
index arithmetic, and the result is cached like decoded images.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from numpy_cnn.errors import UserError
from numpy_cnn.data.cache import cache_key, file_fingerprint, load_entry, save_entry
from numpy_cnn.data.classes import class_index
from numpy_cnn.data.decode import RESAMPLE

FER_SIZE = 48
FER_PIXELS = FER_SIZE * FER_SIZE
# FER2013 label -> our label: FER puts Sad, Surprise, Neutral at 4, 5, 6.
FER_TO_OURS = np.array([0, 1, 2, 3, 5, 6, 4], dtype=np.int64)
_USAGE = {"training": 0, "publictest": 1, "privatetest": 1}
_ROWS_PER_CHUNK = 2048
_VERSION = 1
# A text CSV has no control bytes but tab, line ends, form feed and DOS's end-of-file Ctrl-Z;
# a PNG, JPEG, zip or xlsx renamed to .csv has NULs and others in its first bytes.
_TEXT_CONTROLS = b"\t\n\r\x0c\x1a"
_BINARY_BYTES = bytes(b for b in range(32) if b not in _TEXT_CONTROLS) + b"\x7f"
_SNIFF_BYTES = 4096
_FLOAT_LABEL = re.compile(r"(\d+)\.0*")  # 3.0, 3., 3.00: what pandas writes for an int column with a NaN


@dataclass
class CsvRows:
    """Parsed rows of a FER2013 CSV.

    Attributes:
        x: (N, S, S) uint8 images.
        y: (N,) int64 labels in our order.
        usage: (N,) int8, 0 = train, 1 = test, -1 = no Usage column.
        lines: (N,) int64 line numbers in the file (header = 1).
    """

    x: np.ndarray
    y: np.ndarray
    usage: np.ndarray
    lines: np.ndarray


def row_names(path: Path, rows: CsvRows) -> list[str]:
    """``<file name>:<line number>`` of each row: how split files and messages name CSV rows."""
    return [f"{path.name}:{n}" for n in rows.lines.tolist()]


def read_fer2013_csv(path: Path, image_size: int = 48, cache_dir: Path | None = None) -> CsvRows:
    """Parse (or load from the cache) a FER2013-style CSV.

    Raises:
        UserError: missing columns, a bad label or Usage, or a row without
            exactly 2304 pixel values in 0-255; the message names the line.
    """
    path = Path(path)
    key = cache_key("fer2013", {"file": file_fingerprint([path]), "size": image_size, "version": _VERSION})
    cached = load_entry(cache_dir, key)
    if cached is not None and set(cached) == {"x", "y", "usage", "lines"}:
        return CsvRows(**cached)
    rows = _parse(path)
    if image_size != FER_SIZE:  # _parse guarantees at least one row
        rows.x = np.stack([
            np.asarray(Image.fromarray(im).resize((image_size, image_size), RESAMPLE)) for im in rows.x
        ])
    save_entry(cache_dir, key, x=rows.x, y=rows.y, usage=rows.usage, lines=rows.lines)
    return rows


def _parse(path: Path) -> CsvRows:
    data = path.read_bytes()
    _check_text(data[:_SNIFF_BYTES], path)
    lines = data.splitlines()  # \n, \r\n, or the \r of old Mac Excel exports
    del data
    if not lines:
        raise UserError(f"{path}: the file is empty; pass the FER2013 CSV (emotion,pixels,Usage)")
    header = [h.strip().strip(b'"').decode("utf-8-sig", "replace").casefold() for h in lines[0].split(b",")]
    if "pixels" in header and "emotion" not in header:  # Kaggle's test.csv
        raise UserError(f"{path}: has no emotion column, so its images have no labels (Kaggle's test.csv "
                        "is unlabelled); use fer2013.csv, train.csv or icml_face_data.csv")
    if "emotion" not in header or "pixels" not in header:
        raise UserError(f"{path}:1: header must name the columns emotion,pixels[,Usage]; got {lines[0][:80].decode('utf-8', 'replace').strip()!r}")
    col_emotion, col_pixels = header.index("emotion"), header.index("pixels")
    col_usage = header.index("usage") if "usage" in header else None

    labels, usage, numbers, pixels = [], [], [], []
    for number, line in enumerate(lines[1:], start=2):
        line = line.strip()
        if not line:
            continue
        fields = line.split(b",")
        if len(fields) != len(header):
            raise UserError(f"{path}:{number}: expected {len(header)} comma-separated fields, got {len(fields)}")
        labels.append(_label(fields[col_emotion], f"{path}:{number}"))
        usage.append(-1 if col_usage is None else _usage(fields[col_usage], f"{path}:{number}"))
        numbers.append(number)
        values = fields[col_pixels].strip(b'" \t')
        # Rows of single spaces go to the vectorised parser as they are. Tabs become spaces in
        # place (10x cheaper than split and join); only a row whose spaces then do not number
        # 2303 (runs of spaces or tabs) is rejoined and counted. A run of spaces in a row of 2303
        # spaces leaves too few values, which the bad-row message below counts. (Searching every
        # row for "  " too would cost ~15% of the parse.)
        if b"\t" in values:
            values = values.replace(b"\t", b" ")
        if values.count(b" ") != FER_PIXELS - 1:
            values = b" ".join(values.split())
            _check_count(values, f"{path}:{number}")
        pixels.append(values)
    if not labels:
        raise UserError(f"{path}: no data rows; is this the FER2013 CSV?")

    x = np.empty((len(pixels), FER_PIXELS), np.uint8)
    for start in range(0, len(pixels), _ROWS_PER_CHUNK):
        chunk = pixels[start:start + _ROWS_PER_CHUNK]
        values, bad_row = _parse_pixel_rows(chunk)
        if bad_row is not None:
            where = f"{path}:{numbers[start + bad_row]}"
            _check_count(b" ".join(chunk[bad_row].split()), where)
            raise UserError(f"{where}: pixel values must be integers 0-255; fix or delete the row")
        x[start:start + len(chunk)] = values
    return CsvRows(
        x=x.reshape(-1, FER_SIZE, FER_SIZE),
        y=np.array(labels, np.int64),
        usage=np.array(usage, np.int8),
        lines=np.array(numbers, np.int64),
    )


def _parse_pixel_rows(rows: list[bytes]) -> tuple[np.ndarray, int | None]:
    """Decode rows of 2304 space-separated integers at once.

    Returns:
        ((R, 2304) uint8 values, None), or (None, index of the first bad row).

    Each number ends just before a space (or at the end); its last three
    characters are its ones, tens and hundreds digits, when it is that long.
    """
    text = np.frombuffer(b" ".join(rows), np.uint8)
    ends = np.append(np.flatnonzero(text == ord(" ")), len(text))
    starts = np.insert(ends[:-1] + 1, 0, 0)
    length = ends - starts
    digit = text.astype(np.int16) - ord("0")
    ones = digit[ends - 1]
    tens = np.where(length >= 2, digit[ends - 2], 0)
    hundreds = np.where(length >= 3, digit[ends - 3], 0)
    values = ones + 10 * tens + 100 * hundreds
    non_digit = (text != ord(" ")) & ((text < ord("0")) | (text > ord("9")))
    bad_tokens = np.concatenate([
        np.flatnonzero((length < 1) | (length > 3) | (values > 255)),
        np.searchsorted(ends, np.flatnonzero(non_digit)),  # the token holding each stray character
    ])
    if bad_tokens.size:
        return None, int(bad_tokens.min()) // FER_PIXELS  # every row has exactly 2304 tokens
    return values.reshape(len(rows), FER_PIXELS).astype(np.uint8), None


def _check_count(values: bytes, where: str) -> None:
    """Stop unless ``values`` (numbers joined by single spaces) holds one value per pixel."""
    count = values.count(b" ") + 1 if values else 0
    if count != FER_PIXELS:
        raise UserError(f"{where}: {count} pixel values, expected {FER_PIXELS} (48x48); fix or delete the row")


def _check_text(head: bytes, path: Path) -> None:
    """Stop on a file whose first bytes are not text, before its header is shown garbled."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode Text" export
        raise UserError(f"{path}: is UTF-16 text; save it again as a UTF-8 (or plain) CSV")
    if len(head.translate(None, _BINARY_BYTES)) < len(head):
        raise UserError(f"{path}: not a text CSV file (it looks binary); pass a FER2013 .csv or a dataset folder")


def _label(token: bytes, where: str) -> int:
    text = token.strip().strip(b'"').decode("utf-8", "replace")
    digits = match.group(1) if (match := _FLOAT_LABEL.fullmatch(text)) else text  # 2.5 and 7.0 fail below
    if digits.isdigit() and int(digits) < len(FER_TO_OURS):
        return int(FER_TO_OURS[int(digits)])
    index = class_index(text)
    if index is None:
        raise UserError(f"{where}: bad emotion {text!r}; expected 0-6 in FER2013's order or a class name")
    return index


def _usage(token: bytes, where: str) -> int:
    text = token.strip().strip(b'"').decode("utf-8", "replace")
    if text.casefold() not in _USAGE:
        raise UserError(f"{where}: bad Usage {text!r}; expected Training, PublicTest or PrivateTest")
    return _USAGE[text.casefold()]
