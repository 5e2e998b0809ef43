"""Resampling: shapes, exact values for linear ramps, binary nearest-neighbour masks."""

from __future__ import annotations

import numpy as np
import pytest

from cemsynth.preprocess.resample import (
    plan_resample,
    resample_bilinear,
    resample_inverse,
    resample_nearest,
)


def test_plan_shapes_for_full_detector() -> None:
    record = plan_resample((2850, 2394), (0.1, 0.1), 4.0, None)
    assert record.out_shape == (713, 599)  # 712.5 and 598.5 round up
    assert record.scale == pytest.approx((2850 / 713, 2394 / 599))
    assert record.out_spacing_mm == pytest.approx((0.1 * 2850 / 713, 0.1 * 2394 / 599))
    assert plan_resample((2850, 2394), (0.1, 0.1), None, 1.0).out_shape == (285, 239)
    # 0.4 / 0.1 is 4.000000000000001 in floating point: still a factor of exactly four
    assert plan_resample((2850, 2394), (0.1, 0.1), None, 0.4).out_shape == (713, 599)
    # anisotropic input spacing reaches an isotropic target
    assert plan_resample((100, 100), (0.1, 0.2), None, 0.4).out_shape == (25, 50)


def test_bilinear_reproduces_a_linear_ramp() -> None:
    # Downsampling by 2 puts output pixel i at input coordinate 2 i + 0.5.
    ramp = np.tile(np.arange(8, dtype=np.float32), (4, 1))
    out = resample_bilinear(ramp, (2, 4))
    np.testing.assert_allclose(out, np.tile([0.5, 2.5, 4.5, 6.5], (2, 1)), atol=1e-6)
    assert out.dtype == np.float32


def test_bilinear_upsampling_hand_values() -> None:
    # Upsampling by 2: output j sits at (j + 0.5) / 2 - 0.5; the outer two are extrapolated.
    row = np.array([[0.0, 4.0]], dtype=np.float32)
    np.testing.assert_allclose(resample_bilinear(row, (1, 4)), [[-1.0, 1.0, 3.0, 5.0]], atol=1e-6)
    # a single input pixel is repeated
    np.testing.assert_allclose(resample_bilinear(row[:, :1], (3, 2)), 0.0)


def test_linear_ramp_survives_down_and_up_exactly() -> None:
    r, c = np.mgrid[0:37, 0:29].astype(np.float32)
    ramp = 3.0 * r - 2.0 * c + 5.0
    small = resample_bilinear(ramp, (9, 7))
    np.testing.assert_allclose(resample_bilinear(small, (37, 29)), ramp, atol=1e-3)


def test_constant_stays_constant_with_and_without_anti_aliasing() -> None:
    image = np.full((37, 23), 3.5, dtype=np.float32)
    for anti_alias in (False, True):
        np.testing.assert_allclose(resample_bilinear(image, (9, 6), anti_alias), 3.5, atol=1e-5)


def test_anti_aliasing_lowers_noise() -> None:
    noise = np.random.default_rng(0).normal(size=(400, 400)).astype(np.float32)
    plain = resample_bilinear(noise, (100, 100))
    smoothed = resample_bilinear(noise, (100, 100), anti_alias=True)
    assert smoothed.std() < 0.6 * plain.std()


def test_nearest_mask_stays_binary_and_picks_centres() -> None:
    mask = np.zeros((8, 8), dtype=bool)
    mask[:4, :4] = True  # the top-left quarter stays the top-left quarter
    out = resample_nearest(mask, (4, 4))
    assert out.dtype == np.bool_
    expected = np.zeros((4, 4), dtype=bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(out, expected)
    random_mask = np.random.default_rng(1).random((50, 40)) > 0.5
    assert set(np.unique(resample_nearest(random_mask, (13, 7)))) <= {False, True}


def test_inverse_returns_to_the_input_shape_and_smooth_values() -> None:
    r, c = np.mgrid[0:200, 0:160].astype(np.float32)
    smooth = np.sin(r / 30.0) + np.cos(c / 25.0)
    record = plan_resample(smooth.shape, (0.1, 0.1), 4.0, None)
    small = resample_bilinear(smooth, record.out_shape)
    assert small.shape == record.out_shape == (50, 40)
    back = resample_inverse(small, record)
    assert back.shape == (200, 160)
    # interpolation error of a 4x down-up cycle on this smooth field (values in [-2, 2])
    assert np.abs(back - smooth)[4:-4, 4:-4].max() < 0.02
    with pytest.raises(ValueError, match="expected an array of shape"):
        resample_inverse(smooth, record)
