"""Cropping to a bounding box, and putting a cropped array back (the inverse)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class BBox:
    """A half-open pixel box ``[row0, row1) x [col0, col1)`` on some 2-D grid."""

    row0: int
    row1: int
    col0: int
    col1: int

    def __post_init__(self) -> None:
        if not (0 <= self.row0 < self.row1 and 0 <= self.col0 < self.col1):
            raise ValueError(f"empty or negative bounding box {self}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def slices(self) -> tuple[slice, slice]:
        return (slice(self.row0, self.row1), slice(self.col0, self.col1))

    def to_list(self) -> list[int]:
        """``[row0, row1, col0, col1]`` (JSON form)."""
        return [self.row0, self.row1, self.col0, self.col1]

    @classmethod
    def from_list(cls, values: list[int] | tuple[int, ...]) -> BBox:
        row0, row1, col0, col1 = (int(v) for v in values)
        return cls(row0, row1, col0, col1)


def bounding_box(mask: npt.NDArray[np.bool_]) -> BBox | None:
    """The minimal box holding every True pixel of a 2-D bool array; None if there are none."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return BBox(int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)


@dataclass(frozen=True)
class CropRecord:
    """What :func:`uncrop` needs: the box and the shape of the grid it was cut from."""

    bbox: BBox
    original_shape: tuple[int, int]

    def to_dict(self) -> dict[str, Any]:
        return {"bbox": self.bbox.to_list(), "original_shape": list(self.original_shape)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CropRecord:
        rows, cols = (int(v) for v in data["original_shape"])
        return cls(bbox=BBox.from_list(data["bbox"]), original_shape=(rows, cols))


_A = TypeVar("_A", bound=np.generic)


def crop(array: npt.NDArray[_A], bbox: BBox) -> tuple[npt.NDArray[_A], CropRecord]:
    """Cut ``bbox`` out of a 2-D array (a copy, same dtype) and record how to put it back."""
    rows, cols = array.shape
    if bbox.row1 > rows or bbox.col1 > cols:
        raise ValueError(f"bounding box {bbox} does not fit an array of shape {array.shape}")
    return array[bbox.slices].copy(), CropRecord(bbox=bbox, original_shape=(rows, cols))


def uncrop(array: npt.NDArray[_A], record: CropRecord, fill: float | bool) -> npt.NDArray[_A]:
    """Place a cropped array back on its original grid; everything outside the box is ``fill``."""
    if array.shape != record.bbox.shape:
        raise ValueError(f"array of shape {array.shape} does not match box {record.bbox}")
    canvas = np.full(record.original_shape, fill, dtype=array.dtype)
    canvas[record.bbox.slices] = array
    return canvas
