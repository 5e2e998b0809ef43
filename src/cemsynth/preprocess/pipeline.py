"""The paper's preprocessing as one forward function, and its inverse for model outputs.

Forward (per LE/RC pair, in this order, as in the paper):

1. breast mask by Otsu thresholding of the LE image (largest region, holes filled);
2. crop LE, RC and mask to the mask's minimal bounding box;
3. resample to the cached grid: bilinear for images, nearest neighbour for the mask;
4. clip to the LE / RC window and scale linearly to [-1, 1].

Inverse (for a model output, i.e. a synthetic RC on the cached grid): undo 4 with the RC
window (stored units), undo 3 by bilinear resampling to the cropped shape, undo 2 by placing
the crop in an image of the original shape, and write ``background_value`` outside the
original-resolution breast mask. Round trip error inside the breast is interpolation error
only (see ``docs/data-pipeline.md``); values the window clipped come back clipped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from cemsynth.errors import ConfigError, InputFileError
from cemsynth.imaging import BoolArray, FloatArray, Image, ImageMeta, Mask
from cemsynth.io.budget import check_image_size
from cemsynth.preprocess.config import PreprocessConfig
from cemsynth.preprocess.crop import CropRecord, crop, uncrop
from cemsynth.preprocess.intensity import WindowRecord, unwindow, window
from cemsynth.preprocess.mask import MaskRecord, breast_mask
from cemsynth.preprocess.resample import (
    ResampleRecord,
    plan_resample,
    resample_bilinear,
    resample_inverse,
    resample_nearest,
)

RECORD_VERSION = 1
WINDOWED_UNITS = "windowed"


def meta_to_dict(meta: ImageMeta) -> dict[str, Any]:
    """JSON-safe dict of an :class:`ImageMeta` (paths as strings)."""
    data: dict[str, Any] = {}
    for item in fields(ImageMeta):
        value = getattr(meta, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, dict):
            value = dict(value)
        data[item.name] = value
    return data


def meta_from_dict(data: dict[str, Any]) -> ImageMeta:
    """Inverse of :func:`meta_to_dict`."""
    values = dict(data)
    row, col = values.pop("pixel_spacing_mm")
    source = values.pop("source", None)
    return ImageMeta(
        pixel_spacing_mm=(float(row), float(col)),
        source=None if source is None else Path(source),
        **values,
    )


@dataclass(frozen=True)
class PreprocessRecord:
    """Everything :func:`inverse` needs to put a cached-grid result back on the original grid.

    Attributes:
        original_shape: ``(rows, cols)`` of the LE image as read.
        pixel_spacing_mm: (row, col) spacing of the original grid.
        mask: Otsu threshold, bounding box (original grid) and breast share.
        crop: the box and original shape (for :func:`~cemsynth.preprocess.crop.uncrop`).
        resample: cropped shape -> cached shape, with both spacings and the exact scale.
        le_window, rc_window: the windows applied (stored units -> [-1, 1]).
        background_value: RC stored value :func:`inverse` writes outside the breast.
        config_hash: :meth:`PreprocessConfig.config_hash` of the config that made it.
        meta: the LE image's metadata (the synthetic RC inherits it).
        breast_mask_crop: bool mask at original resolution inside the box (not in to_dict;
            the cache stores it as an array).
    """

    original_shape: tuple[int, int]
    pixel_spacing_mm: tuple[float, float]
    mask: MaskRecord
    crop: CropRecord
    resample: ResampleRecord
    le_window: WindowRecord
    rc_window: WindowRecord
    background_value: float
    config_hash: str
    meta: ImageMeta
    breast_mask_crop: BoolArray

    @property
    def cached_shape(self) -> tuple[int, int]:
        return self.resample.out_shape

    @property
    def cached_spacing_mm(self) -> tuple[float, float]:
        return self.resample.out_spacing_mm

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (without ``breast_mask_crop``)."""
        return {
            "version": RECORD_VERSION,
            "original_shape": list(self.original_shape),
            "pixel_spacing_mm": list(self.pixel_spacing_mm),
            "mask": self.mask.to_dict(),
            "crop": self.crop.to_dict(),
            "resample": self.resample.to_dict(),
            "le_window": self.le_window.to_list(),
            "rc_window": self.rc_window.to_list(),
            "background_value": self.background_value,
            "config_hash": self.config_hash,
            "meta": meta_to_dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], breast_mask_crop: BoolArray) -> PreprocessRecord:
        """Inverse of :meth:`to_dict`; the original-resolution mask is given separately."""
        version = data.get("version")
        if version != RECORD_VERSION:
            raise ConfigError(
                f"preprocess record version {version!r} is not supported "
                f"(expected {RECORD_VERSION}); rebuild the cache"
            )
        crop_record = CropRecord.from_dict(data["crop"])
        mask_array = np.asarray(breast_mask_crop, dtype=np.bool_)
        if mask_array.shape != crop_record.bbox.shape:
            raise ValueError(
                f"breast mask of shape {mask_array.shape} does not match box {crop_record.bbox}"
            )
        rows, cols = (int(v) for v in data["original_shape"])
        row_mm, col_mm = (float(v) for v in data["pixel_spacing_mm"])
        return cls(
            original_shape=(rows, cols),
            pixel_spacing_mm=(row_mm, col_mm),
            mask=MaskRecord.from_dict(data["mask"]),
            crop=crop_record,
            resample=ResampleRecord.from_dict(data["resample"]),
            le_window=WindowRecord.from_list(data["le_window"]),
            rc_window=WindowRecord.from_list(data["rc_window"]),
            background_value=float(data["background_value"]),
            config_hash=str(data["config_hash"]),
            meta=meta_from_dict(data["meta"]),
            breast_mask_crop=mask_array,
        )


@dataclass(frozen=True)
class PreprocessedPair:
    """One LE/RC pair on the cached grid.

    Attributes:
        le: float32 ``cached_shape`` in [-1, 1] (LE window).
        rc: float32 ``cached_shape`` in [-1, 1] (RC window), or None when no RC was given.
        mask: breast mask on the cached grid (nearest neighbour of the original mask).
        record: how to map results back (:func:`inverse`).
    """

    le: FloatArray
    rc: FloatArray | None
    mask: Mask
    record: PreprocessRecord


def _source(image: Image, label: str) -> Path | str:
    return image.meta.source if image.meta.source is not None else f"<{label} image>"


def le_breast_mask(
    le: FloatArray, source: Path | str, config: PreprocessConfig
) -> tuple[BoolArray, MaskRecord]:
    """The breast mask of an LE image exactly as preprocessing finds it (Otsu with the
    config's polarity, bins, subsampling, hole filling, minimum share and domain).

    ``le`` is float32 ``(rows, cols)`` in stored units; returns the bool mask on its grid and
    its record. Raises InputFileError naming ``source`` when no breast is found.
    """
    return breast_mask(
        le,
        source=source,
        polarity=config.breast_polarity,
        nbins=config.otsu_nbins,
        subsample=config.otsu_subsample,
        fill_holes=config.fill_holes,
        min_fraction=config.min_breast_fraction,
        log_domain=config.otsu_log,
    )


def forward(le: Image, rc: Image | None, config: PreprocessConfig) -> PreprocessedPair:
    """Preprocess an LE image (and its RC image, for training) onto the cached grid.

    Args:
        le: LE image, float32 ``(rows, cols)``, stored units, with its pixel spacing.
        rc: RC (recombined, iodine) image of the same shape in stored units, or None.
        config: the preprocessing settings.

    Returns:
        The cached-grid arrays in [-1, 1], the cached-grid breast mask and the record.

    Raises:
        InputFileError: LE and RC differ in shape, or the LE image shows no breast.
    """
    if rc is not None and rc.shape != le.shape:
        raise InputFileError(
            _source(rc, "RC"),
            f"RC image is {rc.shape[0]} x {rc.shape[1]} pixels but its LE image "
            f"({_source(le, 'LE')}) is {le.shape[0]} x {le.shape[1]}; they must match",
        )
    full_mask, mask_record = le_breast_mask(le.array, _source(le, "LE"), config)
    mask_crop, crop_record = crop(full_mask, mask_record.bbox)
    del full_mask
    le_crop, _ = crop(le.array, mask_record.bbox)
    resample_record = plan_resample(
        crop_record.bbox.shape,
        le.meta.pixel_spacing_mm,
        config.downsample_factor,
        config.target_spacing_mm,
    )
    out_shape = resample_record.out_shape
    check_image_size(le.meta.source or "image", out_shape[0], out_shape[1], "would resample to")

    le_cached, le_window = window(
        resample_bilinear(le_crop, out_shape, anti_alias=config.anti_alias), *config.le_window
    )
    del le_crop
    rc_cached: FloatArray | None = None
    if rc is not None:
        rc_crop, _ = crop(rc.array, mask_record.bbox)
        rc_cached, _ = window(
            resample_bilinear(rc_crop, out_shape, anti_alias=config.anti_alias),
            *config.rc_window,
        )
    mask_cached = resample_nearest(mask_crop, out_shape)
    record = PreprocessRecord(
        original_shape=le.shape,
        pixel_spacing_mm=le.meta.pixel_spacing_mm,
        mask=mask_record,
        crop=crop_record,
        resample=resample_record,
        le_window=le_window,
        rc_window=WindowRecord(*config.rc_window),
        background_value=config.background_value,
        config_hash=config.config_hash(),
        meta=le.meta,
        breast_mask_crop=mask_crop,
    )
    return PreprocessedPair(
        le=le_cached,
        rc=rc_cached,
        mask=Mask(mask_cached, pixel_spacing_mm=resample_record.out_spacing_mm),
        record=record,
    )


def _check_config(record: PreprocessRecord, config: PreprocessConfig) -> None:
    if config.config_hash() != record.config_hash:
        raise ConfigError(
            f"the preprocessing config (hash {config.config_hash()}) is not the one that made "
            f"this record (hash {record.config_hash}); use the config stored with the cache "
            "or checkpoint"
        )


def inverse(model_output: FloatArray, record: PreprocessRecord, config: PreprocessConfig) -> Image:
    """Map a cached-grid RC-domain output back to the original grid in RC stored units.

    Args:
        model_output: float32 ``record.cached_shape`` in [-1, 1] (values outside are clipped),
            e.g. a synthetic RC image from the generator.
        record: the record :func:`forward` returned for the LE image.
        config: the config that made the record (checked by hash, so a checkpoint's config
            cannot silently be applied to data preprocessed differently).

    Returns:
        float32 ``record.original_shape`` Image in stored units with the LE image's metadata;
        ``record.background_value`` outside the original-resolution breast mask.
    """
    _check_config(record, config)
    output = np.asarray(model_output, dtype=np.float32)
    if output.shape != record.cached_shape:
        raise ValueError(
            f"model output has shape {output.shape}, expected the cached shape "
            f"{record.cached_shape}"
        )
    stored = resample_inverse(unwindow(output, record.rc_window), record.resample)
    background = np.float32(record.background_value)
    stored[~record.breast_mask_crop] = background
    full = uncrop(stored, record.crop, fill=record.background_value)
    return Image(array=full, meta=record.meta, units="stored")


def mask_to_cached_grid(mask: Mask | BoolArray, record: PreprocessRecord) -> Mask:
    """Crop and nearest-neighbour resample an original-grid mask (e.g. a truth mask).

    ``mask`` must have ``record.original_shape``; the result has ``record.cached_shape``.
    """
    array = mask.array if isinstance(mask, Mask) else np.asarray(mask, dtype=np.bool_)
    if array.shape != record.original_shape:
        raise ValueError(
            f"mask of shape {array.shape} does not match the image shape {record.original_shape}"
        )
    cropped, _ = crop(array, record.crop.bbox)
    return Mask(
        resample_nearest(cropped, record.cached_shape),
        pixel_spacing_mm=record.cached_spacing_mm,
    )


def breast_mask_original(record: PreprocessRecord) -> Mask:
    """The breast mask on the original grid (bool ``record.original_shape``)."""
    return Mask(uncrop(record.breast_mask_crop, record.crop, fill=False), record.pixel_spacing_mm)
