"""Channelized Hotelling observer (CHO) with Laguerre-Gauss channels, and its ROIs.

Task: is an (enhancing) lesion at the centre of this square region of interest? Each ROI is
reduced to ``J`` channel outputs ``v = U^T g`` (``U``: rotationally symmetric Laguerre-Gauss
functions centred on the ROI). The Hotelling observer on the channel outputs has

    d'^2 = dv^T K^-1 dv,   dv = mean(v | present) - mean(v | absent)

with ``K`` the channel covariance. Lesion-present ROIs are few (one per lesion), so ``K`` is
the covariance of the lesion-absent ROIs, averaged with that of the present ones only when
there are more present ROIs than channels; a small ridge keeps it invertible. For white noise
of SD sigma and a known signal ``s`` the ideal observer reaches ``||s|| / sigma``; a CHO whose
first channel has the signal's shape reaches the same (tests check this).

ROI positions depend on geometry only (masks, seed), never on the image, so every image type
of a case is read at the same places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.special import eval_laguerre

from cemsynth.imaging import BoolArray

Float64Array = npt.NDArray[np.float64]


def laguerre_gauss_channels(
    size_px: int, spacing_mm: tuple[float, float], width_mm: float, n_channels: int
) -> Float64Array:
    """Channel matrix ``(n_channels, size_px * size_px)`` float64, centred on the ROI.

    ``u_j(r) = (sqrt(2) / a) exp(-pi r^2 / a^2) L_j(2 pi r^2 / a^2)`` with ``r`` in mm from the
    ROI centre, ``a = width_mm`` and ``L_j`` the Laguerre polynomial of order ``j``.
    """
    centre = (size_px - 1) / 2.0
    rows, cols = np.mgrid[0:size_px, 0:size_px].astype(np.float64)
    r2 = ((rows - centre) * spacing_mm[0]) ** 2 + ((cols - centre) * spacing_mm[1]) ** 2
    argument = 2.0 * math.pi * r2 / width_mm**2
    gauss = (math.sqrt(2.0) / width_mm) * np.exp(-argument / 2.0)
    channels = np.stack([gauss * eval_laguerre(j, argument) for j in range(n_channels)])
    return channels.reshape(n_channels, -1)


def roi_size_px(roi_size_mm: float, spacing_mm: tuple[float, float]) -> int:
    """Odd ROI side in pixels covering ``roi_size_mm`` at the (smaller) pixel spacing."""
    size = round(roi_size_mm / min(spacing_mm))
    return max(size + (1 - size % 2), 3)


#: ROI pixels farther than this fraction of the side from the centre form its background ring.
RING_FRACTION = 0.4
#: Residues within this many float64 ulps of the background value count as background.
ROUNDING_ULPS = 64


def extract_rois(
    image: npt.NDArray[np.floating],
    centres: npt.NDArray[np.int64],
    size_px: int,
    breast: BoolArray | None = None,
    subtract_background: bool = True,
) -> Float64Array:
    """ROIs ``(k, size_px * size_px)`` float64 around integer ``(row, col)`` centres.

    Parts outside the image are filled by reflecting it. With ``subtract_background`` each ROI
    has the mean of its outer ring (pixels farther than ``RING_FRACTION * size_px`` from the
    centre) subtracted, so case-level intensity offsets (BPE level, a flat image's value) do
    not count as lesion signal. Pixels outside ``breast`` are set to that background (0 after
    subtraction), so the skin line near a peripheral lesion is not read as signal.
    """
    half = size_px // 2
    padded = np.pad(np.asarray(image, dtype=np.float64), half, mode="reflect")
    inside_all = None if breast is None else np.pad(breast, half, mode="reflect")
    offsets = np.arange(size_px, dtype=np.float64) - (size_px - 1) / 2.0
    radius = np.hypot(offsets[:, None], offsets[None, :])
    ring = radius > RING_FRACTION * size_px
    out = np.empty((len(centres), size_px * size_px), dtype=np.float64)
    for index, (row, col) in enumerate(centres):
        roi = padded[row : row + size_px, col : col + size_px].copy()
        inside = (
            np.ones_like(ring)
            if inside_all is None
            else inside_all[row : row + size_px, col : col + size_px]
        )
        if not inside.any():
            out[index] = 0.0
            continue
        if subtract_background:
            reference = ring & inside if (ring & inside).any() else inside
            background = float(roi[reference].mean())
            roi = np.where(inside, roi - background, 0.0)
            # A flat ROI must give exact zeros, not the mean's rounding residue (which the
            # Hotelling observer would read as a perfectly detectable signal).
            roi[np.abs(roi) <= ROUNDING_ULPS * np.finfo(np.float64).eps * abs(background)] = 0.0
        elif not inside.all():
            roi = np.where(inside, roi, float(roi[inside].mean()))
        out[index] = roi.ravel()
    return out


def hotelling_dprime(present: Float64Array, absent: Float64Array, ridge: float = 1e-6) -> float:
    """Detectability ``d'`` of the Hotelling observer on channel outputs.

    ``present``: ``(n_p, J)``; ``absent``: ``(n_a, J)`` with ``n_a >= 2``. Returns 0 when the
    channel outputs do not vary (e.g. a flat image) and NaN when there are too few ROIs.
    """
    if len(present) < 1 or len(absent) < 2:
        return math.nan
    n_channels = present.shape[1]
    covariance = np.atleast_2d(np.cov(absent, rowvar=False))
    if len(present) > n_channels:
        covariance = 0.5 * (covariance + np.atleast_2d(np.cov(present, rowvar=False)))
    delta = present.mean(axis=0) - absent.mean(axis=0)
    scale = float(np.mean(np.diag(covariance)))
    if scale <= 0.0:
        return 0.0
    covariance = covariance + ridge * scale * np.eye(n_channels)
    value = float(delta @ np.linalg.solve(covariance, delta))
    return math.sqrt(max(value, 0.0))


@dataclass(frozen=True)
class RoiPlan:
    """Where a case's ROIs are: ``present`` (lesion centroid) and lesion-free ``absent`` ones.

    Centres are integer ``(row, col)`` arrays of shape ``(k, 2)``.
    """

    present: npt.NDArray[np.int64]
    absent: npt.NDArray[np.int64]


def plan_rois(
    breast: BoolArray,
    skin_distance_mm: npt.NDArray[np.float32],
    lesion: BoolArray | None,
    status: str,
    lesion_is_signal: bool,
    size_px: int,
    spacing_mm: tuple[float, float],
    n_absent: int,
    rng: np.random.Generator,
) -> RoiPlan:
    """Choose ROI centres for one case; ``status`` is "present", "absent" or "unknown".

    A lesion with a signal (``lesion_is_signal``) gives one present ROI at its mask's centroid.
    Lesion-free regions give ``n_absent`` ROIs at random places where the ROI lies inside the
    breast (centre deeper than the ROI's half-diagonal and a half-ROI from the image border):
    the whole breast of a lesion-free image, and in a lesion image what lies a full ROI
    diagonal from the lesion. Images of unknown status, and lesion images without a lesion
    mask, give no absent ROI (their lesion-free part is not known).
    """
    empty = np.zeros((0, 2), dtype=np.int64)
    present = empty
    has_lesion = lesion is not None and bool(lesion.any())
    if has_lesion and lesion_is_signal:
        assert lesion is not None
        row, col = ndimage.center_of_mass(lesion)
        present = np.array([[round(row), round(col)]], dtype=np.int64)
    if status == "unknown" or (status == "present" and not has_lesion):
        return RoiPlan(present, empty)
    half = size_px // 2
    half_diagonal_mm = math.sqrt(2.0) * half * max(spacing_mm)
    allowed = breast & (skin_distance_mm > half_diagonal_mm)
    inside = np.zeros_like(allowed)
    if allowed.shape[0] > 2 * half and allowed.shape[1] > 2 * half:
        inside[half:-half, half:-half] = True
    allowed &= inside
    if has_lesion:
        assert lesion is not None
        away = ndimage.distance_transform_edt(~lesion, sampling=spacing_mm) > 2 * half_diagonal_mm
        allowed &= away
    candidates = np.argwhere(allowed)
    if len(candidates) == 0:
        return RoiPlan(present, empty)
    picks = rng.choice(len(candidates), size=min(n_absent, len(candidates)), replace=False)
    return RoiPlan(present, candidates[np.sort(picks)].astype(np.int64))
