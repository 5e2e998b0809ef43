"""Pixel metrics against scikit-image and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from cemsynth.evaluation import metrics as px


def _pair(shape: tuple[int, int] = (96, 80), noise: float = 0.2, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    clean = (np.sin(rows / 7.0) * np.cos(cols / 5.0)).astype(np.float32)
    noisy = (clean + rng.normal(0, noise, shape)).astype(np.float32)
    return np.clip(clean, -1, 1), np.clip(noisy, -1, 1)


def test_ssim_matches_scikit_image_gaussian_ssim() -> None:
    a, b = _pair()
    reference = structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        data_range=2.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert px.ssim(a, b, 2.0) == pytest.approx(reference, abs=1e-5)


def test_masked_ssim_is_the_mean_of_the_ssim_map_over_the_mask() -> None:
    a, b = _pair(seed=1)
    _, full = structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        data_range=2.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    mask = np.zeros(a.shape, dtype=bool)
    mask[10:60, 20:70] = True
    assert px.ssim(a, b, 2.0, mask) == pytest.approx(float(full[mask].mean()), abs=1e-5)
    inside, whole = px.ssim_pair(a, b, 2.0, mask)
    assert inside == pytest.approx(px.ssim(a, b, 2.0, mask))
    assert whole == pytest.approx(px.ssim(a, b, 2.0))


def test_ssim_on_8bit_images_matches_scikit_image() -> None:
    a, b = _pair(seed=2)
    a8, b8 = px.to_uint8_minmax(a), px.to_uint8_minmax(b)
    reference = structural_similarity(
        a8, b8, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert px.ssim(a8.astype(np.float64), b8.astype(np.float64), 255.0) == pytest.approx(
        reference, abs=1e-5
    )


def test_psnr_matches_scikit_image_and_mae_is_hand_computed() -> None:
    a, b = _pair(seed=3)
    assert px.psnr(a, b, 2.0) == pytest.approx(
        peak_signal_noise_ratio(a.astype(np.float64), b.astype(np.float64), data_range=2.0)
    )
    assert px.psnr(a, a, 2.0) == math.inf
    x = np.array([[0.0, 1.0], [2.0, 4.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0]])
    assert px.mae(x, y) == pytest.approx((1 + 0 + 2 + 4) / 4)
    mask = np.array([[True, False], [False, True]])
    assert px.mae(x, y, mask) == pytest.approx(2.5)
    # MSE inside the mask = (1 + 16) / 2; PSNR = 10 log10(4 / 8.5)
    assert px.psnr(x, y, 2.0, mask) == pytest.approx(10 * math.log10(4 / 8.5))
    assert math.isnan(px.mae(x, y, np.zeros((2, 2), dtype=bool)))


def test_ms_ssim_one_scale_is_ssim_identical_is_one_and_noise_lowers_it() -> None:
    a, b = _pair((200, 200), noise=0.1, seed=4)
    assert px.ms_ssim(a, b, 2.0, weights=(1.0,)) == pytest.approx(px.ssim(a, b, 2.0), abs=1e-9)
    assert px.ms_ssim(a, a, 2.0) == pytest.approx(1.0)
    _, worse = _pair((200, 200), noise=0.4, seed=4)
    assert 0 < px.ms_ssim(a, worse, 2.0) < px.ms_ssim(a, b, 2.0) < 1
    # five scales need (2 * 5) * 2**4 + 1 = 161 pixels on the short side
    assert px.ms_ssim_min_side(1.5, 5) == 161
    assert math.isnan(px.ms_ssim(a[:160], b[:160], 2.0))


def test_uint8_minmax_and_binning() -> None:
    image = np.array([[10.0, 20.0], [30.0, 110.0]], dtype=np.float32)
    assert px.to_uint8_minmax(image).tolist() == [[0, 26], [51, 255]]
    assert px.to_uint8_minmax(np.ones((3, 3))).max() == 0
    binned = px.bin_image(np.arange(20, dtype=np.float32).reshape(4, 5), 2)
    assert binned.tolist() == [[3.0, 5.0], [13.0, 15.0]]
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], dtype=bool)
    assert px.bin_mask(mask, 2).tolist() == [[True, False]]
