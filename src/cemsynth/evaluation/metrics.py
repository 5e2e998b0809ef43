"""Pixel metrics: MAE, PSNR, SSIM, MS-SSIM, inside a mask or over the whole image.

Inputs are 2-D float arrays of one shape on a stated intensity scale with a known
``data_range`` (2.0 for the windowed [-1, 1] scale, 255 for 8-bit). Accumulations are float64.

SSIM follows Wang et al. (2004): Gaussian window (sigma 1.5, truncated at 3.5 sigma: 11 x 11),
K1 = 0.01, K2 = 0.03, population covariances, reflecting borders. The whole-image value is the
mean SSIM map without the window's half-width at the border (as scikit-image does); the
masked value is the mean of the map over the mask's pixels. MS-SSIM (Wang, Simoncelli and
Bovik 2003): contrast-structure at each scale, full SSIM at the coarsest, 2 x 2 average
pooling between scales.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from cemsynth.evaluation.config import MS_SSIM_WEIGHTS
from cemsynth.imaging import BoolArray, FloatArray

K1 = 0.01
K2 = 0.03
TRUNCATE = 3.5
EIGHT_BIT_RANGE = 255.0
WINDOWED_RANGE = 2.0

Float64Array = npt.NDArray[np.float64]


def _check(first: npt.NDArray[np.floating], second: npt.NDArray[np.floating]) -> None:
    if first.shape != second.shape or first.ndim != 2:
        raise ValueError(f"need two 2-D arrays of one shape, got {first.shape}, {second.shape}")


def _select(
    first: npt.NDArray[np.floating], second: npt.NDArray[np.floating], mask: BoolArray | None
) -> tuple[Float64Array, Float64Array]:
    _check(first, second)
    a = np.asarray(first, dtype=np.float64)
    b = np.asarray(second, dtype=np.float64)
    if mask is None:
        return a.ravel(), b.ravel()
    if mask.shape != a.shape:
        raise ValueError(f"mask of shape {mask.shape} does not match images {a.shape}")
    return a[mask], b[mask]


def mae(
    first: npt.NDArray[np.floating], second: npt.NDArray[np.floating], mask: BoolArray | None = None
) -> float:
    """Mean absolute difference (same units as the images); NaN for an empty mask."""
    a, b = _select(first, second, mask)
    return float(np.mean(np.abs(a - b))) if a.size else math.nan


def psnr(
    reference: npt.NDArray[np.floating],
    test: npt.NDArray[np.floating],
    data_range: float,
    mask: BoolArray | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``; inf when equal."""
    a, b = _select(reference, test, mask)
    if not a.size:
        return math.nan
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(data_range**2 / mse)


def ssim_maps(
    first: npt.NDArray[np.floating],
    second: npt.NDArray[np.floating],
    data_range: float,
    sigma: float = 1.5,
) -> tuple[Float64Array, Float64Array]:
    """SSIM map and contrast-structure map, float64 of the input shape.

    ``ssim = l * cs`` with ``l = (2 ux uy + C1) / (ux^2 + uy^2 + C1)`` and
    ``cs = (2 sxy + C2) / (sx^2 + sy^2 + C2)``, local statistics from a Gaussian window.
    """
    _check(first, second)
    # float32 filtering (as scikit-image does for float32 input): twice as fast, and the
    # local variances of [-1, 1] or 0-255 images keep ample precision
    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)

    def blur(x: npt.NDArray[np.float32]) -> Float64Array:
        return np.asarray(
            ndimage.gaussian_filter(x, sigma=sigma, truncate=TRUNCATE, mode="reflect"),
            dtype=np.float64,
        )

    ux, uy = blur(a), blur(b)
    vx = blur(a * a) - ux * ux
    vy = blur(b * b) - uy * uy
    vxy = blur(a * b) - ux * uy
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    luminance = (2.0 * ux * uy + c1) / (ux * ux + uy * uy + c1)
    contrast_structure = (2.0 * vxy + c2) / (vx + vy + c2)
    return luminance * contrast_structure, contrast_structure


def window_half_width(sigma: float) -> int:
    """Half-width of the Gaussian SSIM window in pixels (5 for sigma 1.5)."""
    return int(TRUNCATE * sigma + 0.5)


def _interior_mean(values: Float64Array, pad: int) -> float:
    inner = values[pad : values.shape[0] - pad, pad : values.shape[1] - pad]
    return float(inner.mean()) if inner.size else math.nan


def ssim(
    first: npt.NDArray[np.floating],
    second: npt.NDArray[np.floating],
    data_range: float,
    mask: BoolArray | None = None,
    sigma: float = 1.5,
) -> float:
    """Mean SSIM: over ``mask`` if given, else over the image less the window's half-width.

    Equal to ``skimage.metrics.structural_similarity(a, b, data_range=..., gaussian_weights
    =True, sigma=sigma, use_sample_covariance=False)`` without a mask.
    """
    return ssim_pair(first, second, data_range, mask, sigma)[0 if mask is not None else 1]


def ssim_pair(
    first: npt.NDArray[np.floating],
    second: npt.NDArray[np.floating],
    data_range: float,
    mask: BoolArray | None,
    sigma: float = 1.5,
) -> tuple[float, float]:
    """``(SSIM inside mask, whole-image SSIM)`` from one SSIM map (NaN where undefined)."""
    if min(first.shape) < 2 * window_half_width(sigma) + 1:
        return math.nan, math.nan
    ssim_map, _ = ssim_maps(first, second, data_range, sigma)
    whole = _interior_mean(ssim_map, window_half_width(sigma))
    if mask is None or not mask.any():
        return math.nan, whole
    return float(ssim_map[mask].mean()), whole


def ms_ssim_min_side(sigma: float, scales: int) -> int:
    """Smallest image side for which the coarsest of ``scales`` still holds a window."""
    return (2 * window_half_width(sigma)) * 2 ** (scales - 1) + 1


def ms_ssim(
    first: npt.NDArray[np.floating],
    second: npt.NDArray[np.floating],
    data_range: float,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    sigma: float = 1.5,
) -> float:
    """Multi-scale SSIM of the whole images; NaN when they are too small for all scales.

    ``prod_j mean(cs_j)^w_j`` for the finer scales times ``mean(ssim_M)^w_M`` at the coarsest;
    negative means are clipped to 0 (as common implementations do) so the power is defined.
    """
    _check(first, second)
    if min(first.shape) < ms_ssim_min_side(sigma, len(weights)):
        return math.nan
    a = np.asarray(first, dtype=np.float32)
    b = np.asarray(second, dtype=np.float32)
    pad = window_half_width(sigma)
    result = 1.0
    for index, weight in enumerate(weights):
        ssim_map, cs_map = ssim_maps(a, b, data_range, sigma)
        last = index == len(weights) - 1
        value = _interior_mean(ssim_map if last else cs_map, pad)
        result *= max(value, 0.0) ** weight
        if not last:
            a, b = _pool2(a), _pool2(b)
    return float(result)


def _pool2(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    rows, cols = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    trimmed = x[:rows, :cols]
    return np.asarray(trimmed.reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3)), np.float32)


def to_uint8_minmax(image: npt.NDArray[np.floating]) -> npt.NDArray[np.uint8]:
    """The common 8-bit convention: min-max scale the whole image to 0-255, round to uint8.

    A constant image becomes all zeros.
    """
    values = np.asarray(image, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (values - low) * (255.0 / (high - low))
    return np.asarray(np.clip(np.rint(scaled), 0, 255), dtype=np.uint8)


def bin_image(image: FloatArray, factor: int) -> FloatArray:
    """Average ``factor x factor`` blocks (trailing rows/cols that do not fill one are dropped)."""
    if factor == 1:
        return image
    rows, cols = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    blocks = (
        image[:rows, :cols]
        .astype(np.float64)
        .reshape(rows // factor, factor, cols // factor, factor)
    )
    return np.asarray(blocks.mean(axis=(1, 3)), dtype=np.float32)


def bin_mask(mask: BoolArray, factor: int) -> BoolArray:
    """A block is inside the mask when at least half of its pixels are."""
    if factor == 1:
        return mask
    return np.asarray(bin_image(mask.astype(np.float32), factor) >= 0.5)
