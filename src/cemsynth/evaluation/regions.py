"""Region measurements: tissue CNR, the halo index, lesion contrast and enhancing blobs.

Images are 2-D float arrays on one intensity scale (the evaluation uses the windowed [-1, 1]
scale; CNR does not depend on it, the halo index and blob threshold do). Masks are bool of the
image's shape; spacings are (row, col) in mm. Statistics are float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from cemsynth.imaging import BoolArray

#: Fewest pixels a tissue region needs for a mean and a standard deviation to mean anything.
MIN_REGION_PIXELS = 20

AnyFloat = npt.NDArray[np.floating]


@dataclass(frozen=True)
class TissueContrast:
    """Fibroglandular (f) vs adipose (a) contrast of one image.

    ``cnr_signed = (mean_f - mean_a) / (std_a + std_f)``; ``cnr_abs`` is its magnitude, the
    paper's formula. Means and SDs are in the image's units; SDs are population SDs.
    """

    cnr_signed: float
    cnr_abs: float
    mean_fgt: float
    mean_adipose: float
    std_fgt: float
    std_adipose: float


def tissue_contrast(image: AnyFloat, fgt: BoolArray, adipose: BoolArray) -> TissueContrast | None:
    """CNR of fibroglandular vs adipose pixels; None when either region is too small.

    A zero denominator (both regions flat) gives a NaN CNR, not an infinite one.
    """
    if int(fgt.sum()) < MIN_REGION_PIXELS or int(adipose.sum()) < MIN_REGION_PIXELS:
        return None
    f = np.asarray(image[fgt], dtype=np.float64)
    a = np.asarray(image[adipose], dtype=np.float64)
    mean_f, mean_a = float(f.mean()), float(a.mean())
    std_f, std_a = float(f.std()), float(a.std())
    denominator = std_a + std_f
    signed = (mean_f - mean_a) / denominator if denominator > 0 else math.nan
    return TissueContrast(signed, abs(signed), mean_f, mean_a, std_f, std_a)


def distance_to_skin_mm(
    breast: BoolArray, spacing_mm: tuple[float, float], reach_mm: float
) -> npt.NDArray[np.float32]:
    """Distance (mm) of every breast pixel to the skin line; 0 outside the breast.

    The image border is not skin: the chest wall (and an MLO's axillary tail) leave the field
    there. The mask is padded by replicating its edge over ``reach_mm`` so that distances up to
    ``reach_mm`` are measured to the skin line only.
    """
    pad = math.ceil(reach_mm / min(spacing_mm)) + 1
    padded = np.pad(breast, pad, mode="edge")
    distance = ndimage.distance_transform_edt(padded, sampling=spacing_mm)
    return np.asarray(distance[pad:-pad, pad:-pad], dtype=np.float32)


def halo_index(
    image: AnyFloat,
    skin_distance_mm: npt.NDArray[np.float32],
    band_mm: tuple[float, float],
    inner_mm: float,
    adipose: BoolArray | None = None,
) -> float:
    """Mean of the peripheral band minus the mean of the inner breast (image units).

    Band: pixels ``band_mm[0] < d < band_mm[1]`` from the skin line; inner: ``d > inner_mm``.
    With an adipose mask only fat pixels count (fat carries no BPE, so the difference isolates
    the thickness/scatter artifact); without, all breast pixels. NaN if either part is empty.
    """
    band = (skin_distance_mm > band_mm[0]) & (skin_distance_mm < band_mm[1])
    inner = skin_distance_mm > inner_mm
    if adipose is not None:
        band &= adipose
        inner &= adipose
    if int(band.sum()) < MIN_REGION_PIXELS or int(inner.sum()) < MIN_REGION_PIXELS:
        return math.nan
    return float(np.mean(image[band], dtype=np.float64) - np.mean(image[inner], dtype=np.float64))


def lesion_ring(
    lesion: BoolArray,
    breast: BoolArray,
    spacing_mm: tuple[float, float],
    ring_mm: tuple[float, float],
) -> BoolArray:
    """Breast pixels between ``ring_mm[0]`` and ``ring_mm[1]`` mm from the lesion."""
    distance = ndimage.distance_transform_edt(~lesion, sampling=spacing_mm)
    return np.asarray((distance > ring_mm[0]) & (distance <= ring_mm[1]) & breast & ~lesion)


def lesion_contrast(image: AnyFloat, lesion: BoolArray, ring: BoolArray) -> float:
    """Signed lesion-to-background CNR: ``(mean_L - mean_B) / (std_L + std_B)``.

    Same normalisation as the tissue CNR; NaN when a region is too small or both are flat.
    """
    if int(lesion.sum()) < 1 or int(ring.sum()) < MIN_REGION_PIXELS:
        return math.nan
    inside = np.asarray(image[lesion], dtype=np.float64)
    around = np.asarray(image[ring], dtype=np.float64)
    denominator = float(inside.std() + around.std())
    if denominator <= 0:
        return math.nan
    return float((inside.mean() - around.mean()) / denominator)


def _masked_blur(
    image: AnyFloat, region: BoolArray, sigma_px: tuple[float, float]
) -> npt.NDArray[np.float64]:
    """Gaussian blur that only averages pixels of ``region`` (normalised convolution)."""
    weights = region.astype(np.float64)
    blurred = ndimage.gaussian_filter(np.where(region, image, 0.0).astype(np.float64), sigma_px)
    norm = ndimage.gaussian_filter(weights, sigma_px)
    out = np.zeros(image.shape, dtype=np.float64)
    np.divide(blurred, norm, out=out, where=norm > 1e-6)
    return out


def count_blobs(
    image: AnyFloat,
    region: BoolArray,
    spacing_mm: tuple[float, float],
    smooth_mm: float,
    background_mm: float,
    threshold: float,
    diameter_mm: tuple[float, float],
) -> int:
    """Enhancing blobs: connected parts where the smoothed image exceeds its local background.

    The image is smoothed (Gaussian ``smooth_mm``) and its local background (Gaussian
    ``background_mm``) subtracted, both using only ``region`` pixels; 8-connected parts of
    ``residual > threshold`` inside ``region`` count when their equivalent diameter
    ``2 sqrt(area / pi)`` lies within ``diameter_mm`` (the size range of lesions).
    """
    if not region.any():
        return 0
    smooth = _masked_blur(image, region, (smooth_mm / spacing_mm[0], smooth_mm / spacing_mm[1]))
    background = _masked_blur(
        image, region, (background_mm / spacing_mm[0], background_mm / spacing_mm[1])
    )
    above = ((smooth - background) > threshold) & region
    labels, count = ndimage.label(above, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return 0
    areas_mm2 = np.bincount(labels.ravel())[1:] * (spacing_mm[0] * spacing_mm[1])
    diameters = 2.0 * np.sqrt(areas_mm2 / math.pi)
    return int(np.count_nonzero((diameters >= diameter_mm[0]) & (diameters <= diameter_mm[1])))
