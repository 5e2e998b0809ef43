"""Phantom constants: the one home of every number the simulator uses.

Units are in the field names (``_mm``, ``_mg_per_ml``, ...). Where a number comes from the
literature, ``docs/phantom.md`` gives the source; the rest are engineering choices, also listed
there, picked so that images look and measure like clinical CEM.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from cemsynth.config_files import ConfigFile
from cemsynth.errors import ConfigError

LESION_KINDS = ("round_mass", "irregular_mass", "spiculated_mass", "non_mass")

# Detector read-out presets: name -> pixel binning. "full" is the whole matrix of a
# 24 x 29 cm detector at its native pitch (2850 x 2394 at 0.1 mm); "small" reads the same
# field with 4 x 4 binning (712 x 598 at 0.4 mm).
SIZE_PRESETS: dict[str, int] = {"full": 1, "small": 4}
# Detector field of view, height x width in mm (a 24 x 29 cm class detector).
FIELD_OF_VIEW_MM = (285.0, 239.4)


@dataclass(frozen=True)
class PhantomConfig(ConfigFile):
    """All simulator constants. Ranges are (low, high) for uniform draws.

    Every value is converted to the type and shape of its default (YAML gives lists and
    ints where the defaults are tuples and floats) or refused.
    """

    KIND = "phantom"

    # --- cohort ---------------------------------------------------------------------------
    # Share of breasts with a lesion (paper's training set: 52 % positive breasts).
    lesion_share: float = 0.5
    # Share of images with the halo artifact (paper: "above 50 %" of clinical images).
    halo_share: float = 0.6
    # ACR density shares a-d (BI-RADS population figures: about 10/40/40/10 %).
    density_shares: tuple[float, float, float, float] = (0.10, 0.40, 0.40, 0.10)
    # BPE grade shares a-d (the paper's training set, Table 1: 50/37/9/4 %).
    bpe_shares: tuple[float, float, float, float] = (0.50, 0.37, 0.09, 0.04)
    # Volumetric glandular fraction range per ACR density grade a-d.
    glandular_fraction: tuple[tuple[float, float], ...] = (
        (0.03, 0.08),
        (0.08, 0.16),
        (0.16, 0.30),
        (0.30, 0.50),
    )

    # --- breast geometry ------------------------------------------------------------------
    compressed_thickness_mm: tuple[float, float] = (40.0, 70.0)
    # Width of the peripheral band where thickness rolls off to zero, as a multiple of half
    # the compressed thickness (1.0 would be a semicircular edge).
    rolloff_width_factor: tuple[float, float] = (1.0, 1.6)
    breast_depth_mm: tuple[float, float] = (85.0, 150.0)  # chest wall to nipple, CC view
    breast_half_width_mm: tuple[float, float] = (65.0, 105.0)  # along the chest wall, CC view
    outline_harmonic_amplitude: float = 0.03  # low-order wobble of the skin line (fraction)
    skin_thickness_mm: float = 1.45
    nipple_length_mm: tuple[float, float] = (4.0, 9.0)
    nipple_half_width_deg: float = 7.0
    mlo_tilt_deg: tuple[float, float] = (8.0, 22.0)
    mlo_depth_factor: float = 1.12  # MLO images show more tissue than CC
    mlo_upper_extent_factor: float = 1.6  # axillary tail: upper half-width vs lower
    pectoral_width_fraction: tuple[float, float] = (0.22, 0.42)  # of MLO depth, at the top
    pectoral_height_fraction: tuple[float, float] = (0.45, 0.85)  # of image height
    pectoral_thickness_fraction: tuple[float, float] = (0.3, 0.6)  # of the inner path
    retromammary_fat_mm: float = 12.0  # fatty band along the chest wall

    # --- fibroglandular texture -----------------------------------------------------------
    texture_beta: float = 3.0  # power-law exponent of the anatomical noise spectrum
    texture_grid_mm: float = 0.2  # the texture is synthesised on this grid and interpolated
    glandular_max_fraction: float = 0.9  # densest projected glandular fraction
    glandular_ramp: float = 1.8  # softness of the fat/gland transition (texture std units)
    glandular_envelope_weight: float = 1.2  # how strongly tissue gathers behind the nipple
    fgt_mask_threshold: float = 0.45  # projected glandular fraction for "fibroglandular"
    adipose_mask_threshold: float = 0.04  # at most this for "adipose"
    mask_edge_margin_mm: float = 6.0  # tissue masks keep clear of the roll-off edge

    # --- vessels ----------------------------------------------------------------------------
    vessel_count: tuple[int, int] = (3, 7)
    vessel_diameter_mm: tuple[float, float] = (1.0, 2.4)

    # --- iodine (mg of iodine per ml of tissue; area densities follow from path lengths) ----
    # Blood a few minutes after 1.5 ml/kg of 350 mgI/ml contrast, once it has spread into
    # the extracellular space: about 2 mg/ml.
    blood_iodine_mg_per_ml: float = 2.0
    # Background parenchymal enhancement: iodine in fibroglandular tissue per BPE grade a-d.
    bpe_iodine_mg_per_ml: tuple[float, float, float, float] = (0.04, 0.12, 0.28, 0.5)
    bpe_heterogeneity: float = 0.6  # relative spread of BPE across the gland
    muscle_iodine_mg_per_ml: float = 0.1
    lesion_diameter_mm: tuple[float, float] = (7.0, 24.0)
    nme_extent_mm: tuple[float, float] = (18.0, 40.0)
    enhancing_mass_iodine_mg_per_ml: tuple[float, float] = (1.2, 2.6)
    enhancing_nme_iodine_mg_per_ml: tuple[float, float] = (0.6, 1.3)
    non_enhancing_iodine_mg_per_ml: float = 0.03
    # Probability that a lesion of each kind enhances (benign-like round masses often do not).
    enhancing_probability: tuple[float, float, float, float] = (0.4, 0.9, 0.95, 1.0)
    lesion_kind_shares: tuple[float, float, float, float] = (0.3, 0.3, 0.2, 0.2)
    lesion_density_factor: float = 1.03  # lesion tissue vs glandular tissue density

    # --- acquisition ----------------------------------------------------------------------
    # Energy bins (keV) the tabulated spectra are grouped into; 33.17 keV (iodine K-edge)
    # must be an edge.
    energy_bin_edges_le_kev: tuple[float, ...] = (
        10.0,
        14.0,
        16.0,
        18.0,
        20.0,
        22.0,
        24.0,
        26.0,
        30.0,
    )
    energy_bin_edges_he_kev: tuple[float, ...] = (
        18.0,
        26.0,
        30.0,
        33.17,
        35.0,
        37.0,
        39.0,
        41.0,
        43.0,
        50.0,
    )
    selenium_thickness_um: float = 200.0  # direct-conversion a-Se detector layer
    # Detected quanta per mm^2 with no breast in the beam (sets the quantum noise).
    le_quanta_per_mm2: float = 4.0e6
    he_quanta_per_mm2: float = 1.5e6
    # Scatter-to-primary ratio per cm of compressed breast behind the anti-scatter grid.
    spr_per_cm_le: float = 0.05
    spr_per_cm_he: float = 0.08
    scatter_kernel_mm: float = 22.0  # width (sigma) of the scatter point-spread function
    # Halo images: the vendor's scatter estimate does not follow the thickness roll-off in
    # full; it treats this share of the missing peripheral thickness as present, so it
    # over-corrects near the skin line, more in the (higher-scatter) high-energy image.
    halo_rolloff_error: tuple[float, float] = (0.25, 0.4)
    detector_blur_mm: float = 0.07

    # --- stored values (the windows the paper uses: LE 1800-2900, RC 1700-2400) ----------
    # Presentation processing, as vendors do it: the breast is segmented and equalised for
    # thickness, the background set to a dark constant. LE = le_center + le_gain * (A - A_ref),
    # with A = -ln(I/I0) and A_ref that of 50 % glandular tissue of the local thickness, so
    # denser tissue is brighter (MONOCHROME2).
    le_center: float = 2350.0
    le_gain: float = 700.0
    le_background: float = 80.0
    # RC = rc_offset + rc_gain * (R - R_ref): R the recombined signal, R_ref its value for
    # 50 % glandular tissue of the local thickness. 1 mg/cm^2 of iodine is about +150.
    rc_offset: float = 1850.0
    rc_gain: float = 10000.0
    bits_stored: int = 14

    # --- nominal tube settings written to DICOM (the spectra are tabulated for these) -----
    le_kvp: float = 29.0
    he_kvp: float = 47.0

    extra_notes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for item in fields(self):
            factory = item.default_factory
            default = item.default if factory is MISSING else factory()
            value = _coerce(item.name, getattr(self, item.name), default)
            object.__setattr__(self, item.name, value)
        for name in ("lesion_share", "halo_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"phantom config: {name} must be in [0, 1], got {value}")
        for name in ("density_shares", "bpe_shares", "lesion_kind_shares"):
            shares = getattr(self, name)
            if len(shares) != 4 or min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
                raise ConfigError(f"phantom config: {name} must be 4 shares summing to 1")
        if 33.17 not in self.energy_bin_edges_he_kev:
            raise ConfigError("phantom config: energy_bin_edges_he_kev must include 33.17")


def _coerce(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type and shape of ``default``, or a ConfigError."""
    problem = f"phantom config: {name} must be like {default!r}, got {value!r}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(problem)
        return value
    if isinstance(default, int | float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(problem)
        return type(default)(value) if isinstance(default, float) else value
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or len(value) != len(default):
            raise ConfigError(problem)
        return tuple(
            _coerce(name, item, item_default)
            for item, item_default in zip(value, default, strict=True)
        )
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(problem)
        return {str(k): str(v) for k, v in value.items()}
    return value


def load_phantom_config(path: Path | None, halo_share: float | None = None) -> PhantomConfig:
    """Defaults, overridden by a YAML file, then by an explicit ``halo_share``."""
    return PhantomConfig.load(path).with_overrides(halo_share=halo_share)


@dataclass(frozen=True)
class CohortConfig(ConfigFile):
    """Which cohort ``cemsynth phantom`` simulates: the one home of its defaults.

    The command line's options and the demo start from these values.

    Attributes:
        patients: Simulated patients, each with both breasts in CC and MLO views (4 LE/RC
            pairs per patient).
        seed: Seeds the whole cohort: the same seed writes the same files.
        pixel_mm: Detector pixel pitch in mm, before the binning of ``size``.
        size: Detector read-out, a key of :data:`SIZE_PRESETS`: "full" (the whole matrix at
            the native pitch) or "small" (the same field with 4 x 4 binning, for fast runs).
    """

    KIND = "phantom cohort"

    patients: int = 10
    seed: int = 0
    pixel_mm: float = 0.1
    size: str = "full"

    def __post_init__(self) -> None:
        for name, minimum in (("patients", 1), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{name} must be a whole number >= {minimum}, got {value!r}")
        pixel = self.pixel_mm
        if (
            isinstance(pixel, bool)
            or not isinstance(pixel, int | float)
            or not 0 < pixel < math.inf
        ):
            raise ConfigError(f"pixel_mm must be a positive number, got {pixel!r}")
        object.__setattr__(self, "pixel_mm", float(pixel))
        if not isinstance(self.size, str) or self.size not in SIZE_PRESETS:
            raise ConfigError(f"size must be one of {', '.join(SIZE_PRESETS)}, got {self.size!r}")
