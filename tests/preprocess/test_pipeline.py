"""forward/inverse: round trip within interpolation error, records, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cemsynth.errors import ConfigError, InputFileError
from cemsynth.imaging import Image, ImageMeta, Mask
from cemsynth.preprocess import (
    PreprocessConfig,
    PreprocessRecord,
    breast_mask_original,
    forward,
    inverse,
    mask_to_cached_grid,
)
from cemsynth.preprocess.synthetic import smooth_breast_pair

# Round-trip tolerance inside the breast, in RC stored units, for the smooth synthetic pair
# (RC window width 700): bilinear down by 4 and back up. Documented in docs/data-pipeline.md.
ROUND_TRIP_MAX_ERROR = 1.0
ROUND_TRIP_MEAN_ERROR = 0.1


@pytest.mark.parametrize(
    "config",
    [
        PreprocessConfig(),
        PreprocessConfig(downsample_factor=None, target_spacing_mm=0.3),
        PreprocessConfig(anti_alias=True),
    ],
    ids=["factor4", "spacing0.3", "antialias"],
)
def test_round_trip_inside_the_breast(config: PreprocessConfig) -> None:
    le, rc, truth = smooth_breast_pair((600, 480), noise_std=5.0)
    pair = forward(le, rc, config)
    assert pair.rc is not None
    for array in (pair.le, pair.rc):
        assert array.dtype == np.float32
        assert array.shape == pair.record.cached_shape
        assert array.min() >= -1.0 and array.max() <= 1.0
    back = inverse(pair.rc, pair.record, config)
    assert back.shape == le.shape
    assert back.units == "stored"
    assert back.array.dtype == np.float32
    error = np.abs(back.array - rc.array)[truth]
    assert error.max() < ROUND_TRIP_MAX_ERROR
    assert error.mean() < ROUND_TRIP_MEAN_ERROR
    # background value outside the original-grid breast mask
    original_mask = breast_mask_original(pair.record).array
    np.testing.assert_array_equal(back.array[~original_mask], config.background_value)
    # the Otsu mask is the constructed breast up to the noisy skin line
    assert np.mean(original_mask != truth) < 0.001


def test_forward_grid_and_record() -> None:
    le, rc, _ = smooth_breast_pair((400, 320))
    pair = forward(le, rc, PreprocessConfig())
    record = pair.record
    assert record.original_shape == (400, 320)
    bbox = record.mask.bbox
    assert record.resample.in_shape == bbox.shape
    assert record.cached_shape == (round(bbox.shape[0] / 4), round(bbox.shape[1] / 4))
    assert record.cached_spacing_mm == pytest.approx((0.4, 0.4), rel=0.01)
    assert pair.mask.pixel_spacing_mm == record.cached_spacing_mm
    assert pair.mask.array.dtype == np.bool_
    assert bbox.col0 == 0  # the breast touches the chest-wall edge


def test_le_only_forward_for_inference() -> None:
    le, _, _ = smooth_breast_pair((400, 320))
    pair = forward(le, None, PreprocessConfig())
    assert pair.rc is None
    model_output = np.zeros(pair.record.cached_shape, dtype=np.float32)  # mid RC window
    back = inverse(model_output, pair.record, PreprocessConfig())
    inside = breast_mask_original(pair.record).array
    np.testing.assert_allclose(back.array[inside], 2050.0)


def test_record_dict_round_trip() -> None:
    le, rc, _ = smooth_breast_pair((200, 160))
    le = le.with_meta(source=Path("/data/le.dcm"), patient_id="P1")
    record = forward(le, rc, PreprocessConfig()).record
    again = PreprocessRecord.from_dict(record.to_dict(), record.breast_mask_crop)
    assert again.to_dict() == record.to_dict()
    assert again.meta == record.meta
    np.testing.assert_array_equal(again.breast_mask_crop, record.breast_mask_crop)


def test_size_mismatch_names_both_files() -> None:
    le, _, _ = smooth_breast_pair((200, 160))
    le = le.with_meta(source=Path("le.dcm"))
    rc = Image(np.zeros((200, 161), dtype=np.float32), ImageMeta((0.1, 0.1), source=Path("rc.dcm")))
    with pytest.raises(InputFileError) as info:
        forward(le, rc, PreprocessConfig())
    assert info.value.path == Path("rc.dcm")
    assert "le.dcm" in info.value.problem and "200 x 161" in info.value.problem


def test_blank_le_is_an_input_error() -> None:
    blank = Image(np.full((64, 64), 1000.0, dtype=np.float32), ImageMeta((0.1, 0.1)))
    with pytest.raises(InputFileError, match="blank"):
        forward(blank, None, PreprocessConfig())


def test_inverse_refuses_another_config_and_wrong_shape() -> None:
    le, rc, _ = smooth_breast_pair((200, 160))
    pair = forward(le, rc, PreprocessConfig())
    assert pair.rc is not None
    with pytest.raises(ConfigError, match="not the one that made"):
        inverse(pair.rc, pair.record, PreprocessConfig(rc_window=(0.0, 1.0)))
    with pytest.raises(ValueError, match="cached shape"):
        inverse(pair.rc[:-1], pair.record, PreprocessConfig())


def test_truth_mask_to_cached_grid() -> None:
    le, rc, truth = smooth_breast_pair((400, 320))
    pair = forward(le, rc, PreprocessConfig())
    cached = mask_to_cached_grid(Mask(truth, (0.1, 0.1)), pair.record)
    assert cached.shape == pair.record.cached_shape
    assert cached.array.dtype == np.bool_
    # the truth breast and the Otsu breast agree on the cached grid too
    assert np.mean(cached.array != pair.mask.array) < 0.01
    with pytest.raises(ValueError, match="does not match"):
        mask_to_cached_grid(truth[:-1], pair.record)
