"""The predictor on phantom DICOM: original geometry, RC units, labelled DICOM, refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from cemsynth.errors import InputFileError
from cemsynth.inference.config import RuntimeConfig, SlidingWindowConfig
from cemsynth.inference.dicom_out import (
    MG_FOR_PRESENTATION,
    build_synthetic_dataset,
    read_source_header,
    validate_mg_dataset,
)
from cemsynth.inference.predictor import Predictor
from cemsynth.io.reader import read_image
from cemsynth.preprocess.config import get_preset
from cemsynth.preprocess.pipeline import breast_mask_original, forward, inverse

from .conftest import CHECKPOINT_STEP, make_checkpoint

TORCH = RuntimeConfig(device="cpu", backend="torch")


@pytest.fixture(scope="module")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.load(tiny_run, TORCH)


def le_path(exam: Path, view: str = "L_CC") -> Path:
    return exam / "P0001" / f"{view}_LE.dcm"


def test_prediction_is_on_the_original_grid_in_rc_units(
    predictor: Predictor, phantom_exam: Path
) -> None:
    le = read_image(le_path(phantom_exam))
    prediction = predictor.predict(le)
    synthetic = prediction.image
    assert synthetic.shape == le.shape
    assert synthetic.meta.pixel_spacing_mm == le.meta.pixel_spacing_mm
    assert (synthetic.meta.laterality, synthetic.meta.view) == ("L", "CC")
    assert synthetic.units == "stored"
    breast = breast_mask_original(prediction.record).array
    low, high = get_preset("phantom").rc_window
    assert np.all(synthetic.array[~breast] == 0.0)  # background_value
    assert synthetic.array[breast].min() >= low and synthetic.array[breast].max() <= high
    assert prediction.n_evaluated == prediction.n_windows > 0
    assert set(prediction.seconds) == {"preprocess", "network", "inverse"}


def _starts(length: int, window: int, stride: int) -> list[int]:
    """0, stride, 2 stride, ... while the window fits, then the window at the border."""
    starts = list(range(0, length - window + 1, stride))
    return starts if starts[-1] == length - window else [*starts, length - window]


def test_predict_image_is_a_hand_run_sliding_window(tiny_run: Path, phantom_exam: Path) -> None:
    """predict_image = forward, the network on each window that holds breast, gaussian blend,
    inverse. Here the windows are cut, run one at a time and blended by hand."""
    stride, sigma_fraction = 40, 0.125  # a coarse grid keeps the hand-run loop short
    window = SlidingWindowConfig(stride=stride, gaussian_sigma=sigma_fraction, mask_margin=0)
    predictor = Predictor.load(tiny_run, TORCH, window)
    le = read_image(le_path(phantom_exam, "R_MLO"))
    config = predictor.preprocess_config
    pair = forward(le, None, config)
    cached, mask = pair.le, pair.mask.array
    size = predictor.window.window_size()
    rows, cols = cached.shape
    assert rows >= size and cols >= size  # no padding in this test
    offsets = np.arange(size) - (size - 1) / 2
    profile = np.exp(-0.5 * (offsets / (sigma_fraction * size)) ** 2)
    weights = np.outer(profile, profile) / profile.max() ** 2
    total = np.zeros((rows, cols))
    norm = np.zeros((rows, cols))
    evaluated = 0
    for r in _starts(rows, size, stride):
        for c in _starts(cols, size, stride):
            if not mask[r : r + size, c : c + size].any():
                continue  # no breast in this window: skipped
            x = torch.from_numpy(np.ascontiguousarray(cached[r : r + size, c : c + size]))
            with torch.inference_mode():
                y = predictor.model.network(x[None, None])[0, 0].float().numpy()
            total[r : r + size, c : c + size] += weights * y
            norm[r : r + size, c : c + size] += weights
            evaluated += 1
    blended = np.full((rows, cols), window.fill_value, dtype=np.float32)
    blended[norm > 0] = (total[norm > 0] / norm[norm > 0]).astype(np.float32)
    expected = inverse(blended, pair.record, config).array

    prediction = predictor.predict(le)
    assert prediction.n_evaluated == evaluated > 0
    actual = predictor.predict_image(le).array
    breast = breast_mask_original(pair.record).array
    assert np.ptp(expected[breast]) > 1.0  # the check below compares real structure
    # stored units (the RC window is thousands wide): batching and float32 sums differ a bit
    np.testing.assert_allclose(actual, expected, rtol=0, atol=0.05)


def test_preview_is_one_pass(tiny_run: Path, phantom_exam: Path) -> None:
    preview = Predictor.load(tiny_run, TORCH, preview=True)
    prediction = preview.predict(read_image(le_path(phantom_exam)))
    assert prediction.n_windows == 0
    assert prediction.image.shape == (712, 598)


def test_refuses_a_recombined_image(predictor: Predictor, phantom_exam: Path) -> None:
    rc = read_image(phantom_exam / "P0001" / "L_CC_RC.dcm")
    with pytest.raises(InputFileError, match=r"a recombined image .*ImageType has RECOMBINED"):
        predictor.predict(rc)


def test_refuses_a_model_whose_window_does_not_fit(tmp_path: Path, phantom_exam: Path) -> None:
    """An 8-bit model (LE window 0-255) on 14-bit DICOM: the whole breast clips."""
    run = make_checkpoint(tmp_path / "run8" / "best.pt", preprocess=get_preset("8bit"))
    eight_bit = Predictor.load(run, TORCH)
    with pytest.raises(InputFileError, match=r"does not fit this image: 100% .*\[0, 255\]") as err:
        eight_bit.predict(read_image(le_path(phantom_exam)))
    assert "\n" not in str(err.value)
    assert "14-bit" in str(err.value)


def test_dicom_output_fields(predictor: Predictor, phantom_exam: Path) -> None:
    source_path = le_path(phantom_exam)
    le = read_image(source_path)
    synthetic = predictor.predict_image(le)
    source = read_source_header(source_path)
    settings = "dense sliding window 128 px, stride 16, mean blending; torch fp32 on cpu"
    ds = build_synthetic_dataset(synthetic, source, predictor.identity, (1700.0, 2400.0), settings)
    assert validate_mg_dataset(ds) == []
    assert ds.SOPClassUID == MG_FOR_PRESENTATION
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "AccessionNumber"):
        assert ds[keyword].value == source[keyword].value
    assert ds.SeriesInstanceUID != source.SeriesInstanceUID
    assert ds.SOPInstanceUID != source.SOPInstanceUID
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
    assert "SYNTHETIC" in ds.SeriesDescription
    description = ds.DerivationDescription
    assert predictor.identity.sha256 in description
    assert f"step {CHECKPOINT_STEP}" in description and "best.pt" in description
    assert source.SOPInstanceUID in description
    reference = ds.SourceImageSequence[0]
    assert reference.ReferencedSOPClassUID == source.SOPClassUID
    assert reference.ReferencedSOPInstanceUID == source.SOPInstanceUID
    assert ds.DerivationCodeSequence[0].CodeValue == "123110"
    assert ds.BurnedInAnnotation == "NO"
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert ds.BitsStored == source.BitsStored == 14
    for keyword in (
        "Rows",
        "Columns",
        "PixelSpacing",
        "ImagerPixelSpacing",
        "ImageLaterality",
        "ViewPosition",
        "PatientOrientation",
    ):
        assert ds[keyword].value == source[keyword].value, keyword
    # the same model, image and settings give the same UIDs (a re-run replaces, not adds)
    again = build_synthetic_dataset(
        synthetic, source, predictor.identity, (1700.0, 2400.0), settings
    )
    assert (again.SOPInstanceUID, again.SeriesInstanceUID) == (
        ds.SOPInstanceUID,
        ds.SeriesInstanceUID,
    )


def test_written_dicom_reads_back_with_the_same_geometry(
    predictor: Predictor, phantom_exam: Path, tmp_path: Path
) -> None:
    from cemsynth.inference.dicom_out import write_synthetic_dicom

    source_path = le_path(phantom_exam, "R_MLO")
    le = read_image(source_path)
    synthetic = predictor.predict_image(le)
    out = tmp_path / "synthetic.dcm"
    write_synthetic_dicom(out, synthetic, source_path, predictor.identity, (1700, 2400), "test")
    ds = pydicom.dcmread(out, force=False)
    assert validate_mg_dataset(ds) == []
    back = read_image(out)
    assert back.shape == le.shape
    assert back.meta.pixel_spacing_mm == le.meta.pixel_spacing_mm
    assert (back.meta.laterality, back.meta.view) == (le.meta.laterality, le.meta.view)
    assert back.meta.study_uid == le.meta.study_uid
    np.testing.assert_array_equal(back.array, np.rint(synthetic.array))
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write left nothing behind


def test_cached_grid_matches_preprocessing(predictor: Predictor, phantom_exam: Path) -> None:
    le = read_image(le_path(phantom_exam))
    pair = forward(le, None, predictor.preprocess_config)
    result = predictor.predict_cached(pair.le, pair.mask.array)
    assert result.output.shape == pair.le.shape
    assert np.all(np.abs(result.output) <= 1.0)
