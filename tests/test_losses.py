"""Losses against hand-computed values, and SSIM against scikit-image."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from cemsynth.losses import (
    enhancement_weights,
    gaussian_blur,
    gaussian_window,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
    mae_loss,
    mae_ssim_loss,
    masked_ssim,
    ssim,
    ssim_map,
    weighted_mae_loss,
)

C1 = (0.01 * 2.0) ** 2  # data range 2
C2 = (0.03 * 2.0) ** 2


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array)[None, None]


def _skimage(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2.0
        )
    )


@pytest.mark.parametrize("shape", [(64, 64), (37, 53), (11, 11), (128, 40)])
def test_ssim_matches_scikit_image(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.uniform(-1, 1, shape)
    b = np.clip(0.6 * a + rng.normal(0, 0.3, shape), -1, 1)
    reference = _skimage(a, b)
    assert ssim(_t(a), _t(b)).item() == pytest.approx(reference, abs=1e-12)  # float64
    ours32 = ssim(_t(a).float(), _t(b).float()).item()
    assert ours32 == pytest.approx(reference, abs=1e-5)


def test_batch_ssim_is_the_mean_over_images() -> None:
    rng = np.random.default_rng(1)
    a = rng.uniform(-1, 1, (3, 40, 40))
    b = rng.uniform(-1, 1, (3, 40, 40))
    batch = ssim(torch.from_numpy(a)[:, None], torch.from_numpy(b)[:, None]).item()
    assert batch == pytest.approx(np.mean([_skimage(a[i], b[i]) for i in range(3)]), abs=1e-12)


def test_ssim_of_two_constant_images_by_hand() -> None:
    # constants: no variance, no covariance; SSIM = (2ab + C1) / (a^2 + b^2 + C1) * C2 / C2
    a, b = 0.5, -0.5
    x = torch.full((1, 1, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 1, 16, 16), b, dtype=torch.float64)
    expected = (2 * a * b + C1) / (a * a + b * b + C1)  # -0.4996 / 0.5004
    assert ssim(x, y).item() == pytest.approx(expected, abs=1e-12)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-12)
    # the loss mix: 0.5 * MAE (= 1) + 0.5 * (1 - SSIM)
    loss = mae_ssim_loss(x, y, mae_weight=0.5, ssim_weight=0.5).item()
    assert loss == pytest.approx(0.5 * 1.0 + 0.5 * (1.0 - expected), abs=1e-12)
    assert mae_ssim_loss(x, x, mae_weight=0.5, ssim_weight=0.5).item() == pytest.approx(0.0)


def test_gaussian_window_is_the_11_tap_sigma_1_5_kernel() -> None:
    taps = gaussian_window().double()
    x = np.arange(-5, 6)
    expected = np.exp(-(x**2) / (2 * 1.5**2))
    np.testing.assert_allclose(taps.numpy(), expected / expected.sum(), rtol=1e-6)


def test_ssim_map_shape_and_masked_mean() -> None:
    rng = np.random.default_rng(2)
    a = _t(rng.uniform(-1, 1, (30, 24)))
    b = _t(rng.uniform(-1, 1, (30, 24)))
    assert ssim_map(a, b).shape == (1, 1, 20, 14)
    everywhere = torch.ones_like(a, dtype=torch.bool)
    assert masked_ssim(a, b, everywhere).item() == pytest.approx(ssim(a, b).item(), abs=1e-12)
    # only the left half counts: the mean of the map's left columns (crop of 5 each side)
    left = torch.zeros_like(everywhere)
    left[..., :12] = True
    expected = ssim_map(a, b)[..., :7].mean().item()
    assert masked_ssim(a, b, left).item() == pytest.approx(expected, abs=1e-12)


def test_ssim_is_differentiable() -> None:
    rng = np.random.default_rng(3)
    x = _t(rng.uniform(-1, 1, (12, 12))).requires_grad_(True)
    y = _t(rng.uniform(-1, 1, (12, 12)))
    assert torch.autograd.gradcheck(lambda v: ssim(v, y), (x,), fast_mode=True)


def test_ssim_rejects_small_or_mismatched_images() -> None:
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 1, 10, 20), torch.zeros(1, 1, 10, 20))
    with pytest.raises(ValueError, match="shapes differ"):
        ssim(torch.zeros(1, 1, 20, 20), torch.zeros(1, 1, 20, 21))


def test_mae_by_hand() -> None:
    x = torch.zeros(2, 1, 4, 4)
    y = torch.full((2, 1, 4, 4), 0.5)
    y[1] = -1.0
    assert mae_loss(x, y).item() == pytest.approx((0.5 + 1.0) / 2)


def test_least_squares_adversarial_losses_by_hand() -> None:
    ones, zeros, halves = (
        torch.ones(2, 1, 3, 3),
        torch.zeros(2, 1, 3, 3),
        torch.full((2, 1, 3, 3), 0.5),
    )
    assert lsgan_discriminator_loss(ones, zeros).item() == 0.0  # perfect discriminator
    assert lsgan_discriminator_loss(halves, halves).item() == pytest.approx(0.5 * (0.25 + 0.25))
    assert lsgan_discriminator_loss(zeros, ones).item() == pytest.approx(1.0)
    assert lsgan_generator_loss(ones).item() == 0.0
    assert lsgan_generator_loss(halves).item() == pytest.approx(0.25)
    assert lsgan_generator_loss(zeros).item() == pytest.approx(1.0)


@pytest.mark.parametrize("sigma", [1.0, 2.0, 4.5])
def test_gaussian_blur_matches_scipy(sigma: float) -> None:
    from scipy import ndimage

    image = np.random.default_rng(3).normal(size=(40, 37)).astype(np.float32)
    ours = gaussian_blur(_t(image), sigma)[0, 0].numpy()
    expected = ndimage.gaussian_filter(image, sigma, mode="mirror", truncate=3.0)
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def _breast_with_a_disc(contrast: float) -> tuple[torch.Tensor, torch.Tensor]:
    """LE: a 64 x 64 breast on the left 48 columns (air, -1, on the right); RC: flat -0.2 in
    the breast with a radius-4 disc ``contrast`` brighter at (32, 20), -0.6 in the air."""
    rows, cols = np.mgrid[:64, :64]
    breast = cols < 48
    le = np.where(breast, 0.0, -1.0).astype(np.float32)
    disc = (rows - 32) ** 2 + (cols - 20) ** 2 <= 16
    rc = np.where(breast, -0.2 + contrast * disc, -0.6).astype(np.float32)
    rc += np.random.default_rng(0).normal(0, 0.01, rc.shape).astype(np.float32)
    return _t(le), _t(rc)


def test_enhancement_weights_favour_a_bright_disc_not_the_skin_edge() -> None:
    le, rc = _breast_with_a_disc(contrast=0.8)
    weights = enhancement_weights(le, rc, strength=8.0, z_floor=1.0)[0, 0].numpy()
    assert weights.shape == (64, 64) and weights.dtype == np.float32
    assert abs(weights.mean() - 1.0) < 1e-5  # the loss keeps its scale
    disc = weights[30:35, 18:23].mean()
    flat = weights[5:15, 5:15].mean()
    edge = weights[:, 44:48].mean()  # inside the breast, next to the air
    assert disc > 5 * flat, (disc, flat)
    assert edge < 1.5 * flat, (edge, flat)  # the air outside is not "surroundings"
    assert np.allclose(weights[5:15, 5:15], flat, rtol=1e-3)  # no enhancement, one weight


def test_enhancement_weights_off_and_weighted_mae_by_hand() -> None:
    le, rc = _breast_with_a_disc(contrast=0.8)
    assert torch.equal(enhancement_weights(le, rc, 0.0, 1.0), torch.ones_like(rc))
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    y = torch.zeros_like(x)
    weights = torch.tensor([[[[4.0, 0.0], [0.0, 0.0]]]])
    assert weighted_mae_loss(x, y, weights).item() == 0.0  # 4 x |0 - 0| + 0 x the rest
    weights = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
    assert weighted_mae_loss(x, y, weights).item() == 3.0  # 4 x 3 / 4 pixels
    assert weighted_mae_loss(x, y, torch.ones_like(x)) == mae_loss(x, y)


def test_enhancement_weights_ignore_a_disc_below_the_floor() -> None:
    le, rc = _breast_with_a_disc(contrast=0.8)
    strict = enhancement_weights(le, rc, strength=8.0, z_floor=100.0)
    assert torch.allclose(strict, torch.ones_like(strict))
