"""Intensity window: clip stored values to [low, high] and map them linearly to [-1, 1].

``low`` maps to -1, ``high`` to +1, the midpoint to 0. The inverse maps [-1, 1] back to
stored units; values the window clipped cannot be recovered (they come back as low/high).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cemsynth.imaging import FloatArray


@dataclass(frozen=True)
class WindowRecord:
    """The window that was applied, in stored units: ``low`` -> -1, ``high`` -> +1."""

    low: float
    high: float

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"window needs low < high, got [{self.low}, {self.high}]")

    def to_list(self) -> list[float]:
        return [self.low, self.high]

    @classmethod
    def from_list(cls, values: Any) -> WindowRecord:
        low, high = (float(v) for v in values)
        return cls(low, high)


def window(array: FloatArray, low: float, high: float) -> tuple[FloatArray, WindowRecord]:
    """Clip stored values to ``[low, high]`` and scale to [-1, 1].

    Args:
        array: any shape, stored units.
        low, high: the window in stored units (``low < high``).

    Returns:
        float32 array of the same shape in [-1, 1], and the record for :func:`unwindow`.
    """
    record = WindowRecord(float(low), float(high))
    scale = np.float32(2.0 / (record.high - record.low))
    out = np.clip(array, np.float32(record.low), np.float32(record.high)).astype(np.float32)
    out -= np.float32(record.low)
    out *= scale
    out -= np.float32(1.0)
    return out, record


def unwindow(array: FloatArray, record: WindowRecord) -> FloatArray:
    """Map values in [-1, 1] back to stored units (inputs outside [-1, 1] are clipped first).

    Returns a float32 array of the same shape with values in ``[record.low, record.high]``.
    """
    half_width = np.float32((record.high - record.low) / 2.0)
    out = np.clip(array, np.float32(-1.0), np.float32(1.0)).astype(np.float32)
    out += np.float32(1.0)
    out *= half_width
    out += np.float32(record.low)
    return out
