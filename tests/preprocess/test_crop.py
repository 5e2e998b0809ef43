"""Cropping to a bounding box and back: a tiny array with a known box."""

from __future__ import annotations

import numpy as np
import pytest

from cemsynth.preprocess.crop import BBox, bounding_box, crop, uncrop


def test_bounding_box_of_known_mask() -> None:
    mask = np.zeros((5, 6), dtype=bool)
    mask[1, 2] = True
    mask[3, 4] = True
    assert bounding_box(mask) == BBox(1, 4, 2, 5)
    assert bounding_box(np.zeros((3, 3), dtype=bool)) is None


def test_crop_and_uncrop_hand_values() -> None:
    array = np.arange(20, dtype=np.float32).reshape(4, 5)
    cropped, record = crop(array, BBox(1, 3, 2, 4))
    np.testing.assert_array_equal(cropped, [[7.0, 8.0], [12.0, 13.0]])
    assert record.original_shape == (4, 5)
    back = uncrop(cropped, record, fill=-1.0)
    expected = np.full((4, 5), -1.0, dtype=np.float32)
    expected[1:3, 2:4] = [[7.0, 8.0], [12.0, 13.0]]
    np.testing.assert_array_equal(back, expected)
    assert back.dtype == np.float32


def test_crop_is_a_copy() -> None:
    array = np.zeros((3, 3), dtype=np.float32)
    cropped, _ = crop(array, BBox(0, 2, 0, 2))
    cropped[0, 0] = 9.0
    assert array[0, 0] == 0.0


def test_box_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        crop(np.zeros((3, 3), dtype=np.float32), BBox(0, 4, 0, 2))
    with pytest.raises(ValueError, match="empty"):
        BBox(2, 2, 0, 1)


def test_bbox_list_round_trip() -> None:
    box = BBox(3, 9, 0, 4)
    assert BBox.from_list(box.to_list()) == box
    assert box.shape == (6, 4)
