"""forward/inverse on the physics phantom: Otsu finds the true breast, the round trip holds.

Round trip ``inverse(forward(rc))`` against the RC image itself, inside the breast:

- factor 1 (the small phantom, already 0.4 mm, with the ``phantom`` preset's 0.4 mm target):
  no resampling happens, only the window there and back: bit-exact on the phantom's integer
  values (within :data:`EXACT_ATOL`, float32 rounding, on the 8-bit CDD-CESM images).
- factor 4 (the full-size 0.1 mm phantom with the default ``paper`` preset, 0.4 mm cached
  grid): interpolation error only. Quantum noise, which no coarser grid can keep, is switched
  off (10^12 quanta per mm^2), so what is left is the anatomy finer than 0.4 mm (vessel and
  lesion edges, spicules). Measured on the seed-0 patient (4 images, 16 pixels = 1.6 mm inside
  the skin line, 8 pixels from clipped values): max 47.5 stored units (at lesion edges), 99th
  percentile 5.3-7.5, mean 0.74-1.27; the RC window is 700 units wide. A grid off by two
  original pixels gives a mean of 1.7-2.9, which the mean tolerance rejects.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cemsynth.io.manifest import PairRecord, read_manifest
from cemsynth.io.reader import read_image
from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.preprocess import PreprocessConfig, breast_mask_original, forward, get_preset, inverse
from cemsynth.preprocess.cache import read_truth_mask

EXACT_ATOL = 1e-3
"""Factor 1 on 8-bit images: float32 rounding of window and unwindow (measured 1.5e-5)."""
SKIN_MARGIN_PX = 16
CLIP_MARGIN_PX = 8
FULL_MAX_ERROR = 60.0
FULL_P99_ERROR = 10.0
FULL_MEAN_ERROR = 1.5
"""Factor 4 on the noise-free full-size phantom, stored units (measured: see the docstring)."""


def _cohort(out: Path, size: str, config: PhantomConfig) -> list[PairRecord]:
    result = write_cohort(
        out, n_patients=1, seed=0, pixel_mm=0.1, size=size, config=config, workers=1
    )
    return read_manifest(result.manifest_path)


@pytest.fixture(scope="module")
def small_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[PairRecord]:
    return _cohort(tmp_path_factory.mktemp("phantom") / "small", "small", PhantomConfig())


@pytest.fixture(scope="module")
def noise_free_full_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[PairRecord]:
    config = dataclasses.replace(PhantomConfig(), le_quanta_per_mm2=1e12, he_quanta_per_mm2=1e12)
    return _cohort(tmp_path_factory.mktemp("phantom") / "full", "full", config)


RoundTrip = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, float]]


def _round_trip(pair: PairRecord, config: PreprocessConfig) -> RoundTrip:
    """(original RC, RC after the round trip, pixels to compare, resampling scale)."""
    le, rc = read_image(pair.le_path), read_image(pair.rc_path)
    result = forward(le, rc, config)
    assert result.rc is not None
    back = inverse(result.rc, result.record, config).array
    breast = breast_mask_original(result.record).array
    low, high = config.rc_window
    in_window = (rc.array >= low) & (rc.array <= high)  # clipped values come back clipped
    scale = result.record.resample.scale
    if max(scale) == 1.0:
        compare = breast & in_window
    else:  # away from the skin line and from clipped values
        compare = ndimage.binary_erosion(
            breast, iterations=SKIN_MARGIN_PX
        ) & ndimage.binary_erosion(in_window, iterations=CLIP_MARGIN_PX, border_value=1)
    assert compare.sum() > 0.8 * breast.sum()
    return rc.array, back, compare, scale


def test_otsu_mask_matches_phantom_truth(small_pairs: list[PairRecord]) -> None:
    config = get_preset("phantom")
    for pair in small_pairs:
        assert pair.breast_mask_path is not None
        le = read_image(pair.le_path)
        result = forward(le, None, config)
        truth = read_truth_mask(Path(pair.breast_mask_path), le.shape)
        assert np.mean(breast_mask_original(result.record).array != truth) < 0.002


def test_round_trip_without_resampling_is_exact(small_pairs: list[PairRecord]) -> None:
    """The small phantom is already on the 0.4 mm grid: factor 1, nothing to interpolate."""
    config = get_preset("phantom")
    for pair in small_pairs:
        original, back, compare, scale = _round_trip(pair, config)
        assert scale == (1.0, 1.0)
        np.testing.assert_array_equal(back[compare], original[compare])


@pytest.mark.slow
def test_round_trip_full_size_default_preset_is_interpolation_error_only(
    noise_free_full_pairs: list[PairRecord],
) -> None:
    """0.1 mm -> 0.4 mm (the default factor of four) and back, noise-free phantom."""
    config = PreprocessConfig()
    assert len(noise_free_full_pairs) == 4
    for pair in noise_free_full_pairs:
        original, back, compare, scale = _round_trip(pair, config)
        assert scale == pytest.approx((4.0, 4.0), abs=0.01)
        error = np.abs(back - original)[compare]
        label = f"{pair.laterality} {pair.view}"
        assert error.max() < FULL_MAX_ERROR, (label, error.max())
        assert np.percentile(error, 99) < FULL_P99_ERROR, (label, np.percentile(error, 99))
        assert error.mean() < FULL_MEAN_ERROR, (label, error.mean())


@pytest.mark.needs_shared
def test_cdd_cesm_8bit_preset_without_resampling_is_exact(cdd_cesm_subset: Path) -> None:
    """Real 8-bit pairs: the mask is plausible; the 8bit preset does not resample, so the RC
    round trip is exact."""
    config = get_preset("8bit")
    assert config.downsample_factor == 1.0
    le_files = sorted((cdd_cesm_subset / "le").glob("*_LE.png"))
    assert le_files
    for le_path in le_files:
        rc_path = cdd_cesm_subset / "re" / le_path.name.replace("_LE", "_RE")
        le, rc = read_image(le_path), read_image(rc_path)
        result = forward(le, rc, config)
        fraction = result.record.mask.breast_fraction
        assert 0.2 < fraction < 0.98, (le_path.name, fraction)
        assert min(result.record.cached_shape) >= 128  # a whole training patch fits
        assert result.rc is not None
        back = inverse(result.rc, result.record, config).array
        inside = breast_mask_original(result.record).array
        np.testing.assert_allclose(back[inside], rc.array[inside], atol=EXACT_ATOL)
