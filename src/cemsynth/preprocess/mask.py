"""Breast mask of a low-energy image: Otsu threshold, largest connected part, holes filled.

The breast (skin line, pectoral muscle included) is the largest 8-connected region on the
breast side of the Otsu threshold; labels, markers and noise specks outside it are dropped.
Holes (dark fat surrounded by tissue) are filled so that the mask is one solid region.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

from cemsynth.errors import InputFileError
from cemsynth.imaging import BoolArray, FloatArray
from cemsynth.preprocess.crop import BBox, bounding_box

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class MaskRecord:
    """How the mask was found: threshold (stored units), box, share of the image covered."""

    threshold: float
    bbox: BBox
    breast_fraction: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "bbox": self.bbox.to_list(),
            "breast_fraction": self.breast_fraction,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MaskRecord:
        return cls(
            threshold=float(data["threshold"]),
            bbox=BBox.from_list(data["bbox"]),
            breast_fraction=float(data["breast_fraction"]),
        )


def breast_mask(
    le: FloatArray,
    source: Path | str,
    polarity: str = "bright",
    nbins: int = 256,
    subsample: int = 4,
    fill_holes: bool = True,
    min_fraction: float = 0.01,
    log_domain: bool = False,
) -> tuple[BoolArray, MaskRecord]:
    """Breast mask of an LE image on its own grid, and its minimal bounding box.

    Args:
        le: float32 ``(rows, cols)`` LE image in stored units.
        source: file named in errors (the LE path, or a label for in-memory images).
        polarity: "bright" if the breast is brighter than the background, else "dark".
        nbins: Otsu histogram bins.
        subsample: the threshold is computed on ``le[::k, ::k]``.
        fill_holes: fill holes inside the largest region.
        min_fraction: smallest share of the image the breast may cover.
        log_domain: find the threshold on ``log(1 + v - min)``; in processed 8-bit images
            (background 0, fat barely above it) a linear Otsu splits dense from fatty tissue.

    Returns:
        bool ``(rows, cols)`` mask and a :class:`MaskRecord`.

    Raises:
        InputFileError: blank (constant) image, non-finite values, or no breast found.
    """
    low, high = float(le.min()), float(le.max())  # NaN or inf anywhere shows up here
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InputFileError(source, "image contains NaN or infinite values")
    if low == high:
        raise InputFileError(source, f"image is blank (every pixel is {low:g}); no breast found")
    sample = le[::subsample, ::subsample]
    if float(sample.min()) == float(sample.max()):  # a few pixels differ: use them all
        sample = le
    try:
        if log_domain:
            log_threshold = float(threshold_otsu(np.log1p(sample - np.float32(low)), nbins=nbins))
            threshold = float(np.expm1(log_threshold)) + low
        else:
            threshold = float(threshold_otsu(sample, nbins=nbins))
    except ValueError:  # numpy's histogram: the range has too few distinct float32 values
        raise InputFileError(
            source,
            f"pixel values {low:g} to {high:g} cannot be told apart in float32 (an implausible "
            "RescaleIntercept or RescaleSlope?)",
        ) from None
    candidate = le > threshold if polarity == "bright" else le < threshold

    labels, count = ndimage.label(candidate, structure=_EIGHT_CONNECTED)
    if count == 0:
        raise InputFileError(source, "no breast found (Otsu threshold leaves nothing)")
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0
    largest = int(np.argmax(sizes))
    fraction = float(sizes[largest]) / le.size
    if fraction < min_fraction:
        raise InputFileError(
            source,
            f"no breast found: the largest region covers {fraction:.2%} of the image "
            f"(minimum {min_fraction:.2%}); is the image blank or the polarity wrong?",
        )
    mask = labels == largest
    del labels, candidate
    bbox = bounding_box(mask)
    assert bbox is not None  # the largest region is non-empty
    if fill_holes:
        # Within the minimal box a hole is exactly a hole of the full image: every
        # background pixel on the box edge connects to the background outside it.
        mask[bbox.slices] = _fill_holes(mask[bbox.slices])
        fraction = float(np.count_nonzero(mask[bbox.slices])) / le.size
    return mask, MaskRecord(threshold=threshold, bbox=bbox, breast_fraction=fraction)


def _fill_holes(mask: BoolArray) -> BoolArray:
    """Same result as ``ndimage.binary_fill_holes`` (4-connected background), 3-4x faster.

    A hole is a 4-connected background region that does not touch the array border.
    """
    labels, count = ndimage.label(~mask)
    border = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    is_hole = np.ones(count + 1, dtype=bool)
    is_hole[0] = False
    is_hole[border] = False
    return mask | is_hole[labels]
