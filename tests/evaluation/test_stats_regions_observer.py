"""Statistics against SciPy/statsmodels; CNR, halo, blobs and the CHO on constructed images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from cemsynth.evaluation.observer import (
    extract_rois,
    hotelling_dprime,
    laguerre_gauss_channels,
    plan_rois,
)
from cemsynth.evaluation.regions import (
    count_blobs,
    distance_to_skin_mm,
    halo_index,
    lesion_contrast,
    lesion_ring,
    tissue_contrast,
)
from cemsynth.evaluation.stats import pearson, summarise, wilcoxon_family

# --- statistics ----------------------------------------------------------------------------


def test_pearson_matches_scipy_including_the_fisher_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=30)
    y = 0.6 * x + rng.normal(size=30)
    ours = pearson(x, y, 0.95)
    reference = stats.pearsonr(x, y)
    interval = reference.confidence_interval(0.95)
    assert ours.r == pytest.approx(reference.statistic)
    assert ours.p == pytest.approx(reference.pvalue)
    assert (ours.ci_low, ours.ci_high) == pytest.approx((interval.low, interval.high))
    assert math.isnan(pearson([1, 2, 3], [1, 1, 1], 0.95).r)


def test_summary_mean_sd_and_seeded_patient_bootstrap() -> None:
    values = [1.0, 2.0, 3.0, 4.0, math.nan, 10.0]
    groups = ["a", "a", "b", "c", "c", "d"]
    first = summarise(values, groups, 500, 0, 0.95)
    assert first.n == 5
    assert first.mean == pytest.approx(4.0)
    assert first.sd == pytest.approx(np.std([1, 2, 3, 4, 10]))
    assert first.ci_low < first.mean < first.ci_high
    assert summarise(values, groups, 500, 0, 0.95) == first


def test_wilcoxon_and_benjamini_hochberg_match_the_references() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=20)
    comparisons = [
        ("shifted", "a", "b", x + 0.8, x + rng.normal(0, 0.5, 20)),
        ("same", "a", "b", x + rng.normal(0, 0.5, 20), x),
        ("small", "a", "b", [1.0, 2.0], [0.0, 1.0]),
    ]
    tests = wilcoxon_family(comparisons, 0.05)
    raw = [stats.wilcoxon(c[3], c[4]).pvalue for c in comparisons[:2]]
    adjusted = multipletests(raw, alpha=0.05, method="fdr_bh")[1]
    assert [t.p for t in tests[:2]] == pytest.approx(raw)
    assert [t.p_adjusted for t in tests[:2]] == pytest.approx(list(adjusted))
    assert tests[0].significant
    assert math.isnan(tests[2].p)  # fewer than 5 pairs: not tested


# --- CNR, halo, lesion contrast, blobs -------------------------------------------------------


def test_tissue_cnr_on_two_regions_with_known_statistics() -> None:
    image = np.zeros((10, 20), dtype=np.float32)
    image[:, :10] = np.tile([1.0, 3.0], 50).reshape(10, 10)  # fgt: mean 2, SD 1
    image[:, 10:] = np.tile([0.0, 1.0], 50).reshape(10, 10)  # adipose: mean 0.5, SD 0.5
    fgt = np.zeros_like(image, dtype=bool)
    fgt[:, :10] = True
    result = tissue_contrast(image, fgt, ~fgt)
    assert result is not None
    assert result.cnr_signed == pytest.approx((2.0 - 0.5) / (1.0 + 0.5))
    assert result.cnr_abs == pytest.approx(1.0)
    assert (result.mean_fgt, result.mean_adipose) == pytest.approx((2.0, 0.5))
    swapped = tissue_contrast(image, ~fgt, fgt)
    assert swapped is not None and swapped.cnr_signed == pytest.approx(-1.0)
    assert tissue_contrast(image, fgt & False, ~fgt) is None


def test_halo_index_of_a_constructed_peripheral_band() -> None:
    # a half disc against the chest wall (column 0), 1 mm pixels, radius 80 mm
    rows, cols = np.mgrid[0:200, 0:120]
    breast = (rows - 100) ** 2 + cols**2 < 80**2
    skin = distance_to_skin_mm(breast, (1.0, 1.0), reach_mm=40.0)
    # the chest-wall column is not skin: that pixel is 80 mm from the arc
    assert skin[100, 0] > 40.0
    assert skin[100, 75] == pytest.approx(5.0, abs=1.0)
    image = np.where(breast, 0.0, -1.0).astype(np.float32)
    band = breast & (skin > 6) & (skin < 20)
    image[band] += 0.3
    assert halo_index(image, skin, (6.0, 20.0), 35.0) == pytest.approx(0.3)
    adipose = breast & (cols % 2 == 0)
    image[breast & ~adipose] += 5.0  # other tissue does not count with an adipose mask
    assert halo_index(image, skin, (6.0, 20.0), 35.0, adipose) == pytest.approx(0.3)
    assert math.isnan(halo_index(image, skin, (6.0, 20.0), 500.0))


def test_lesion_contrast_against_its_ring() -> None:
    rows, cols = np.mgrid[0:100, 0:100]
    breast = np.ones((100, 100), dtype=bool)
    lesion = (rows - 50) ** 2 + (cols - 50) ** 2 <= 5**2
    image = np.tile([0.0, 0.2], 5000).reshape(100, 100).astype(np.float32)  # SD 0.1
    image[lesion] = 1.1  # SD 0
    ring = lesion_ring(lesion, breast, (1.0, 1.0), (3.0, 10.0))
    assert not (ring & lesion).any() and ring.sum() > 100
    assert lesion_contrast(image, lesion, ring) == pytest.approx((1.1 - 0.1) / 0.1, rel=0.02)


def test_blob_count_keeps_lesion_sized_blobs_only() -> None:
    rows, cols = np.mgrid[0:300, 0:300].astype(np.float64)
    image = np.zeros((300, 300))
    for r, c, sigma in ((60, 60, 4.0), (60, 200, 5.0), (200, 80, 3.0)):  # lesion-sized
        image += 0.6 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * sigma**2))
    image += 0.6 * np.exp(-((rows - 220) ** 2 + (cols - 220) ** 2) / (2 * 0.5**2))  # a speck
    region = np.ones_like(image, dtype=bool)
    found = count_blobs(image, region, (0.5, 0.5), 0.5, 10.0, 0.15, (3.0, 30.0))
    assert found == 3
    assert count_blobs(image * 0.1, region, (0.5, 0.5), 0.5, 10.0, 0.15, (3.0, 30.0)) == 0


# --- channelized Hotelling observer -----------------------------------------------------------


def test_laguerre_gauss_channels_are_orthonormal() -> None:
    spacing = (0.25, 0.25)
    channels = laguerre_gauss_channels(161, spacing, width_mm=8.0, n_channels=5)
    gram = channels @ channels.T * (spacing[0] * spacing[1])
    assert gram == pytest.approx(np.eye(5), abs=2e-3)


def test_cho_reaches_the_ideal_observer_for_a_gaussian_signal_in_white_noise() -> None:
    """White noise SD sigma, known signal s: ideal d' = ||s|| / sigma; the first LG channel
    has the signal's shape, so the CHO reaches it (up to estimation noise)."""
    rng = np.random.default_rng(0)
    size, width_px, amplitude, sigma = 33, 3.0, 0.12, 1.0
    offsets = np.arange(size) - size // 2
    r2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    signal = amplitude * np.exp(-r2 / (2 * width_px**2))
    ideal = float(np.linalg.norm(signal) / sigma)
    channels = laguerre_gauss_channels(size, (1.0, 1.0), width_px * math.sqrt(2 * math.pi), 3)
    n = 1500
    absent = rng.normal(0, sigma, (n, size * size))
    present = rng.normal(0, sigma, (n, size * size)) + signal.ravel()
    dprime = hotelling_dprime(present @ channels.T, absent @ channels.T)
    assert dprime == pytest.approx(ideal, rel=0.1)
    assert ideal == pytest.approx(amplitude * math.sqrt(math.pi) * width_px, rel=1e-3)


def test_roi_extraction_removes_offsets_so_flat_images_have_no_detectability() -> None:
    rng = np.random.default_rng(2)
    image = np.full((100, 100), 0.4)
    centres = np.array([[50, 50], [30, 70], [70, 30]])
    rois = extract_rois(image, centres, 21)
    assert np.allclose(rois, 0.0)
    channels = laguerre_gauss_channels(21, (1.0, 1.0), 8.0, 3)
    absent = extract_rois(image + 0.2, centres, 21) @ channels.T
    assert hotelling_dprime(rois @ channels.T, absent) == 0.0
    raw = extract_rois(image, centres, 21, subtract_background=False)
    assert np.allclose(raw, 0.4)
    breast = np.zeros((100, 100), dtype=bool)
    breast[:, :50] = True
    plan = plan_rois(
        breast,
        distance_to_skin_mm(breast, (1.0, 1.0), 30.0),
        None,
        "absent",
        True,
        11,
        (1.0, 1.0),
        5,
        rng,
    )
    assert len(plan.present) == 0 and len(plan.absent) == 5
    assert (plan.absent[:, 1] < 50 - 5).all()
