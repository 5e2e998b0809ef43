"""The reader study's own table vocabulary: which image a reader saw.

The CSV machinery (reading rows, parsing cells, writing) is :mod:`cemsynth.io.tables`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from cemsynth.errors import InputFileError
from cemsynth.io.tables import Row

ImageType = Literal["clinical", "synthetic"]
IMAGE_TYPES: tuple[ImageType, ...] = ("clinical", "synthetic")


def parse_image_type(path: Path, row: Row, column: str = "image_type") -> ImageType:
    """'clinical' or 'synthetic' from ``column``."""
    value = row.get(column).lower()
    if value == "clinical":
        return "clinical"
    if value == "synthetic":
        return "synthetic"
    raise InputFileError(
        path, f"line {row.line}: {column} '{row.get(column)}' is not clinical or synthetic"
    )
