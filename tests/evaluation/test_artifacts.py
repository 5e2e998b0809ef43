"""Seam and checkerboard indices on constructed images with and without each artifact."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from cemsynth.evaluation.artifacts import (
    checkerboard_index,
    periodic_artifact_index,
    seam_index,
)

SHAPE = (480, 400)


def breast() -> np.ndarray:
    rows, cols = np.mgrid[: SHAPE[0], : SHAPE[1]]
    return ((rows - 240) / 230.0) ** 2 + (cols / 380.0) ** 2 < 1.0


def anatomy(seed: int, noise: float) -> np.ndarray:
    """Smooth 'tissue' (correlation length 8 px) plus white noise of SD ``noise``."""
    rng = np.random.default_rng(seed)
    tissue = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 8.0) * 3.0
    return tissue + noise * rng.standard_normal(SHAPE)


def stitched(image: np.ndarray, stride: int, step: float) -> np.ndarray:
    """Mean-blended windows that each add their own offset: a staircase on the stride grid,
    the seam pattern of a sliding window whose windows disagree."""
    rng = np.random.default_rng(99)
    rows, cols = np.indices(SHAPE)
    offsets = rng.uniform(-step, step, size=(SHAPE[0] // stride + 1, SHAPE[1] // stride + 1))
    return image + offsets[rows // stride, cols // stride]


def checkerboard(image: np.ndarray, amplitude: float) -> np.ndarray:
    """The 2-then-4 pixel pattern of two stride-2 transposed convolutions."""
    rows, cols = np.indices(SHAPE)
    pattern = np.array([1.0, -0.6, 0.4, -0.8])
    return image + amplitude * pattern[rows % 4] * pattern[cols % 4]


@pytest.mark.parametrize("noise", [0.02, 0.2, 1.0])
def test_clean_images_score_about_one_whatever_the_noise(noise: float) -> None:
    image = anatomy(1, noise)
    assert seam_index(image, breast()) == pytest.approx(1.0, abs=0.12)
    assert checkerboard_index(image, breast()) == pytest.approx(1.0, abs=0.12)


@pytest.mark.parametrize("stride", [16, 32])
def test_window_seams_raise_the_seam_index_only(stride: int) -> None:
    """Steps of the size of the image's pixel noise, on the window grid of a smooth image
    (what a synthetic image with seams looks like)."""
    clean = anatomy(2, 0.01)
    seamed = stitched(clean, stride, step=0.05)
    assert seam_index(clean, breast()) < 1.15
    assert seam_index(seamed, breast()) > seam_index(clean, breast()) + 1.0
    # a staircase on a 16 or 32 pixel grid has no power at 1/4 and 1/2 cycle per pixel
    assert checkerboard_index(seamed, breast()) < checkerboard_index(clean, breast()) + 0.15


def test_checkerboard_raises_the_checkerboard_index_only() -> None:
    clean = anatomy(3, 0.05)
    patterned = checkerboard(clean, 0.05)
    assert checkerboard_index(patterned, breast()) > 3.0
    assert seam_index(patterned, breast()) == pytest.approx(seam_index(clean, breast()), abs=0.1)


def test_index_grows_with_the_artifact() -> None:
    clean = anatomy(4, 0.01)
    values = [seam_index(stitched(clean, 32, step), breast()) for step in (0.0, 0.02, 0.1)]
    assert values[0] < values[1] < values[2]


def test_scale_moves_the_period_to_the_scored_grid() -> None:
    """A stride-32 seam, 64 pixels apart on a grid 2x finer than the model's: found at
    scale 2 (the 32-pixel stride becomes 64 scored pixels), and a period-4 pattern on the
    model grid is a period-8 pattern on the scored one."""
    clean = anatomy(5, 0.01)
    seamed = stitched(clean, 64, 0.05)
    assert seam_index(seamed, breast(), scale=2.0) > seam_index(clean, breast(), scale=2.0) + 0.3
    rows, cols = np.indices(SHAPE)
    coarse = clean + 0.05 * np.where((cols // 4) % 2 == (rows // 4) % 2, 1.0, -1.0)
    assert checkerboard_index(coarse, breast(), scale=2.0) > 3.0
    assert checkerboard_index(coarse, breast(), scale=1.0) < 2.0


def test_too_small_regions_give_nan() -> None:
    small = np.zeros(SHAPE, dtype=bool)
    small[10:40, 10:40] = True
    assert math.isnan(seam_index(anatomy(6, 0.1), small))
    with pytest.raises(ValueError, match="at least 2"):
        periodic_artifact_index(anatomy(6, 0.1), breast(), 1.0)
