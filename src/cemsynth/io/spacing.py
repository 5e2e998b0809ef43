"""Pixel spacing shared by the readers: the user's value, the documented fallback, validation.

Spacing is ``(row spacing, column spacing)`` in millimetres. The fallback for files that carry no
spacing (and no user value) lives here and nowhere else.
"""

from __future__ import annotations

import math

from cemsynth.errors import ConfigError

FALLBACK_PIXEL_SPACING_MM = 0.1
FALLBACK_SPACING_SOURCE = "fallback-0.1mm"
USER_SPACING_SOURCE = "user"


def validate_spacing(spacing_mm: tuple[float, float]) -> tuple[float, float]:
    """Return ``spacing_mm`` as two floats; raise ConfigError unless both are finite and > 0."""
    if len(spacing_mm) != 2:
        raise ConfigError(f"pixel spacing needs two values (row, col) in mm, got {spacing_mm!r}")
    row, col = float(spacing_mm[0]), float(spacing_mm[1])
    if not (math.isfinite(row) and math.isfinite(col) and row > 0 and col > 0):
        raise ConfigError(f"pixel spacing must be positive and finite, got {spacing_mm!r} mm")
    return (row, col)


def spacing_without_tags(
    user_spacing_mm: tuple[float, float] | None,
) -> tuple[tuple[float, float], str]:
    """Spacing for a file that carries none: the user's value, else the 0.1 mm fallback.

    Returns ``((row_mm, col_mm), spacing_source)`` with source ``"user"`` or ``"fallback-0.1mm"``.
    """
    if user_spacing_mm is not None:
        return validate_spacing(user_spacing_mm), USER_SPACING_SOURCE
    return (FALLBACK_PIXEL_SPACING_MM, FALLBACK_PIXEL_SPACING_MM), FALLBACK_SPACING_SOURCE
