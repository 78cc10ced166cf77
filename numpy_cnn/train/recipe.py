"""Recipes as files: the settings that define a run, as TOML (``recipe.toml``, ``recipes/*.toml``).

Every run writes ``recipe.toml`` into its run directory, and ``--recipe FILE``
replays one; flags typed beside it override its settings one by one::

    python train_numpy.py --recipe recipes/fer.toml --data ~/fer2013 --out runs/fer
    python train_numpy.py --recipe runs/fer/recipe.toml --data ~/fer2013 --epochs 30   # the same, longer

A recipe holds every :class:`~numpy_cnn.train.config.TrainConfig` setting that
changes a run's result, keyed by the flag's name with underscores
(``lr_schedule = "onecycle"``, ``augment = false`` for ``--no-augment``). It is
data-independent: the data paths (``--data``, ``--test-data``), the split
files (``--split-dir``, ``--reuse-split``) and the starting weights
(``--init-from``) are given on the command line, as are the machine's things
(``--out``, ``--cache-dir``). A setting left out of a recipe keeps its
default, so a recipe may hold only what it changes (``recipes/fer.toml``).

The file is read with the standard library's :mod:`tomllib` and written by
the small writer below (strings, integers, floats, booleans and one inline
table; an unset setting, ``None``, is left out): a float is written with
``repr``, which reads back as the same float, so a run replayed from its
``recipe.toml`` has the very same settings.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path

from numpy_cnn.errors import UserError
from numpy_cnn.train.config import TrainConfig
from numpy_cnn.train.run_files import write_text

RECIPE_FILE = "recipe.toml"
# Settings a recipe leaves to the command line, and the flag that gives each.
NOT_IN_A_RECIPE = {"data": "--data", "test_data": "--test-data", "split_dir": "--split-dir",
                   "reuse_split": "--reuse-split", "init_from": "--init-from"}
RECIPE_FIELDS = tuple(f.name for f in fields(TrainConfig) if f.name not in NOT_IN_A_RECIPE)


def recipe_settings(config: TrainConfig) -> dict:
    """The settings of ``config`` a recipe holds, in the config's order; ``None`` left out, and
    SGD's ``momentum`` left out for another optimizer (it has no effect there)."""
    settings = {name: getattr(config, name) for name in RECIPE_FIELDS if getattr(config, name) is not None}
    if config.optimizer != "sgd":
        settings.pop("momentum", None)
    return settings


HEADER = """\
# numpy_cnn recipe: every setting that defines a training run (the data is not part of it).
# Replay it on any data, flags typed after it overriding its settings:
#   python train_numpy.py --recipe {name} --data PATH/TO/DATA
"""


def recipe_text(config: TrainConfig, header: str | None = None) -> str:
    """The TOML of :func:`recipe_settings`, one ``key = value`` per line, under a comment header."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in recipe_settings(config).items()]
    return (HEADER.format(name=RECIPE_FILE) if header is None else header) + "\n".join(lines) + "\n"


def write_recipe(path: Path, config: TrainConfig) -> None:
    """Write ``recipe.toml`` (atomically) for the run of ``config``."""
    write_text(path, recipe_text(config))


def read_recipe(path: Path | str) -> dict:
    """The settings of a recipe file, checked key by key: ``{setting: value}`` for ``given_settings``.

    Raises:
        UserError: one line naming the file and what is wrong: no such file, not TOML,
            a key that is no setting (or one a recipe leaves to the command line),
            or a value of the wrong type. Ranges are checked when the config is built.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"--recipe {path}: no such file; give a recipe .toml (see recipes/ in the repository)")
    try:
        with open(path, "rb") as f:
            values = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"--recipe {path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    except UnicodeDecodeError:
        raise UserError(f"--recipe {path}: not a text file in UTF-8; give a recipe .toml") from None
    return {key: _checked(path, key, value) for key, value in values.items()}


def _checked(path: Path, key: str, value: object) -> object:
    """One recipe value, of the type its setting takes (an integer is a float too)."""
    if key in NOT_IN_A_RECIPE:
        raise UserError(f"{path}: {key} is not part of a recipe (a recipe is data-independent); "
                        f"remove it and pass {NOT_IN_A_RECIPE[key]} on the command line")
    kinds = {f.name: str(f.type) for f in fields(TrainConfig)}
    if key not in kinds:
        raise UserError(f"{path}: unknown key {key!r}; a recipe's keys are the training flags with "
                        f"underscores ({', '.join(RECIPE_FIELDS)})")
    kind = kinds[key].split(" | ")[0]
    if kind == "dict":   # crop_faces: true (the detector's defaults), false (none) or a table of its settings
        if isinstance(value, bool):
            return value or None
        if isinstance(value, dict):
            return value
        raise UserError(f"{path}: {key} = {value!r} must be true, false or a table of detector settings")
    wanted = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,)}[kind]
    if isinstance(value, bool) != (kind == "bool") or not isinstance(value, wanted):
        what = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string in quotes"}
        raise UserError(f"{path}: {key} = {value!r} must be {what[kind]}")
    return float(value) if kind == "float" else value


def _toml_value(value: object) -> str:
    """A TOML literal: booleans, integers, floats (``repr``: they read back exactly), strings
    (JSON's escapes are TOML's), and a table of those written inline."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else f"{'-' if value < 0 else ''}inf")
    if isinstance(value, str):   # DEL is the one character JSON leaves raw and TOML refuses
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{key} = {_toml_value(v)}" for key, v in value.items()) + " }"
    raise TypeError(f"a recipe holds no {type(value).__name__} values ({value!r})")
