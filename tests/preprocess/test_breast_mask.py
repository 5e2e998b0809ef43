"""Otsu breast mask against a constructed image with a known answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cemsynth.errors import InputFileError
from cemsynth.preprocess.crop import BBox
from cemsynth.preprocess.mask import breast_mask


def _constructed() -> tuple[np.ndarray, np.ndarray]:
    """Background 100; breast block 2000 with a dark (150) hole; a separate bright marker."""
    image = np.full((40, 50), 100.0, dtype=np.float32)
    image[5:30, 0:20] = 2000.0  # breast against the left edge
    image[12:16, 6:10] = 150.0  # fat hole: below threshold, but inside the breast
    image[35:38, 40:43] = 2500.0  # a lead marker, smaller than the breast
    expected = np.zeros((40, 50), dtype=bool)
    expected[5:30, 0:20] = True
    return image, expected


def test_mask_is_largest_region_with_holes_filled() -> None:
    image, expected = _constructed()
    mask, record = breast_mask(image, source="x.dcm", subsample=1)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, expected)
    assert record.bbox == BBox(5, 30, 0, 20)
    assert 150.0 <= record.threshold < 2000.0
    assert record.breast_fraction == pytest.approx(expected.mean())


def test_holes_kept_when_asked() -> None:
    image, expected = _constructed()
    mask, _ = breast_mask(image, source="x.dcm", subsample=1, fill_holes=False)
    expected[12:16, 6:10] = False
    np.testing.assert_array_equal(mask, expected)


def test_dark_polarity() -> None:
    image, expected = _constructed()
    inverted = (3000.0 - image).astype(np.float32)
    mask, _ = breast_mask(inverted, source="x.dcm", polarity="dark", subsample=1)
    np.testing.assert_array_equal(mask, expected)


def test_blank_image_names_the_file() -> None:
    with pytest.raises(InputFileError) as info:
        breast_mask(np.full((8, 8), 7.0, dtype=np.float32), source=Path("blank.dcm"))
    assert info.value.path == Path("blank.dcm")
    assert "blank" in info.value.problem


def test_tiny_region_is_no_breast() -> None:
    image = np.zeros((100, 100), dtype=np.float32)
    image[0, 0] = 1.0
    with pytest.raises(InputFileError, match="no breast found"):
        breast_mask(image, source="speck.dcm", subsample=1)


def test_nan_is_reported() -> None:
    image = np.ones((4, 4), dtype=np.float32)
    image[1, 1] = np.nan
    with pytest.raises(InputFileError, match="NaN"):
        breast_mask(image, source="nan.dcm")


def test_log_domain_separates_black_background_from_dark_fat() -> None:
    # Processed 8-bit image: background 0 (40 %), fat 25 (51 %), dense tissue 220 (9 %).
    image = np.zeros((100, 100), dtype=np.float32)
    image[:, :60] = 25.0
    image[20:50, 10:40] = 220.0
    breast = np.zeros((100, 100), dtype=bool)
    breast[:, :60] = True
    linear, _ = breast_mask(image, source="x.png", subsample=1)
    np.testing.assert_array_equal(linear, image == 220.0)  # linear Otsu finds dense tissue
    logged, record = breast_mask(image, source="x.png", subsample=1, log_domain=True)
    np.testing.assert_array_equal(logged, breast)
    assert 0.0 < record.threshold < 25.0


def test_fast_fill_holes_matches_scipy() -> None:
    from scipy import ndimage

    from cemsynth.preprocess.mask import _fill_holes

    rng = np.random.default_rng(3)
    for _ in range(5):
        mask = rng.random((60, 70)) < 0.6
        np.testing.assert_array_equal(_fill_holes(mask), ndimage.binary_fill_holes(mask))
