"""X-ray physics of the phantom: spectra, attenuation, the polyenergetic forward model.

Path lengths are in cm, iodine area densities in mg/cm^2. Signals are energy-integrated
detector signals relative to the unattenuated beam (1.0 = no breast), as a direct-conversion
a-Se detector records them: each photon contributes its energy times the probability that the
selenium layer absorbs it.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import numpy.typing as npt

from cemsynth.phantom.config import PhantomConfig

F32 = npt.NDArray[np.float32]

# Materials the forward model knows, in the order of ``Beam.mu`` columns.
MATERIALS = ("adipose", "glandular", "skin", "muscle", "blood", "lesion", "iodine")
IODINE_K_EDGE_KEV = 33.17


@dataclass(frozen=True)
class Beam:
    """One acquisition's spectrum grouped into a few energy bins.

    ``weights`` (n_bins,) sum to 1: each bin's share of the energy-integrated signal without a
    breast. ``mu`` (n_bins, n_materials) holds linear attenuation coefficients in 1/cm for the
    tissues and the mass attenuation coefficient in cm^2/mg for iodine, averaged over the bin
    with the signal weight. ``mean_kev`` is the signal-weighted mean energy of each bin.
    """

    name: str
    weights: npt.NDArray[np.float64]
    mu: npt.NDArray[np.float64]
    mean_kev: npt.NDArray[np.float64]

    def column(self, material: str) -> npt.NDArray[np.float64]:
        return self.mu[:, MATERIALS.index(material)]


@lru_cache(maxsize=1)
def load_tables() -> dict[str, object]:
    """The tabulated spectra and attenuation coefficients (see tools/make_physics_tables.py)."""
    text = resources.files("cemsynth.phantom").joinpath("data/physics_tables.json").read_text()
    tables: dict[str, object] = json.loads(text)
    return tables


def make_beam(name: str, bin_edges_kev: tuple[float, ...], config: PhantomConfig) -> Beam:
    """Group the tabulated spectrum ``name`` ("low_energy" or "high_energy") into bins."""
    tables = load_tables()
    energy = np.asarray(tables["energy_kev"], dtype=np.float64)
    spectra = tables["spectra"]
    materials = tables["materials"]
    fluence = np.asarray(spectra[name]["fluence"], dtype=np.float64)  # type: ignore[index]

    def mu_linear(material: str, density_scale: float = 1.0) -> npt.NDArray[np.float64]:
        entry = materials[material]  # type: ignore[index]
        return (
            np.asarray(entry["mu_rho_cm2_g"], dtype=np.float64)
            * entry["density_g_cm3"]
            * density_scale
        )

    selenium = materials["selenium"]  # type: ignore[index]
    mu_se = np.asarray(selenium["mu_rho_cm2_g"]) * selenium["density_g_cm3"]
    absorbed = 1.0 - np.exp(-mu_se * config.selenium_thickness_um * 1e-4)
    signal = fluence * energy * absorbed  # energy-integrating detector

    per_material = {
        "adipose": mu_linear("adipose"),
        "glandular": mu_linear("glandular"),
        "skin": mu_linear("skin"),
        "muscle": mu_linear("muscle"),
        "blood": mu_linear("blood"),
        "lesion": mu_linear("glandular", config.lesion_density_factor),
        # cm^2/g -> cm^2/mg, so that mu * (mg/cm^2) is dimensionless.
        "iodine": np.asarray(materials["iodine"]["mu_rho_cm2_g"]) * 1e-3,  # type: ignore[index]
    }
    edges = np.asarray(bin_edges_kev, dtype=np.float64)
    weights, mus, means = [], [], []
    for low, high in itertools.pairwise(edges):
        inside = (energy >= low) & (energy < high)
        w = signal[inside]
        if w.sum() <= 0:
            continue
        weights.append(w.sum())
        means.append(float((energy[inside] * w).sum() / w.sum()))
        mus.append([float((per_material[m][inside] * w).sum() / w.sum()) for m in MATERIALS])
    total = float(np.sum(weights))
    return Beam(
        name=name,
        weights=np.asarray(weights) / total,
        mu=np.asarray(mus),
        mean_kev=np.asarray(means),
    )


@dataclass(frozen=True)
class Beams:
    low: Beam
    high: Beam


def make_beams(config: PhantomConfig) -> Beams:
    return Beams(
        low=make_beam("low_energy", config.energy_bin_edges_le_kev, config),
        high=make_beam("high_energy", config.energy_bin_edges_he_kev, config),
    )


def transmitted_signal(beam: Beam, paths: dict[str, F32 | float]) -> F32:
    """Energy-integrated primary signal behind the breast, relative to the open beam.

    ``paths`` maps material names to path lengths in cm (tissues) or area density in mg/cm^2
    (iodine); values are arrays of one shape or scalars. Returns float32 in (0, 1].
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in paths.values()))
    total = np.zeros(shape, dtype=np.float32)
    line = np.empty(shape, dtype=np.float32)
    for b in range(len(beam.weights)):
        line.fill(0.0)
        for material, path in paths.items():
            coefficient = np.float32(beam.mu[b, MATERIALS.index(material)])
            if np.ndim(path) == 0:
                line += coefficient * np.float32(path)
            else:
                line += coefficient * path
        np.exp(-line, out=line)
        total += np.float32(beam.weights[b]) * line
    return total


def log_attenuation(beam: Beam, paths: dict[str, F32 | float]) -> F32:
    """-ln of :func:`transmitted_signal`: the noise-free log signal of a tissue column."""
    return -np.log(transmitted_signal(beam, paths))


def tissue_paths(
    thickness_cm: float, glandular_fraction: float, skin_cm: float
) -> dict[str, F32 | float]:
    """Paths through a uniform column: skin on both faces, a gland/fat mixture inside."""
    inner = max(thickness_cm - 2.0 * skin_cm, 0.0)
    return {
        "skin": 2.0 * skin_cm,
        "glandular": glandular_fraction * inner,
        "adipose": (1.0 - glandular_fraction) * inner,
    }


def recombination_weight(beams: Beams, thickness_cm: float, skin_cm: float) -> float:
    """The dual-energy weight w that cancels adipose/glandular contrast at ``thickness_cm``.

    The recombined signal is ``R = A_high - w * A_low`` with ``A = -ln(I/I0)``. Its derivative
    with respect to the glandular fraction vanishes when ``w = dA_high / dA_low``, taken here
    as a finite difference across 30 % to 70 % glandular tissue (where most breasts lie).
    """
    lo = tissue_paths(thickness_cm, 0.3, skin_cm)
    hi = tissue_paths(thickness_cm, 0.7, skin_cm)
    d_high = float(log_attenuation(beams.high, hi) - log_attenuation(beams.high, lo))
    d_low = float(log_attenuation(beams.low, hi) - log_attenuation(beams.low, lo))
    return d_high / d_low
