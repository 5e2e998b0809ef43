"""JSON files: one rule for turning values into JSON data, one atomic writer.

Every JSON file the project writes (summaries, reports, caches' records and index, splits,
``phantom.json``, ``reference.json``, the reader study's plan) goes through
:func:`write_json`, so they all follow the one rule of :func:`to_jsonable`:

- ``None``, ``bool``, ``int`` and ``str`` stay as they are;
- a finite ``float`` stays; NaN and +/-infinity become ``null`` (JSON has no NaN);
- a numpy scalar becomes its Python value, a numpy array a (nested) list, both then by this
  rule (so a NaN in an array becomes ``null`` too);
- a :class:`pathlib.PurePath` becomes its text;
- a dataclass instance becomes a dict of its fields;
- a mapping becomes a dict with text keys (``str(key)`` for keys that are not text already);
  a list or tuple becomes a list;
- anything else is a bug in the caller: :class:`TypeError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from cemsynth.io.atomic import write_text_atomic


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data (dict, list, str, int, float, bool, None) by the module's rule.

    Raises :class:`TypeError` naming the type for a value the rule does not cover.
    """
    if isinstance(value, np.generic):
        value = value.item()  # then by the rule below: np.float64('nan') -> None
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            field.name: to_jsonable(getattr(value, field.name))
            for field in dataclasses.fields(value)
        }
    if isinstance(value, Mapping):
        return {
            (key if isinstance(key, str) else str(key)): to_jsonable(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    raise TypeError(f"a {type(value).__name__} value cannot be written as JSON")


def json_text(data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
    """``data`` (by :func:`to_jsonable`) as JSON text ending in a newline.

    ``indent``: spaces per nesting level (None: one line); ``sort_keys``: keys in sorted order.
    """
    return json.dumps(to_jsonable(data), indent=indent, sort_keys=sort_keys, allow_nan=False) + "\n"


def write_json(
    path: Path | str, data: Any, *, indent: int | None = 2, sort_keys: bool = False
) -> None:
    """Write ``data`` as a JSON file atomically (see :func:`json_text` for the options).

    Raises :class:`TypeError` naming ``path`` if ``data`` holds a value the rule does not
    cover (a bug, so no one-line user error); nothing is written then.
    """
    try:
        text = json_text(data, indent=indent, sort_keys=sort_keys)
    except TypeError as exc:
        raise TypeError(f"{path}: {exc}") from exc
    write_text_atomic(path, text)
