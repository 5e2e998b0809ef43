"""Physics tables and the polyenergetic forward model: small truths checked by hand."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from cemsynth.phantom import physics
from cemsynth.phantom.config import PhantomConfig
from cemsynth.phantom.physics import MATERIALS, Beam
from cemsynth.phantom.sampling import upsample

REPO_ROOT = Path(__file__).resolve().parents[2]
SKIN_CM = 0.145


@pytest.fixture(scope="module")
def beams() -> physics.Beams:
    return physics.make_beams(PhantomConfig())


def test_low_energy_beam_below_and_high_energy_beam_above_the_iodine_k_edge(
    beams: physics.Beams,
) -> None:
    low_mean = float((beams.low.weights * beams.low.mean_kev).sum())
    high_mean = float((beams.high.weights * beams.high.mean_kev).sum())
    assert 17.0 < low_mean < 23.0
    assert 33.17 < high_mean < 40.0
    # Nearly all of the low-energy signal lies below the K-edge, most of the high-energy above.
    assert beams.low.weights[beams.low.mean_kev < 33.17].sum() > 0.99
    assert beams.high.weights[beams.high.mean_kev > 33.17].sum() > 0.7
    for beam in (beams.low, beams.high):
        assert beam.weights.sum() == pytest.approx(1.0)


def test_glandular_attenuates_more_than_adipose_and_iodine_jumps_at_its_k_edge() -> None:
    tables = physics.load_tables()
    energy = np.asarray(tables["energy_kev"])
    materials = tables["materials"]
    mu = {m: np.asarray(materials[m]["mu_rho_cm2_g"]) * materials[m]["density_g_cm3"]
          for m in ("adipose", "glandular")}  # fmt: skip
    assert np.all(mu["glandular"] > mu["adipose"])
    # Johns & Yaffe (1987) give 0.456 (adipose) and 0.802 (glandular) 1/cm at 20 keV.
    assert np.interp(20.0, energy, mu["adipose"]) == pytest.approx(0.456, rel=0.15)
    assert np.interp(20.0, energy, mu["glandular"]) == pytest.approx(0.802, rel=0.10)
    iodine = np.asarray(materials["iodine"]["mu_rho_cm2_g"])
    below = iodine[energy < 33.17][-1]
    above = iodine[energy > 33.17][0]
    assert above / below > 4.0  # the K-edge ratio of iodine is about 5.5


def test_single_bin_beam_is_beer_lambert() -> None:
    mu = np.zeros((1, len(MATERIALS)))
    mu[0, MATERIALS.index("adipose")] = 0.5
    mu[0, MATERIALS.index("iodine")] = 0.02
    beam = Beam("test", np.array([1.0]), mu, np.array([20.0]))
    signal = physics.transmitted_signal(beam, {"adipose": 3.0, "iodine": 10.0})
    assert float(signal) == pytest.approx(math.exp(-(0.5 * 3.0 + 0.02 * 10.0)), rel=1e-6)
    assert float(physics.transmitted_signal(beam, {"adipose": 0.0})) == pytest.approx(1.0)


def test_recombination_cancels_gland_fat_contrast_but_keeps_iodine(
    beams: physics.Beams,
) -> None:
    def signals(w: float, thickness: float, g: float, iodine: float = 0.0) -> tuple[float, float]:
        paths = physics.tissue_paths(thickness, g, SKIN_CM)
        paths["iodine"] = iodine
        low = float(physics.log_attenuation(beams.low, paths))
        high = float(physics.log_attenuation(beams.high, paths))
        return low, high - w * low

    thickness = 5.5
    w = physics.recombination_weight(beams, thickness, SKIN_CM)
    assert 0.15 < w < 0.4
    le_fat, rc_fat = signals(w, thickness, 0.4)
    le_gland, rc_gland = signals(w, thickness, 0.6)
    assert le_gland - le_fat > 0.2  # clear gland/fat contrast in LE ...
    assert abs(rc_gland - rc_fat) < 0.01 * (le_gland - le_fat)  # ... cancelled in RC
    # Across the whole range of glandularity the residual stays below a tenth of the signal
    # of 1 mg/cm^2 of iodine, the scale of mild BPE.
    _, rc_pure_fat = signals(w, thickness, 0.0)
    _, rc_pure_gland = signals(w, thickness, 1.0)
    _, rc_iodine = signals(w, thickness, 0.5, iodine=1.0)
    _, rc_none = signals(w, thickness, 0.5)
    iodine_signal = rc_iodine - rc_none
    assert iodine_signal > 0.01
    assert abs(rc_pure_gland - rc_pure_fat) < 0.1 * iodine_signal
    # Beam hardening: the weight calibrated at 5.5 cm cancels less well at 2 cm (the
    # periphery) than the weight calibrated there.
    thin = 2.0
    w_thin = physics.recombination_weight(beams, thin, SKIN_CM)
    wrong = abs(signals(w, thin, 0.7)[1] - signals(w, thin, 0.3)[1])
    right = abs(signals(w_thin, thin, 0.7)[1] - signals(w_thin, thin, 0.3)[1])
    assert w_thin < w
    assert wrong > 10 * right


def test_upsample_matches_scipy_zoom() -> None:
    rng = np.random.default_rng(0)
    array = rng.random((23, 17)).astype(np.float32)
    for factor in (2, 3, 4):
        reference = ndimage.zoom(array, factor, order=1, grid_mode=True, mode="nearest")
        np.testing.assert_allclose(upsample(array, factor), reference, atol=1e-6)
    assert upsample(array, 2, (40, 30)).shape == (40, 30)


@pytest.mark.skipif(
    importlib.util.find_spec("xraydb") is None or importlib.util.find_spec("spekpy") is None,
    reason="xraydb and spekpy (dev extra) are needed to regenerate the physics tables",
)
def test_shipped_tables_match_a_fresh_generation() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_physics_tables", REPO_ROOT / "tools" / "make_physics_tables.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fresh = module.build_tables()
    shipped = json.loads((REPO_ROOT / "src/cemsynth/phantom/data/physics_tables.json").read_text())
    np.testing.assert_allclose(fresh["energy_kev"], shipped["energy_kev"])
    for name in shipped["materials"]:
        np.testing.assert_allclose(
            fresh["materials"][name]["mu_rho_cm2_g"],
            shipped["materials"][name]["mu_rho_cm2_g"],
            rtol=1e-4,
        )
    for name in shipped["spectra"]:
        np.testing.assert_allclose(
            fresh["spectra"][name]["fluence"], shipped["spectra"][name]["fluence"], rtol=1e-4
        )
