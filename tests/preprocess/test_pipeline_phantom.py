"""forward/inverse on the physics phantom: Otsu finds the true breast, the round trip holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cemsynth.io.cache import read_truth_mask
from cemsynth.io.manifest import PairRecord, read_manifest
from cemsynth.io.reader import read_image
from cemsynth.preprocess import breast_mask_original, forward, get_preset, inverse

# Round-trip tolerance on phantom RC images, in stored units: when the grid is coarsened the
# RC image is first band-limited (Gaussian, sigma = 2 x downsampling factor in pixels, so the
# coarse grid can hold it); pixels near the skin line and near clipped values are left out.
PHANTOM_MAX_ERROR = 6.0
PHANTOM_MEAN_ERROR = 0.5


@pytest.fixture(scope="module")
def phantom_pairs(tmp_path_factory: pytest.TempPathFactory) -> list[PairRecord]:
    cohort = pytest.importorskip("cemsynth.phantom.cohort", reason="phantom not available")
    from cemsynth.phantom.config import load_phantom_config

    out = tmp_path_factory.mktemp("phantom") / "cohort"
    result = cohort.write_cohort(
        out,
        n_patients=1,
        seed=0,
        pixel_mm=0.1,
        size="small",
        config=load_phantom_config(None),
        workers=1,
    )
    return read_manifest(result.manifest_path)


def test_otsu_mask_matches_phantom_truth(phantom_pairs: list[PairRecord]) -> None:
    config = get_preset("phantom")
    for pair in phantom_pairs:
        assert pair.breast_mask_path is not None
        le = read_image(pair.le_path)
        result = forward(le, None, config)
        truth = read_truth_mask(Path(pair.breast_mask_path), le.shape)
        assert np.mean(breast_mask_original(result.record).array != truth) < 0.002


@pytest.mark.parametrize("preset", ["phantom", "paper"])
def test_round_trip_on_band_limited_phantom_rc(
    phantom_pairs: list[PairRecord], preset: str
) -> None:
    """ "phantom" keeps the small phantom's 0.4 mm grid; "paper" downsamples it by four."""
    config = get_preset(preset)
    low, high = config.rc_window
    for pair in phantom_pairs:
        le, rc = read_image(pair.le_path), read_image(pair.rc_path)
        factor = max(forward(le, None, config).record.resample.scale)
        smooth = rc.array
        if factor > 1.01:
            smooth = ndimage.gaussian_filter(rc.array, 2 * factor).astype(np.float32)
        result = forward(le, rc.with_array(smooth), config)
        assert result.rc is not None
        back = inverse(result.rc, result.record, config).array
        breast = breast_mask_original(result.record).array
        in_window = (smooth >= low) & (smooth <= high)
        core = ndimage.binary_erosion(breast & in_window, iterations=int(4 * factor))
        assert core.sum() > 0.2 * breast.sum()
        error = np.abs(back - smooth)[core]
        assert error.max() < PHANTOM_MAX_ERROR
        assert error.mean() < PHANTOM_MEAN_ERROR


@pytest.mark.needs_shared
def test_cdd_cesm_8bit_preset_without_resampling_is_exact(cdd_cesm_subset: Path) -> None:
    """Real 8-bit pairs: the mask is plausible; with factor 1 the RC round trip is exact."""
    from dataclasses import replace

    config = replace(get_preset("8bit"), downsample_factor=1.0)
    le_files = sorted((cdd_cesm_subset / "le").glob("*_LE.png"))
    assert le_files
    for le_path in le_files:
        rc_path = cdd_cesm_subset / "re" / le_path.name.replace("_LE", "_RE")
        le, rc = read_image(le_path), read_image(rc_path)
        result = forward(le, rc, config)
        fraction = result.record.mask.breast_fraction
        assert 0.2 < fraction < 0.98, (le_path.name, fraction)
        assert result.rc is not None
        back = inverse(result.rc, result.record, config).array
        inside = breast_mask_original(result.record).array
        np.testing.assert_allclose(back[inside], rc.array[inside], atol=1e-3)
