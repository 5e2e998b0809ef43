"""The resource budget: how large an image any stage decodes or resamples to, which spacings
are plausible, checked from the header before any pixel is decoded.

A small file can declare a huge image (a deflated DICOM of 2 GB of zeros is 2 MB; a 30000²
TIFF of one colour under 1 MB), and an implausible spacing can make resampling blow an image
up a hundredfold. Every reader checks the declared size against :func:`max_image_pixels`, and
preprocessing checks the size after resampling, so no input can make a stage hold more than a
bounded number of pixels; Pillow's own decompression-bomb limit is set to the same number.

The one setting: ``CEMSYNTH_MAX_IMAGE_PIXELS`` (environment), default
:data:`DEFAULT_MAX_IMAGE_PIXELS`, 64 million pixels: twice a full-field 0.05 mm detector
(24 x 30 cm, 4800 x 6000). At float32 that is 256 MB per image array.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from cemsynth.errors import ConfigError, InputFileError

DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
MAX_PIXELS_VARIABLE = "CEMSYNTH_MAX_IMAGE_PIXELS"
SPACING_RANGE_MM = (0.02, 1.5)
"""Plausible pixel spacing of a mammogram in mm: from fine detectors (0.05) and magnification
views, to exports downsampled several times; outside it the tag is wrong."""


def max_image_pixels() -> int:
    """The budget: ``CEMSYNTH_MAX_IMAGE_PIXELS`` if set (a positive integer), else the default."""
    text = os.environ.get(MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{MAX_PIXELS_VARIABLE} must be a positive integer, got {text!r}")
    return value


def check_image_size(path: Path | str, rows: int, cols: int, what: str = "declares") -> None:
    """Raise InputFileError (one line) unless a ``rows`` x ``cols`` image fits the budget."""
    budget = max_image_pixels()
    if rows < 1 or cols < 1:
        raise InputFileError(path, f"{what} an empty image ({rows} x {cols})")
    if rows * cols > budget:
        raise InputFileError(
            path,
            f"{what} {rows} x {cols} pixels, more than the budget of {budget:,} "
            f"({MAX_PIXELS_VARIABLE}); not decoded",
        )


def check_spacing(path: Path | str, spacing_mm: tuple[float, float], source: str) -> None:
    """Raise InputFileError unless both spacings lie in :data:`SPACING_RANGE_MM`."""
    low, high = SPACING_RANGE_MM
    if not all(math.isfinite(v) and low <= v <= high for v in spacing_mm):
        raise InputFileError(
            path,
            f"{source} {spacing_mm[0]:g} x {spacing_mm[1]:g} mm is not a plausible mammogram "
            f"pixel spacing ({low:g}-{high:g} mm); give the right value (manifest "
            "pixel_spacing_mm) or fix the tag",
        )
