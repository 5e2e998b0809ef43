"""Periodic artifacts of patch-based synthesis: window seams and the transposed-conv checkerboard.

Both artifacts sit on a fixed grid of the model's pixels:

- **window seams**: a sliding window with stride ``s`` stitches windows whose borders disagree
  (edge effects, per-window normalisation); the image steps on the lines where windows start
  and end, a fixed phase of ``s`` along rows and columns;
- **checkerboard**: a stride-2 transposed convolution gives neighbouring output pixels
  different kernel taps; two of them in a row repeat with period 4 (frequencies 1/4 and 1/2).

**The periodic index** (:func:`periodic_artifact_index`) measures a pattern that repeats in
value with a known period, in the spectrum: the image inside the (eroded) breast is high-passed
(minus its Gaussian-smoothed self, sigma half the period, which keeps the fundamental), set to
0 outside the breast, and Fourier transformed along each row and each column; the squared
magnitudes are averaged into one 1-D power spectrum per axis and the two are added. For each
harmonic ``k / period`` the power at its frequency bin is compared with what the nearby bins
predict there (a log-linear fit, ``+- guard`` bins left out); the index is the sum of the
harmonic powers over the sum of their expected values.

**Checkerboard index**: the periodic index of the image at period 4. **Seam index**: a seam's
steps change sign and size from window to window, so the image values do not repeat, but
the squared steps do; the periodic index of the squared differences of neighbouring pixels,
along each axis, at each stride.

Anatomy, noise and blur have smooth spectra, so an image without the
artifact scores about 1 on both, whatever its noise level or content; the artifact raises its
index. Both are phase-free (they need not know where the window grid started). Periods are
given on the model's grid and converted to the scored image's grid (``scale``: scored pixels
per model pixel), so they fall where the artifact is after the inverse resampling.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from cemsynth.imaging import BoolArray

AnyFloat = npt.NDArray[np.floating]

#: Sliding-window strides (model-grid pixels) whose seams the seam index looks for: the
#: paper's 16, the demo's 32, and half the window; each is scored and the largest reported.
SEAM_PERIODS_PX = (16, 32, 64)
#: Two stride-2 transposed convolutions in a row repeat with period 4 (1/4 and 1/2 cycles/px).
CHECKERBOARD_PERIOD_PX = 4
#: Fewest pixels in the scored region for a spectrum worth the name.
MIN_PIXELS = 4096


def _axis_spectrum(residual: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float64]:
    """Mean power spectrum of the 1-D FFTs along ``axis`` (rfft bins, cycles/px = bin / n)."""
    spectrum = np.abs(np.fft.rfft(residual, axis=axis)) ** 2
    return np.asarray(spectrum.mean(axis=1 - axis), dtype=np.float64)


def _harmonic_ratio(
    spectrum: npt.NDArray[np.float64],
    n: int,
    period: float,
    guard: int,
    reach: int,
    skip_period: float | None,
) -> tuple[float, float]:
    """(sum of harmonic powers, sum of their expected powers) along one axis.

    The expected power at a harmonic's bin is a straight line fitted to log power over the
    nearby bins (``guard`` < distance <= ``reach``), evaluated at the bin: unbiased on a
    sloping spectrum, and usable at the Nyquist bin, which has neighbours on one side only.
    Harmonics that are also harmonics of ``skip_period`` are left out (another artifact's).
    """
    power, expected = 0.0, 0.0
    last = spectrum.size - 1
    for k in range(1, int(period // 2) + 1):
        frequency = k / period
        if skip_period is not None:
            multiple = frequency * skip_period
            if abs(multiple - round(multiple)) * n / skip_period < 0.5 and round(multiple) > 0:
                continue
        centre = round(frequency * n)
        if centre < guard + 2 or centre > last:
            continue  # too close to DC: anatomy, not stitching
        near = np.array(
            [
                b
                for b in range(centre - reach, centre + reach + 1)
                if 0 < b <= last and abs(b - centre) > guard
            ]
        )
        if near.size < 3:
            continue
        logs = np.log(np.maximum(spectrum[near], 1e-300))
        slope, intercept = np.polyfit(near.astype(np.float64), logs, 1)
        power += float(spectrum[centre])
        expected += float(np.exp(intercept + slope * centre))
    return power, expected


def periodic_artifact_index(
    image: AnyFloat,
    region: BoolArray,
    period_px: float,
    erode_px: int = 8,
    skip_period_px: float | None = None,
    axes: tuple[int, ...] = (0, 1),
) -> float:
    """Power at the harmonics of ``period_px`` over the power around them (about 1: none).

    Args:
        image: 2-D float image on any intensity scale (the index is a ratio of powers).
        region: bool mask of the pixels to score (the breast), same shape.
        period_px: artifact period in pixels of ``image`` (may be fractional); at least 2.
        erode_px: pixels taken off the region's border first (skin line, window edges).
        skip_period_px: leave out the harmonics shared with this period (the seam index
            skips the checkerboard's, so that one artifact does not score as the other).
        axes: the axes along which the pattern repeats (spectra of both are added).

    Returns:
        The index (float, >= 0), or NaN when the region is too small or no harmonic can be
        scored (period longer than a quarter of the region).
    """
    if period_px < 2:
        raise ValueError(f"period_px must be at least 2, got {period_px}")
    inner = ndimage.binary_erosion(region, iterations=erode_px) if erode_px > 0 else region
    if int(inner.sum()) < MIN_PIXELS:
        return math.nan
    rows = np.flatnonzero(inner.any(axis=1))
    cols = np.flatnonzero(inner.any(axis=0))
    box = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    values = np.asarray(image[box], dtype=np.float64)
    mask = inner[box]
    # high-pass inside the region only (normalised convolution), so the region's edge does not
    # ring through the spectrum
    sigma = max(period_px / 2.0, 1.0)
    weights = ndimage.gaussian_filter(mask.astype(np.float64), sigma)
    smooth = ndimage.gaussian_filter(np.where(mask, values, 0.0), sigma)
    local = np.divide(smooth, weights, out=np.zeros_like(smooth), where=weights > 1e-6)
    residual = np.where(mask, values - local, 0.0)
    if max(residual.shape[axis] for axis in axes) < 4 * period_px:
        return math.nan
    power, reference = 0.0, 0.0
    for axis in axes:
        n = residual.shape[axis]
        spectrum = _axis_spectrum(residual, axis)
        # a neighbourhood of a quarter period's worth of bins, at least 4 on each side
        reach = max(4, round(n / period_px / 4))
        guard = max(1, reach // 4)
        p, r = _harmonic_ratio(spectrum, n, period_px, guard, reach, skip_period_px)
        power += p
        reference += r
    if reference <= 0:
        return math.nan
    return power / reference


def seam_index(image: AnyFloat, region: BoolArray, scale: float = 1.0, erode_px: int = 8) -> float:
    """Window seams: steps of the image that repeat on the window grid.

    Seams are steps between neighbouring pixels on the lines where windows start or end, a
    fixed phase of the stride. Their sign and size vary from window to window, so the image
    values need not repeat, but the squared steps do: for each axis the map of squared
    differences of neighbouring pixels is scored with :func:`periodic_artifact_index` along
    that axis, at each stride of :data:`SEAM_PERIODS_PX` (times ``scale``), leaving out the
    checkerboard's harmonics (multiples of 1/4 cycle per model pixel: the checkerboard
    index's to report). The index is the largest of these; about 1 without seams.
    """
    inner = ndimage.binary_erosion(region, iterations=erode_px) if erode_px > 0 else region
    values = np.asarray(image, dtype=np.float64)
    scores = []
    for axis in (0, 1):
        steps = np.diff(values, axis=axis) ** 2
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        valid = inner[tuple(first)] & inner[tuple(second)]
        for period in SEAM_PERIODS_PX:
            scores.append(
                periodic_artifact_index(
                    steps,
                    valid,
                    period * scale,
                    erode_px=0,
                    skip_period_px=CHECKERBOARD_PERIOD_PX * scale,
                    axes=(axis,),
                )
            )
    finite = [s for s in scores if math.isfinite(s)]
    return max(finite) if finite else math.nan


def checkerboard_index(image: AnyFloat, region: BoolArray, scale: float = 1.0) -> float:
    """Spectral periodic index (:func:`periodic_artifact_index`) at
    :data:`CHECKERBOARD_PERIOD_PX` (model grid, times ``scale``).

    On a grid finer than the model's (``scale`` > 1) the period-4 pattern is spread by the
    inverse resampling but stays at the same spatial frequency, which this still measures.
    """
    return periodic_artifact_index(image, region, CHECKERBOARD_PERIOD_PX * scale, erode_px=8)
