"""Loss functions of the cycle-GAN, and a differentiable SSIM (pure torch functions).

All images are float32 ``(N, C, H, W)`` in the cached intensity domain [-1, 1] (data range 2).

The paper (Methods, "Cycle-GAN"): "a perceptual-based cycle-loss with equal weighting between
the mean-absolute-error and the structural similarity index (SSIM), a least-squares error
discriminator loss, and a lambda loss term of ten in the overall identity loss". Here:

- :func:`lsgan_discriminator_loss`, :func:`lsgan_generator_loss`: least-squares GAN (Mao et
  al.) with targets 1 (real) and 0 (generated);
- :func:`mae_ssim_loss`: ``mae_weight * MAE + ssim_weight * (1 - SSIM)`` over the whole batch,
  0.5 / 0.5 by default; used for the cycle term and for the paired (supervised) term;
- :func:`mae_loss`: the identity term.

How these are weighted into the generator objective is :class:`LossWeights`; the defaults and
the reasoning behind them are in ``docs/training.md``.

SSIM follows Wang et al. (2004) exactly as scikit-image computes it with
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=2)``: an 11-tap Gaussian window (sigma 1.5, truncated at 3.5 sigma), population
(co)variances, ``C1 = (0.01 R)^2``, ``C2 = (0.03 R)^2``, and the mean over the pixels at least
5 pixels from the border (scikit-image filters the whole image and then crops that strip; a
"valid" convolution gives the same numbers without depending on the border mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 2.0
"""Width of the [-1, 1] intensity domain."""


def gaussian_window(
    size: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Normalised 1-D Gaussian taps, shape ``(size,)``, centred (``size`` odd)."""
    if size % 2 != 1:
        raise ValueError(f"window size must be odd, got {size}")
    half = size // 2
    x = torch.arange(-half, half + 1, device=device, dtype=torch.float64)
    taps = torch.exp(-0.5 * (x / sigma) ** 2)
    return (taps / taps.sum()).to(dtype)


def _filter(x: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filter of ``(N, C, H, W)``, one channel at a time."""
    channels = x.shape[1]
    size = taps.numel()
    rows = taps.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(x, rows, groups=channels), cols, groups=channels)


def ssim_map(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = DATA_RANGE,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Local SSIM of ``x`` against ``y``, differentiable in both.

    Args:
        x, y: ``(N, C, H, W)``, same shape, ``H, W >= window``; computed in float32 at least.
        data_range: max - min of the intensity domain (2 for [-1, 1]).
        window, sigma: Gaussian window side (odd) and standard deviation in pixels.

    Returns:
        ``(N, C, H - window + 1, W - window + 1)``: the SSIM of each full window, i.e. of each
        pixel at least ``window // 2`` from the border (the region scikit-image averages).
    """
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes differ, {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.ndim != 4:
        raise ValueError(f"ssim: expected (N, C, H, W), got {tuple(x.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim: images must be at least {window} pixels on each side")
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    taps = gaussian_window(window, sigma, device=x.device, dtype=dtype)
    # one filter call for the five local moments
    n = x.shape[0]
    moments = _filter(torch.cat([x, y, x * x, y * y, x * y]), taps)
    mu_x, mu_y, xx, yy, xy = moments.split(n)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    return numerator / denominator


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = DATA_RANGE,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean SSIM over the whole batch (a scalar); see :func:`ssim_map`.

    For one image this equals scikit-image's ``structural_similarity(x, y,
    gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=2)``.
    """
    return ssim_map(x, y, data_range, window, sigma).mean()


def masked_ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    data_range: float = DATA_RANGE,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> torch.Tensor:
    """Mean local SSIM over the pixels where ``mask`` is true (e.g. inside the breast).

    ``mask``: bool ``(N, C, H, W)``; only its full-window region counts (the border strip of
    ``window // 2`` pixels is left out, as in :func:`ssim`). Returns NaN if no pixel counts.
    """
    values = ssim_map(x, y, data_range, window, sigma)
    half = window // 2
    inner = mask[..., half : mask.shape[-2] - half, half : mask.shape[-1] - half]
    weights = inner.to(values.dtype)
    return (values * weights).sum() / weights.sum()


def mae_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all pixels of the batch (a scalar, intensity units of [-1, 1])."""
    return (x.float() - y.float()).abs().mean()


ENHANCEMENT_LOSS_SIGMAS_PX = (2.0, 12.0)
"""Difference-of-Gaussians scales of :func:`enhancement_weights` (0.8 and 4.8 mm at 0.4 mm):
a lesion-sized bump minus its surroundings."""
ENHANCEMENT_Z_SPAN = 3.0
"""The weight grows over this many units of z above the floor, then stays."""
BREAST_LE_FLOOR = -0.999
"""LE above this is breast: the cache fills everything outside the breast with -1."""


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter of ``(N, C, H, W)``, truncated at 3 sigma, mirrored borders
    (scipy.ndimage.gaussian_filter's ``mode="mirror"``, ``truncate=3``). Needs H, W > 3 sigma."""
    radius = max(int(3.0 * sigma + 0.5), 1)
    taps = gaussian_window(2 * radius + 1, sigma, device=x.device, dtype=x.dtype)
    return _filter(F.pad(x, (radius, radius, radius, radius), mode="reflect"), taps)


def enhancement_weights(
    le: torch.Tensor, rc: torch.Tensor, strength: float, z_floor: float
) -> torch.Tensor:
    """Per-pixel loss weights that favour enhancing pixels, from the RC target alone.

    ``z`` is the difference of Gaussians of the RC inside the breast (normalised convolution
    at :data:`ENHANCEMENT_LOSS_SIGMAS_PX`, so the skin edge does not count as enhancement)
    over its root mean square inside the breast of the batch; the weight is
    ``1 + strength * clip(z - z_floor, 0, ENHANCEMENT_Z_SPAN)``, divided by its batch mean so
    the loss keeps its scale. ``le``, ``rc``: float32 ``(N, 1, H, W)`` in [-1, 1] (LE only
    locates the breast). Returns float32 ``(N, 1, H, W)``, no gradient; all ones when
    ``strength`` is 0. Uses no truth mask, so it applies to clinical data.
    """
    with torch.no_grad():
        if strength == 0:
            return torch.ones_like(rc, dtype=torch.float32)
        inside = (le > BREAST_LE_FLOOR).float()
        rc = rc.float()

        def inside_mean(sigma: float) -> torch.Tensor:
            return gaussian_blur(rc * inside, sigma) / gaussian_blur(inside, sigma).clamp_min(1e-3)

        small, large = ENHANCEMENT_LOSS_SIGMAS_PX
        dog = (inside_mean(small) - inside_mean(large)) * inside
        spread = (dog.square().sum() / inside.sum().clamp_min(1.0)).sqrt().clamp_min(1e-6)
        excess = (dog / spread - z_floor).clamp(0.0, ENHANCEMENT_Z_SPAN)
        weights = 1.0 + strength * excess
        return weights / weights.mean()


def weighted_mae_loss(x: torch.Tensor, y: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``mean(weights * |x - y|)`` over the batch; equals :func:`mae_loss` for unit weights."""
    return (weights * (x.float() - y.float()).abs()).mean()


def mae_ssim_loss(
    x: torch.Tensor, y: torch.Tensor, mae_weight: float, ssim_weight: float
) -> torch.Tensor:
    """``mae_weight * MAE(x, y) + ssim_weight * (1 - SSIM(x, y))`` over the whole batch.

    Zero when ``x == y``. The paper weights both by 0.5 (``TrainConfig.loss_mae`` and
    ``loss_ssim``); then the loss is at most 0.5 * 2 + 0.5 * 2 = 2 in [-1, 1]. A term of
    weight 0 is not computed (SSIM costs five filtering passes and their backward).
    """
    total = mae_weight * mae_loss(x, y) if mae_weight else None
    if ssim_weight:
        term = ssim_weight * (1.0 - ssim(x, y))
        total = term if total is None else total + term
    return total if total is not None else x.new_zeros(())


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """``0.5 * (mean((D(real) - 1)^2) + mean(D(fake)^2))``: real scores to 1, generated to 0.

    The factor 0.5 halves the discriminator's step relative to the generator's, as in the
    CycleGAN paper.
    """
    real = real_scores.float()
    fake = fake_scores.float()
    return 0.5 * (((real - 1.0) ** 2).mean() + (fake**2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """``mean((D(G(x)) - 1)^2)``: the generator wants its images scored as real."""
    return ((fake_scores.float() - 1.0) ** 2).mean()


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator objective; the defaults live in ``TrainConfig`` (and the
    reasoning behind them in ``docs/training.md``).

    Generator loss, summed over both directions (LE -> RC and RC -> LE)::

        adversarial * LSGAN(D(G(x)))
        + cycle * [mae * MAE(F(G(x)), x) + ssim * (1 - SSIM(F(G(x)), x))]
        + identity * MAE(G(y), y)
        + paired * [mae * MAE(G(x), y) + ssim * (1 - SSIM(G(x), y))]

    With ``enhancement`` > 0 the LE -> RC paired MAE is weighted per pixel by
    :func:`enhancement_weights` (``enhancement`` its strength, ``enhancement_z`` its floor).
    """

    adversarial: float
    cycle: float
    identity: float
    paired: float
    mae: float
    ssim: float
    enhancement: float = 0.0
    enhancement_z: float = 1.0

    def __post_init__(self) -> None:
        for name in ("adversarial", "cycle", "identity", "paired", "mae", "ssim", "enhancement"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"loss weight {name} must be a finite number >= 0, got {value}")
        if not math.isfinite(self.enhancement_z):
            raise ValueError(f"enhancement_z must be a finite number, got {self.enhancement_z}")
