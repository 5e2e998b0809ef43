"""Resampling between the original pixel grid and the coarser cached (training) grid.

Both grids cover the same field: output pixel ``i`` (of ``n_out``) has its centre at input
coordinate ``(i + 0.5) * n_in / n_out - 0.5`` (pixel-area alignment, "align_corners=False").
The same rule with the shapes swapped is the exact inverse mapping, so a cached-grid result
goes back to the original grid with :func:`resample_bilinear` and the recorded input shape.

Images use separable bilinear interpolation (linear extrapolation over the half output pixel
beyond the outermost input centres, which only upsampling reaches);
masks use nearest neighbour (the input pixel containing the output centre), so they stay
binary. Anti-aliasing: off by default to match the paper's bilinear (MONAI) resampling; with
``anti_alias=True`` a Gaussian prefilter (sigma = (scale - 1) / 2 input pixels per axis, as
in scikit-image) removes frequencies the coarse grid cannot hold, which also lowers the noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from cemsynth.imaging import BoolArray, FloatArray


@dataclass(frozen=True)
class ResampleRecord:
    """Shapes and spacings (mm, (row, col)) of both grids; enough to map back exactly."""

    in_shape: tuple[int, int]
    out_shape: tuple[int, int]
    in_spacing_mm: tuple[float, float]
    out_spacing_mm: tuple[float, float]

    @property
    def scale(self) -> tuple[float, float]:
        """Input pixels per output pixel along (rows, cols); 4.0 for a downsampling by four."""
        return (
            self.in_shape[0] / self.out_shape[0],
            self.in_shape[1] / self.out_shape[1],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape),
            "out_shape": list(self.out_shape),
            "in_spacing_mm": list(self.in_spacing_mm),
            "out_spacing_mm": list(self.out_spacing_mm),
            "scale": list(self.scale),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResampleRecord:
        def pair(key: str, kind: type) -> Any:
            first, second = data[key]
            return (kind(first), kind(second))

        return cls(
            in_shape=pair("in_shape", int),
            out_shape=pair("out_shape", int),
            in_spacing_mm=pair("in_spacing_mm", float),
            out_spacing_mm=pair("out_spacing_mm", float),
        )


def plan_resample(
    in_shape: tuple[int, int],
    in_spacing_mm: tuple[float, float],
    downsample_factor: float | None,
    target_spacing_mm: float | None,
) -> ResampleRecord:
    """Decide the cached-grid shape for an input grid.

    Exactly one of ``downsample_factor`` / ``target_spacing_mm`` is given. Output sizes are
    ``round(n_in * in_spacing / target_spacing)`` (halves up, at least 1); the recorded
    output spacing is the exact one that results, ``in_spacing * n_in / n_out``.
    """
    if (downsample_factor is None) == (target_spacing_mm is None):
        raise ValueError("give exactly one of downsample_factor and target_spacing_mm")
    out: list[int] = []
    for n_in, spacing in zip(in_shape, in_spacing_mm, strict=True):
        if spacing <= 0:
            raise ValueError(f"pixel spacing must be positive, got {in_spacing_mm}")
        if downsample_factor is not None:
            factor = downsample_factor
        else:
            assert target_spacing_mm is not None
            # round away float noise: 0.4 / 0.1 is 4.000000000000001, which must act as 4
            factor = round(target_spacing_mm / spacing, 9)
        out.append(max(1, math.floor(n_in / factor + 0.5)))  # halves round up
    out_shape = (out[0], out[1])
    out_spacing = (
        in_spacing_mm[0] * in_shape[0] / out_shape[0],
        in_spacing_mm[1] * in_shape[1] / out_shape[1],
    )
    return ResampleRecord(
        in_shape=(int(in_shape[0]), int(in_shape[1])),
        out_shape=out_shape,
        in_spacing_mm=(float(in_spacing_mm[0]), float(in_spacing_mm[1])),
        out_spacing_mm=out_spacing,
    )


def _linear_weights(
    n_in: int, n_out: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], FloatArray]:
    """Neighbour indices and the weight of the upper one for 1-D linear interpolation.

    Output centres that fall outside the outermost input centres (up to half an output
    pixel when upsampling) are extrapolated linearly from the two edge samples, so linear
    intensity ramps survive a down-and-up cycle exactly, edges included.
    """
    coords = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    if n_in == 1:
        zeros = np.zeros(n_out, dtype=np.intp)
        return zeros, zeros, np.zeros(n_out, dtype=np.float32)
    lower = np.clip(np.floor(coords), 0, n_in - 2).astype(np.intp)
    upper = lower + 1
    weight = (coords - lower).astype(np.float32)
    return lower, upper, weight


def _linear_axis(array: FloatArray, n_out: int, axis: int) -> FloatArray:
    n_in = array.shape[axis]
    if n_in == n_out:
        return array
    lower, upper, weight = _linear_weights(n_in, n_out)
    w_shape = (-1, 1) if axis == 0 else (1, -1)
    w = weight.reshape(w_shape)
    low_values = np.take(array, lower, axis=axis)
    high_values = np.take(array, upper, axis=axis)
    # low + w * (high - low), in place to keep peak memory at two output-sized arrays
    high_values -= low_values
    high_values *= w
    low_values += high_values
    return low_values


def resample_bilinear(
    array: FloatArray, out_shape: tuple[int, int], anti_alias: bool = False
) -> FloatArray:
    """Bilinear resampling of a 2-D float image to ``out_shape`` (same field of view).

    Args:
        array: float32 ``(rows, cols)``, any intensity domain.
        out_shape: ``(rows, cols)`` of the result.
        anti_alias: Gaussian prefilter along each axis that is downsampled.

    Returns:
        float32 ``out_shape`` array in the input's intensity domain.
    """
    data = np.asarray(array, dtype=np.float32)
    if anti_alias:
        sigma = [
            max(0.0, (n_in / n_out - 1.0) / 2.0)
            for n_in, n_out in zip(data.shape, out_shape, strict=True)
        ]
        if any(s > 0 for s in sigma):
            data = ndimage.gaussian_filter(data, sigma=sigma, mode="nearest").astype(np.float32)
    # Shrink along the axis that shrinks most first: the second pass then has less to do.
    ratio_rows = out_shape[0] / data.shape[0]
    ratio_cols = out_shape[1] / data.shape[1]
    if ratio_rows <= ratio_cols:
        out = _linear_axis(data, out_shape[0], axis=0)
        out = _linear_axis(out, out_shape[1], axis=1)
    else:
        out = _linear_axis(data, out_shape[1], axis=1)
        out = _linear_axis(out, out_shape[0], axis=0)
    if out is array:  # same shape both ways: still return a new array
        out = out.copy()
    return np.ascontiguousarray(out, dtype=np.float32)


def _nearest_indices(n_in: int, n_out: int) -> npt.NDArray[np.intp]:
    centres = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out)
    return np.minimum(np.floor(centres).astype(np.intp), n_in - 1)


def resample_nearest(mask: BoolArray, out_shape: tuple[int, int]) -> BoolArray:
    """Nearest-neighbour resampling of a 2-D bool mask to ``out_shape``; the result is bool."""
    rows = _nearest_indices(mask.shape[0], out_shape[0])
    cols = _nearest_indices(mask.shape[1], out_shape[1])
    return np.ascontiguousarray(mask[np.ix_(rows, cols)], dtype=np.bool_)


def resample_inverse(array: FloatArray, record: ResampleRecord) -> FloatArray:
    """Map a cached-grid float32 image (``record.out_shape``) back to ``record.in_shape``."""
    if array.shape != record.out_shape:
        raise ValueError(f"expected an array of shape {record.out_shape}, got {array.shape}")
    return resample_bilinear(array, record.in_shape, anti_alias=False)
