"""Score one manifest row: read LE, clinical RC and prediction, build the baselines, measure.

Every image is scored on the original pixel grid (optionally binned ``bin_factor`` x
``bin_factor``). Intensity scales (see ``docs/evaluation.md``):

- *windowed*: stored values clipped to the preprocessing window and mapped to [-1, 1] (LE
  window for LE, RC window for clinical, synthetic and baselines); ``data_range`` 2;
- *8-bit*: each whole image min-max scaled to 0-255 and rounded (the common convention);
- halo index, blob threshold: windowed units.

The baselines are built like a model's output, in RC stored units, with the preprocessing's
``background_value`` outside the breast, and scored by the same code as the prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cemsynth.errors import InputFileError
from cemsynth.evaluation import metrics as px
from cemsynth.evaluation.artifacts import checkerboard_index, seam_index
from cemsynth.evaluation.config import (
    BASELINE_FLAT_OWN,
    BASELINE_FLAT_TRAIN,
    BASELINE_LE,
    IDEAL,
    PREDICTION_SOURCES,
    SYNTHETIC,
    EvaluationConfig,
)
from cemsynth.evaluation.observer import (
    extract_rois,
    laguerre_gauss_channels,
    plan_rois,
    roi_size_px,
)
from cemsynth.evaluation.regions import (
    count_blobs,
    distance_to_skin_mm,
    halo_index,
    lesion_contrast,
    lesion_ring,
    tissue_contrast,
)
from cemsynth.imaging import BoolArray, FloatArray, Image
from cemsynth.io.manifest import PairRecord
from cemsynth.preprocess.config import PreprocessConfig
from cemsynth.preprocess.intensity import WindowRecord, unwindow, window

#: Image types whose window-seam and checkerboard indices are reported.
ARTIFACT_SOURCES = ("clinical", SYNTHETIC)
#: Image types whose tissue CNR, lesion CNR and halo index are reported.
REGION_SOURCES = ("le", "clinical", SYNTHETIC, BASELINE_LE)
HALO_SOURCES = ("clinical", SYNTHETIC, BASELINE_LE)
CHO_SOURCES = ("clinical", *PREDICTION_SOURCES)
THUMB_ROWS = 192

Float64Array = npt.NDArray[np.float64]


@dataclass
class CaseResult:
    """Everything measured on one image; ``values`` maps metric names to numbers (NaN: n/a)."""

    record: PairRecord
    prediction: Path
    values: dict[str, float]
    notes: list[str]
    rois_present: dict[str, Float64Array] = field(default_factory=dict)
    rois_absent: dict[str, Float64Array] = field(default_factory=dict)
    halo_case: bool | None = None
    thumbnails: dict[str, FloatArray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        r = self.record
        return f"{r.patient_id} {r.laterality} {r.view}"


def case_name(record: PairRecord) -> str:
    return f"{record.patient_id} {record.laterality} {record.view}"


def lesion_status(record: PairRecord) -> str:
    """ "present", "absent" or "unknown"."""
    if record.lesion_present is None:
        return "unknown"
    return "present" if record.lesion_present else "absent"


def read_breast_mask(
    record: PairRecord, le: Image, preprocess: PreprocessConfig
) -> tuple[BoolArray, str]:
    """The manifest's breast mask if it has one, else the preprocessing's Otsu mask of LE."""
    from cemsynth.preprocess.cache import read_truth_mask
    from cemsynth.preprocess.pipeline import le_breast_mask

    if record.breast_mask_path is not None:
        return read_truth_mask(record.breast_mask_path, le.shape), "manifest"
    mask, _ = le_breast_mask(le.array, record.le_path, preprocess)
    return mask, "Otsu of LE"


def _optional_mask(
    path: Path | None, shape: tuple[int, int], what: str, notes: list[str]
) -> BoolArray | None:
    from cemsynth.preprocess.cache import read_truth_mask

    if path is None:
        return None
    try:
        return read_truth_mask(path, shape)
    except InputFileError as exc:
        notes.append(f"{what} mask unusable ({exc.problem}): its metrics are not computed")
        return None


def model_pixels_to_scored(
    preprocess: PreprocessConfig, spacing_mm: tuple[float, float], bin_factor: int
) -> float:
    """Scored-grid pixels per model-grid pixel (the model works on the preprocessed grid).

    ``spacing_mm`` is the original image's (row, col) spacing; scoring bins it by
    ``bin_factor``. Uses the mean of the two axes (mammograms have square pixels).
    """
    original = (spacing_mm[0] + spacing_mm[1]) / 2.0
    if preprocess.target_spacing_mm is not None:
        model = preprocess.target_spacing_mm
    else:
        model = original * float(preprocess.downsample_factor or 1)
    return model / (original * bin_factor)


def _optional_ideal(
    record: PairRecord, shape: tuple[int, int], notes: list[str]
) -> FloatArray | None:
    """The manifest's ideal RC (stored units, float32 of ``shape``), or None with a note."""
    from cemsynth.io.reader import read_image

    if record.ideal_rc_path is None:
        return None
    try:
        ideal = read_image(record.ideal_rc_path, record.pixel_spacing_mm)
    except InputFileError as exc:
        notes.append(f"ideal RC unusable ({exc.problem}): not scored against it")
        return None
    if ideal.shape != shape:
        notes.append(
            f"ideal RC is {ideal.shape[0]} x {ideal.shape[1]}, the LE {shape[0]} x {shape[1]}: "
            "not scored against it"
        )
        return None
    return ideal.array


def baseline_images(
    le: FloatArray,
    rc: FloatArray,
    breast: BoolArray,
    preprocess: PreprocessConfig,
    flat_train_value: float,
) -> dict[str, FloatArray]:
    """The three baselines in RC stored units, float32 of the image shape.

    ``baseline_le``: LE windowed to [-1, 1] then mapped back with the RC window (so the LE
    image's structure, in RC units); ``baseline_flat_train``: ``flat_train_value`` inside the
    breast; ``baseline_flat_own`` (oracle): the case's own mean RC inside the breast. Outside
    the breast every baseline holds ``preprocess.background_value``, as a model's output does.
    """
    background = np.float32(preprocess.background_value)
    le_windowed, _ = window(le, *preprocess.le_window)
    le_as_rc = unwindow(le_windowed, WindowRecord(*preprocess.rc_window))
    own = float(np.mean(rc[breast], dtype=np.float64))
    return {
        BASELINE_LE: np.where(breast, le_as_rc, background).astype(np.float32),
        BASELINE_FLAT_TRAIN: np.where(breast, np.float32(flat_train_value), background).astype(
            np.float32
        ),
        BASELINE_FLAT_OWN: np.where(breast, np.float32(own), background).astype(np.float32),
    }


def _bbox(mask: BoolArray) -> tuple[slice, slice]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _thumbnail(image: FloatArray) -> FloatArray:
    factor = max(1, math.ceil(image.shape[0] / THUMB_ROWS))
    return px.bin_image(image, factor)


class ChannelCache:
    """Laguerre-Gauss channel matrices, built once per (ROI size, spacing)."""

    def __init__(self, config: EvaluationConfig) -> None:
        self.config = config
        self._cache: dict[tuple[int, float, float], Float64Array] = {}

    def get(self, size_px: int, spacing_mm: tuple[float, float]) -> Float64Array:
        key = (size_px, spacing_mm[0], spacing_mm[1])
        if key not in self._cache:
            channels = laguerre_gauss_channels(
                size_px, spacing_mm, self.config.cho_channel_width_mm, self.config.cho_channels
            )
            # times the pixel area: outputs approximate integrals, comparable across spacings
            self._cache[key] = channels * (spacing_mm[0] * spacing_mm[1])
        return self._cache[key]


def evaluate_case(
    record: PairRecord,
    prediction_path: Path,
    preprocess: PreprocessConfig,
    config: EvaluationConfig,
    flat_train_value: float,
    case_index: int,
    channels: ChannelCache,
    lpips: Callable[[FloatArray, list[FloatArray]], list[float]] | None,
) -> CaseResult:
    """Measure one case; ``lpips`` maps (reference, others) to distances, or is None.

    Raises :class:`InputFileError` when the case cannot be scored at all (unreadable image,
    size mismatch, no breast); problems with optional masks become notes.
    """
    from cemsynth.io.reader import read_image

    notes: list[str] = []
    le_image = read_image(record.le_path, record.pixel_spacing_mm)
    rc_image = read_image(record.rc_path, record.pixel_spacing_mm)
    pred_image = read_image(prediction_path, le_image.meta.pixel_spacing_mm)
    if rc_image.shape != le_image.shape:
        raise InputFileError(
            record.rc_path,
            f"clinical RC is {rc_image.shape[0]} x {rc_image.shape[1]} but its LE is "
            f"{le_image.shape[0]} x {le_image.shape[1]}",
        )
    if pred_image.shape != rc_image.shape:
        raise InputFileError(
            prediction_path,
            f"size mismatch: prediction is {pred_image.shape[0]} x {pred_image.shape[1]}, "
            f"clinical RC {rc_image.shape[0]} x {rc_image.shape[1]} (predictions must be on the "
            "original pixel grid)",
        )
    shape = le_image.shape
    try:
        breast, breast_source = read_breast_mask(record, le_image, preprocess)
    except InputFileError as exc:
        if record.breast_mask_path is None:
            raise
        notes.append(f"breast mask unusable ({exc.problem}); Otsu mask of LE used")
        breast, breast_source = read_breast_mask(
            replace(record, breast_mask_path=None), le_image, preprocess
        )
    fgt = _optional_mask(record.fgt_mask_path, shape, "fibroglandular", notes)
    adipose = _optional_mask(record.adipose_mask_path, shape, "adipose", notes)
    lesion = _optional_mask(record.lesion_mask_path, shape, "lesion", notes)

    ideal_rc = _optional_ideal(record, shape, notes)

    factor = config.bin_factor
    le_spacing_mm = le_image.meta.pixel_spacing_mm
    spacing = (
        le_image.meta.pixel_spacing_mm[0] * factor,
        le_image.meta.pixel_spacing_mm[1] * factor,
    )
    le = px.bin_image(le_image.array, factor)
    rc = px.bin_image(rc_image.array, factor)
    images: dict[str, FloatArray] = {SYNTHETIC: px.bin_image(pred_image.array, factor)}
    del le_image, rc_image, pred_image
    breast = px.bin_mask(breast, factor)
    fgt = None if fgt is None else px.bin_mask(fgt, factor)
    adipose = None if adipose is None else px.bin_mask(adipose, factor)
    lesion = None if lesion is None else px.bin_mask(lesion, factor)
    if int(breast.sum()) < 100:
        raise InputFileError(record.le_path, f"breast mask ({breast_source}) is (nearly) empty")
    images.update(baseline_images(le, rc, breast, preprocess, flat_train_value))

    values: dict[str, float] = {}
    le_w, _ = window(le, *preprocess.le_window)
    rc_w, _ = window(rc, *preprocess.rc_window)
    windowed = {name: window(image, *preprocess.rc_window)[0] for name, image in images.items()}
    windowed["le"] = le_w
    windowed["clinical"] = rc_w
    sigma = config.ssim_sigma
    rng2 = px.WINDOWED_RANGE

    # 1. the paper's metrics: change from LE, inside the breast
    values["paper_mae_le_clinical"] = px.mae(le_w, rc_w, breast)
    values["paper_ssim_le_clinical"] = px.ssim(le_w, rc_w, rng2, breast, sigma)
    for name in PREDICTION_SOURCES:
        values[f"paper_mae_le_{name}"] = px.mae(le_w, windowed[name], breast)
        values[f"paper_ssim_le_{name}"] = px.ssim(le_w, windowed[name], rng2, breast, sigma)

    # 2. direct metrics against the clinical RC
    box = _bbox(breast)
    rc_8 = px.to_uint8_minmax(rc).astype(np.float64)
    for name in PREDICTION_SOURCES:
        test = windowed[name]
        values[f"{name}_mae_breast"] = px.mae(rc_w, test, breast)
        values[f"{name}_psnr_breast"] = px.psnr(rc_w, test, rng2, breast)
        in_breast, whole = px.ssim_pair(rc_w, test, rng2, breast, sigma)
        values[f"{name}_ssim_breast"] = in_breast
        values[f"{name}_mae_whole"] = px.mae(rc_w, test)
        values[f"{name}_psnr_whole"] = px.psnr(rc_w, test, rng2)
        values[f"{name}_ssim_whole"] = whole
        values[f"{name}_msssim_whole"] = px.ms_ssim(rc_w, test, rng2, config.ms_ssim_weights, sigma)
        values[f"{name}_msssim_breastbox"] = px.ms_ssim(
            rc_w[box], test[box], rng2, config.ms_ssim_weights, sigma
        )
        test_8 = px.to_uint8_minmax(images[name]).astype(np.float64)
        values[f"{name}_mae_8bit"] = px.mae(rc_8, test_8)
        values[f"{name}_psnr_8bit"] = px.psnr(rc_8, test_8, px.EIGHT_BIT_RANGE)
        values[f"{name}_ssim_8bit"] = px.ssim(rc_8, test_8, px.EIGHT_BIT_RANGE, None, sigma)
        values[f"{name}_lpips"] = math.nan
    if lpips is not None and min(rc_w[box].shape) >= 32:
        distances = lpips(rc_w[box], [windowed[name][box] for name in PREDICTION_SOURCES])
        for name, distance in zip(PREDICTION_SOURCES, distances, strict=True):
            values[f"{name}_lpips"] = distance

    # 2b. against the ideal RC (phantom truth: no noise, no halo), and the ideal as the ceiling
    if ideal_rc is not None:
        ideal_w, _ = window(px.bin_image(ideal_rc, factor), *preprocess.rc_window)
        for name in (*PREDICTION_SOURCES, "clinical"):
            test = windowed[name]
            values[f"{name}_mae_breast_ideal"] = px.mae(ideal_w, test, breast)
            values[f"{name}_psnr_breast_ideal"] = px.psnr(ideal_w, test, rng2, breast)
            values[f"{name}_ssim_breast_ideal"] = px.ssim(ideal_w, test, rng2, breast, sigma)
        values[f"{IDEAL}_mae_breast"] = px.mae(rc_w, ideal_w, breast)
        values[f"{IDEAL}_psnr_breast"] = px.psnr(rc_w, ideal_w, rng2, breast)
        values[f"{IDEAL}_ssim_breast"] = px.ssim(rc_w, ideal_w, rng2, breast, sigma)
        del ideal_rc

    # 3. tissue CNR (the paper's Table 2), windowed scale
    if fgt is None or adipose is None:
        notes.append("no fibroglandular/adipose masks: tissue CNR not computed")
    for name in REGION_SOURCES:
        contrast = None
        if fgt is not None and adipose is not None:
            contrast = tissue_contrast(windowed[name], fgt & breast, adipose & breast)
        values[f"{name}_cnr"] = math.nan if contrast is None else contrast.cnr_signed
        values[f"{name}_cnr_abs"] = math.nan if contrast is None else contrast.cnr_abs
        values[f"{name}_mean_fgt"] = math.nan if contrast is None else contrast.mean_fgt
        values[f"{name}_mean_adipose"] = math.nan if contrast is None else contrast.mean_adipose
    if fgt is not None and adipose is not None and math.isnan(values["clinical_cnr"]):
        notes.append("fibroglandular or adipose region too small: tissue CNR not computed")

    # 4. halo index
    reach = max(config.halo_band_mm[1], config.halo_inner_mm, config.blob_margin_mm) + 1.0
    skin = distance_to_skin_mm(breast, spacing, reach)
    fat = None if adipose is None else adipose & breast
    for name in HALO_SOURCES:
        values[f"{name}_halo"] = halo_index(
            windowed[name], skin, config.halo_band_mm, config.halo_inner_mm, fat
        )
    halo_case: bool | None = record.halo
    if halo_case is None and math.isfinite(values["clinical_halo"]):
        halo_case = values["clinical_halo"] > config.halo_threshold

    # 4b. periodic artifacts of patch-based synthesis, on the model's grid
    scale = model_pixels_to_scored(preprocess, le_spacing_mm, factor)
    for name in ARTIFACT_SOURCES:
        values[f"{name}_seam_index"] = seam_index(windowed[name], breast, scale)
        values[f"{name}_checkerboard_index"] = checkerboard_index(windowed[name], breast, scale)

    # 5. lesion detectability: lesion CNR, CHO ROIs, hallucinated blobs
    has_lesion = lesion is not None and bool(lesion.any())
    if record.lesion_present and lesion is None:
        notes.append("lesion present but no lesion mask: lesion metrics not computed")
    ring = None
    if has_lesion and lesion is not None:
        ring = lesion_ring(lesion, breast, spacing, config.lesion_ring_mm)
    for name in REGION_SOURCES:
        values[f"{name}_lesion_cnr"] = (
            lesion_contrast(windowed[name], lesion, ring)
            if lesion is not None and ring is not None
            else math.nan
        )
    size = roi_size_px(config.roi_size_mm, spacing)
    is_signal = not (config.cho_enhancing_only and record.lesion_enhancing is False)
    plan = plan_rois(
        breast,
        skin,
        lesion if has_lesion else None,
        status=lesion_status(record),
        lesion_is_signal=is_signal,
        size_px=size,
        spacing_mm=spacing,
        n_absent=config.cho_absent_per_case,
        rng=np.random.default_rng([config.seed, case_index]),
    )
    result = CaseResult(record, prediction_path, values, notes, halo_case=halo_case)
    channel_matrix = channels.get(size, spacing)
    for name in CHO_SOURCES:
        for centres, store in (
            (plan.present, result.rois_present),
            (plan.absent, result.rois_absent),
        ):
            rois = extract_rois(windowed[name], centres, size, breast)
            store[name] = rois @ channel_matrix.T
    values["clinical_blobs"] = math.nan
    values["synthetic_blobs"] = math.nan
    if record.lesion_present is False:
        region = breast & (skin > config.blob_margin_mm)
        for name in ("clinical", SYNTHETIC):
            values[f"{name}_blobs"] = float(
                count_blobs(
                    windowed[name],
                    region,
                    spacing,
                    config.blob_smooth_mm,
                    config.blob_background_mm,
                    config.blob_threshold,
                    config.blob_diameter_mm,
                )
            )
    result.thumbnails = {
        "le": _thumbnail(le_w),
        "clinical": _thumbnail(rc_w),
        SYNTHETIC: _thumbnail(windowed[SYNTHETIC]),
    }
    if breast_source != "manifest":
        notes.append("no breast mask in the manifest: Otsu mask of LE used")
    return result
