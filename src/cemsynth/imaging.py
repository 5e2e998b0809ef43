"""Typed containers: an intensity image and a binary mask are different things.

Arrays are 2-D ``(rows, cols)``. Images are float32 in the units named by ``Image.units``;
masks are bool. Metadata travels beside the array (never inside it), so a reader can put a
result back into the original geometry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ImageMeta:
    """Where an image came from and how its pixels map to the patient.

    ``pixel_spacing_mm`` is (row spacing, column spacing) in millimetres as the file reports it:
    DICOM PixelSpacing (the vendor's calibrated spacing, usually the detector pitch but at the
    breast plane for magnification-corrected images), else ImagerPixelSpacing (the detector
    pitch), else the user's value or the documented fallback;
    ``spacing_source`` says which tag (or the user, or a documented fallback) gave it.
    ``laterality`` is "L" or "R", ``view`` "CC", "MLO", ... (None when unknown).
    """

    pixel_spacing_mm: tuple[float, float]
    spacing_source: str = "unknown"
    source: Path | None = None
    laterality: str | None = None
    view: str | None = None
    patient_id: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None
    modality: str | None = None
    bits_stored: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Image:
    """A 2-D intensity image, float32 ``(rows, cols)``, with its metadata.

    ``units`` names the intensity domain: "stored" (raw stored values after rescale, e.g. 14-bit
    DICOM units), "windowed" (scaled to [-1, 1]) or another documented name.
    """

    array: FloatArray
    meta: ImageMeta
    units: str = "stored"

    def __post_init__(self) -> None:
        if self.array.ndim != 2:
            raise ValueError(f"Image must be 2-D (rows, cols), got shape {self.array.shape}")
        if self.array.dtype != np.float32:
            object.__setattr__(self, "array", self.array.astype(np.float32))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.array.shape[0]), int(self.array.shape[1]))

    def with_array(self, array: FloatArray, units: str | None = None) -> Image:
        """The same metadata around a new array (e.g. after an intensity transform)."""
        return Image(array=array, meta=self.meta, units=self.units if units is None else units)

    def with_meta(self, **changes: object) -> Image:
        return Image(array=self.array, meta=replace(self.meta, **changes), units=self.units)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Mask:
    """A 2-D binary mask, bool ``(rows, cols)``, with its pixel spacing in mm (row, col).

    Masks are never intensity-transformed and are always resampled nearest-neighbour.
    """

    array: BoolArray
    pixel_spacing_mm: tuple[float, float]

    def __post_init__(self) -> None:
        if self.array.ndim != 2:
            raise ValueError(f"Mask must be 2-D (rows, cols), got shape {self.array.shape}")
        if self.array.dtype != np.bool_:
            object.__setattr__(self, "array", self.array.astype(bool))

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.array.shape[0]), int(self.array.shape[1]))
