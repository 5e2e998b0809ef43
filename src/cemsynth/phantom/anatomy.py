"""Anatomy of one compressed breast in one view: path lengths and iodine per pixel.

Everything is computed in a canonical orientation, chest wall at column 0 and nipple pointing
to larger columns; the caller mirrors right breasts. Lengths along the beam are in cm, iodine
in mg/cm^2 (mg/ml of tissue times cm of path), in-plane distances in mm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft
from scipy import ndimage

from cemsynth.phantom.config import LESION_KINDS, PhantomConfig
from cemsynth.phantom.sampling import upsample

F32 = npt.NDArray[np.float32]
B = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Grid:
    """A pixel grid: ``rows`` x ``cols`` square pixels of ``pixel_mm``."""

    rows: int
    cols: int
    pixel_mm: float


@dataclass(frozen=True)
class LesionSpec:
    """One lesion, placed in breast coordinates so that CC and MLO views agree.

    ``depth_fraction`` runs from chest wall (0) to nipple (1); ``azimuth_rad`` is the angle
    around the nipple axis (0 = toward larger rows of the canonical CC image, i.e. medial for a
    left breast); ``radial_fraction`` how far off that axis (fraction of the half-width).
    """

    kind: str
    enhancing: bool
    diameter_mm: float
    iodine_mg_per_ml: float
    depth_fraction: float
    azimuth_rad: float
    radial_fraction: float
    shape_seed: int


@dataclass(frozen=True)
class BreastSpec:
    """What is fixed for a breast across its views (both views share one compression)."""

    thickness_mm: float
    rolloff_mm: float
    depth_mm: float
    half_width_mm: float
    nipple_length_mm: float
    glandular_fraction: float
    bpe_iodine_mg_per_ml: float
    lesion: LesionSpec | None


@dataclass
class Anatomy:
    """Per-pixel maps of one view on ``grid`` (all float32 unless noted).

    ``distance_mm`` is the in-plane distance to the skin line inside the breast (0 outside);
    path maps are in cm; ``iodine`` in mg/cm^2; ``glandular_share`` is the projected
    glandular fraction of the gland/fat mixture (0-1); masks are bool.
    """

    grid: Grid
    breast: B
    distance_mm: F32
    thickness: F32
    skin: F32
    adipose: F32
    glandular: F32
    muscle: F32
    blood: F32
    lesion: F32
    iodine: F32
    glandular_share: F32
    lesion_mask: B
    lesion_center_rc: tuple[float, float] | None

    def paths(self) -> dict[str, F32 | float]:
        return {
            "adipose": self.adipose,
            "glandular": self.glandular,
            "skin": self.skin,
            "muscle": self.muscle,
            "blood": self.blood,
            "lesion": self.lesion,
            "iodine": self.iodine,
        }


def smoothstep(x: F32 | np.ndarray, edge0: float, edge1: float) -> F32:
    t = np.clip((np.asarray(x, dtype=np.float32) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def power_law_field(
    shape: tuple[int, int],
    pixel_mm: float,
    beta: float,
    rng: np.random.Generator,
    largest_mm: float = 60.0,
) -> F32:
    """Gaussian random field with power spectrum ~ 1/f^beta, zero mean, unit std.

    Frequencies below 1/largest_mm are flattened so one blob cannot fill the breast.
    """
    rows, cols = shape
    white = rng.standard_normal(shape, dtype=np.float32)
    spectrum = sp_fft.rfft2(white, workers=-1)
    fy = np.fft.fftfreq(rows, d=pixel_mm).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(cols, d=pixel_mm).astype(np.float32)[None, :]
    f = np.sqrt(fy * fy + fx * fx)
    f = np.maximum(f, np.float32(1.0 / largest_mm))
    spectrum *= f ** np.float32(-beta / 2.0)
    field = sp_fft.irfft2(spectrum, s=shape, workers=-1).astype(np.float32)
    field -= field.mean()
    field /= field.std() + np.float32(1e-12)
    return field


def _outline_radius(
    theta: np.ndarray,
    depth: float,
    upper: float,
    lower: float,
    harmonics: list[tuple[int, float, float]],
    nipple_mm: float,
    nipple_half_width_rad: float,
) -> np.ndarray:
    """Skin-line radius (mm) at polar angle ``theta`` (0 = toward the nipple, + = down)."""
    half_width = np.where(theta < 0, upper, lower)
    c, s = np.cos(theta), np.sin(theta)
    radius = 1.0 / np.sqrt((c / depth) ** 2 + (s / half_width) ** 2)
    wobble = np.ones_like(theta)
    for order, amplitude, phase in harmonics:
        wobble += amplitude * np.cos(order * theta + phase)
    radius = radius * wobble
    radius += nipple_mm * np.exp(-0.5 * (theta / nipple_half_width_rad) ** 2)
    return radius


def _signed_distance_mm(inside: B, pixel_mm: float) -> F32:
    """Signed distance to the boundary of ``inside`` (positive inside), in mm.

    The array is padded by edge replication first, so the chest wall and the image border
    (where the breast continues out of the field) do not count as skin line.
    """
    pad = max(8, round(40.0 / pixel_mm))
    padded = np.pad(inside, pad, mode="edge")
    d_in = ndimage.distance_transform_edt(padded)
    d_out = ndimage.distance_transform_edt(~padded)
    sd = (d_in - d_out)[pad:-pad, pad:-pad] * pixel_mm
    return sd.astype(np.float32)


def quarter_ellipse(fraction: F32) -> F32:
    """Roll-off profile: 0 at the skin line, 1 once ``fraction`` (distance / width) >= 1."""
    s = np.clip(fraction, 0.0, 1.0)
    return np.sqrt(np.clip(1.0 - (1.0 - s) ** 2, 0.0, 1.0)).astype(np.float32)


def thickness_profile(distance_mm: F32, spec: BreastSpec, skin_mm: float) -> tuple[F32, F32]:
    """Total and skin-free thickness (cm) of the compressed breast at ``distance_mm`` from
    the skin line: flat under the paddle, rolling off over ``spec.rolloff_mm``."""
    total = spec.thickness_mm * quarter_ellipse(distance_mm / spec.rolloff_mm)
    inner_fraction = (distance_mm - skin_mm) / max(spec.rolloff_mm - skin_mm, 1e-3)
    inner = (spec.thickness_mm - 2.0 * skin_mm) * quarter_ellipse(inner_fraction)
    inner = np.where(distance_mm > skin_mm, inner, 0.0)
    return (total / 10.0).astype(np.float32), (np.minimum(inner, total) / 10.0).astype(np.float32)


def render_anatomy(
    grid: Grid, spec: BreastSpec, view: str, rng: np.random.Generator, config: PhantomConfig
) -> Anatomy:
    """Build the per-pixel maps of one view of one breast (canonical orientation)."""
    p = grid.pixel_mm
    rows, cols = grid.rows, grid.cols
    y = ((np.arange(rows, dtype=np.float32) + 0.5) * p)[:, None]
    x = ((np.arange(cols, dtype=np.float32) + 0.5) * p)[None, :]
    height_mm = rows * p

    # --- outline ---------------------------------------------------------------------------
    if view == "CC":
        depth = spec.depth_mm
        upper = lower = spec.half_width_mm
        tilt = 0.0
        center_y = height_mm * rng.uniform(0.45, 0.55)
    else:
        depth = spec.depth_mm * config.mlo_depth_factor
        lower = spec.half_width_mm * 1.25
        upper = spec.half_width_mm * config.mlo_upper_extent_factor
        tilt = math.radians(rng.uniform(*config.mlo_tilt_deg))
        # The axillary tail leaves the field at the top edge, as in a real MLO.
        center_y = min(height_mm * 0.45, upper * 0.7)
    harmonics = [
        (
            k,
            config.outline_harmonic_amplitude * rng.uniform(0.3, 1.0) / (k - 1),
            rng.uniform(0, 2 * math.pi),
        )
        for k in range(2, 6)
    ]
    dy = y - np.float32(center_y)
    # The skin line is found on a ~0.5 mm grid and its signed distance interpolated: the
    # distance field is smooth, and the exact transform is the costliest step at full size.
    coarse = max(1, round(0.5 / p))
    yc = ((np.arange(-(-rows // coarse), dtype=np.float32) + 0.5) * p * coarse)[:, None]
    xc = ((np.arange(-(-cols // coarse), dtype=np.float32) + 0.5) * p * coarse)[None, :]
    theta = np.arctan2(yc - np.float32(center_y), xc) - tilt
    radius = _outline_radius(
        theta,
        depth,
        upper,
        lower,
        harmonics,
        spec.nipple_length_mm,
        math.radians(config.nipple_half_width_deg),
    )
    inside = np.hypot(xc, yc - np.float32(center_y)) < radius
    distance = upsample(_signed_distance_mm(inside, p * coarse), coarse, (rows, cols))
    breast = distance > 0
    distance = np.maximum(distance, 0.0).astype(np.float32)
    skin_mm = config.skin_thickness_mm
    thickness, inner = thickness_profile(distance, spec, skin_mm)
    skin = (thickness - inner).astype(np.float32)

    # Breast coordinates: u along the nipple axis (0 chest wall, 1 nipple), v across it
    # (-1 upper skin line, +1 lower), both from the tilted frame.
    ct, st = math.cos(tilt), math.sin(tilt)
    along = x * ct + dy * st
    across = -x * st + dy * ct
    u = (along / depth).astype(np.float32)
    half = np.where(across < 0, upper, lower).astype(np.float32)
    v = (across / half).astype(np.float32)

    # --- pectoral muscle (MLO) -------------------------------------------------------------
    muscle_share = np.zeros((rows, cols), dtype=np.float32)
    if view == "MLO":
        width = depth * rng.uniform(*config.pectoral_width_fraction)
        height = height_mm * rng.uniform(*config.pectoral_height_fraction)
        bulge = rng.uniform(0.0, 0.35)
        level = x / width + y / height + bulge * (x / width) * (y / height)
        # Inside the triangle the muscle takes part of the path, thickest at the chest wall.
        inside_muscle = smoothstep(1.0 - level, 0.0, 0.08)
        fraction = rng.uniform(*config.pectoral_thickness_fraction)
        muscle_share = inside_muscle * fraction * (1.0 - 0.5 * np.clip(level, 0, 1))
        muscle_share = muscle_share.astype(np.float32)
    muscle = inner * muscle_share
    soft = inner - muscle  # the gland/fat mixture (and what lesions and vessels displace)

    # --- fibroglandular tissue -------------------------------------------------------------
    texture = power_law_field((rows, cols), p, config.texture_beta, rng)
    envelope = np.exp(-(((u - 0.55) / 0.38) ** 2) - (v / 0.62) ** 2).astype(np.float32)
    envelope *= smoothstep(x, config.retromammary_fat_mm * 0.3, config.retromammary_fat_mm)
    envelope *= smoothstep(distance, 2.0, 14.0)
    envelope *= 1.0 - muscle_share / max(float(muscle_share.max()), 1e-6) if view == "MLO" else 1
    drive = config.glandular_envelope_weight * (envelope - 0.5) * 2.0 + texture
    drive = np.where(breast, drive, -np.inf).astype(np.float32)
    weight = soft[breast]
    drive_in = drive[breast]

    def mean_fraction(threshold: float) -> float:
        g = config.glandular_max_fraction * np.clip(
            (drive_in - threshold) / config.glandular_ramp + 0.5, 0.0, 1.0
        )
        return float((g * weight).sum() / max(weight.sum(), 1e-6))

    lo, hi = -6.0, 8.0
    for _ in range(30):  # bisection: the threshold that gives the target glandular fraction
        mid = 0.5 * (lo + hi)
        if mean_fraction(mid) > spec.glandular_fraction:
            lo = mid
        else:
            hi = mid
    threshold = 0.5 * (lo + hi)
    share = config.glandular_max_fraction * np.clip(
        (drive - threshold) / config.glandular_ramp + 0.5, 0.0, 1.0
    )
    share = np.where(breast, share, 0.0).astype(np.float32)

    # BPE: iodine in glandular tissue, patchy (its own smooth field), never negative.
    patchiness = power_law_field((rows, cols), p, config.texture_beta + 0.5, rng)
    bpe_local = spec.bpe_iodine_mg_per_ml * np.clip(
        1.0 + config.bpe_heterogeneity * patchiness, 0.0, None
    )

    # --- vessels ---------------------------------------------------------------------------
    blood = _render_vessels(grid, breast, depth, upper, lower, center_y, tilt, rng, config)
    blood = np.minimum(blood, soft * 0.5)

    # --- lesion ----------------------------------------------------------------------------
    lesion = np.zeros((rows, cols), dtype=np.float32)
    lesion_iodine = np.zeros((rows, cols), dtype=np.float32)
    lesion_mask = np.zeros((rows, cols), dtype=bool)
    lesion_center: tuple[float, float] | None = None
    if spec.lesion is not None:
        lesion, lesion_iodine, lesion_mask, lesion_center = _render_lesion(
            grid,
            spec.lesion,
            view,
            distance,
            soft,
            depth,
            upper,
            lower,
            center_y,
            tilt,
            rng,
            config,
        )

    # --- assemble: lesions and vessels displace the gland/fat mixture --------------------
    mixture = np.clip(soft - lesion - blood, 0.0, None)
    glandular = mixture * share
    adipose = mixture - glandular
    iodine = (
        glandular * bpe_local
        + blood * config.blood_iodine_mg_per_ml
        + muscle * config.muscle_iodine_mg_per_ml
        + lesion_iodine
    ).astype(np.float32)
    return Anatomy(
        grid=grid,
        breast=breast,
        distance_mm=distance,
        thickness=thickness,
        skin=skin,
        adipose=adipose.astype(np.float32),
        glandular=glandular.astype(np.float32),
        muscle=muscle.astype(np.float32),
        blood=blood.astype(np.float32),
        lesion=lesion,
        iodine=iodine,
        glandular_share=share,
        lesion_mask=lesion_mask,
        lesion_center_rc=lesion_center,
    )


def _breast_point(
    depth_fraction: float,
    across_fraction: float,
    depth: float,
    upper: float,
    lower: float,
    center_y: float,
    tilt: float,
) -> tuple[float, float]:
    """(x, y) in mm of a point given along/across the nipple axis of this view."""
    along = depth_fraction * depth
    half = upper if across_fraction < 0 else lower
    across = across_fraction * half * math.sqrt(max(1.0 - depth_fraction**2, 0.0))
    ct, st = math.cos(tilt), math.sin(tilt)
    return along * ct - across * st, center_y + along * st + across * ct


def _render_vessels(
    grid: Grid,
    breast: B,
    depth: float,
    upper: float,
    lower: float,
    center_y: float,
    tilt: float,
    rng: np.random.Generator,
    config: PhantomConfig,
) -> F32:
    """Blood path length (cm): tortuous vessels running from the chest wall toward the nipple."""
    p = grid.pixel_mm
    centreline = np.zeros((grid.rows, grid.cols), dtype=bool)
    radius_at = np.zeros((grid.rows, grid.cols), dtype=np.float32)
    for _ in range(int(rng.integers(config.vessel_count[0], config.vessel_count[1] + 1))):
        radius = rng.uniform(*config.vessel_diameter_mm) / 2.0
        across = rng.uniform(-0.8, 0.8)
        heading = rng.uniform(-0.3, 0.3)
        x, y = _breast_point(0.02, across, depth, upper, lower, center_y, tilt)
        length = depth * rng.uniform(0.4, 0.75)
        step = p * 0.5
        for _ in range(int(length / step)):
            heading += rng.normal(0.0, 0.03)
            x += step * math.cos(heading + tilt)
            y += step * math.sin(heading + tilt)
            r, c = int(y / p), int(x / p)
            if not (0 <= r < grid.rows and 0 <= c < grid.cols) or not breast[r, c]:
                break
            centreline[r, c] = True
            radius_at[r, c] = radius
    if not centreline.any():
        return np.zeros((grid.rows, grid.cols), dtype=np.float32)
    distance, (ri, ci) = ndimage.distance_transform_edt(~centreline, return_indices=True)
    distance_mm = distance * p
    radius_map = radius_at[ri, ci]
    chord_mm = 2.0 * np.sqrt(np.clip(radius_map**2 - distance_mm**2, 0.0, None))
    return (chord_mm / 10.0 * breast).astype(np.float32)


def _render_lesion(
    grid: Grid,
    lesion: LesionSpec,
    view: str,
    distance: F32,
    soft: F32,
    depth: float,
    upper: float,
    lower: float,
    center_y: float,
    tilt: float,
    rng: np.random.Generator,
    config: PhantomConfig,
) -> tuple[F32, F32, B, tuple[float, float]]:
    """Lesion path length (cm), its iodine (mg/cm^2), its mask and centre (row, col)."""
    p = grid.pixel_mm
    view_angle = 0.0 if view == "CC" else math.radians(45.0)
    across = lesion.radial_fraction * math.cos(lesion.azimuth_rad - view_angle)
    radius_mm = lesion.diameter_mm / 2.0
    # Move toward the nipple axis, then toward the chest wall, until the lesion sits well
    # inside the breast in this view; the deepest point of the breast is the last resort.
    candidates = [
        (lesion.depth_fraction * pull, across * shrink)
        for pull in (1.0, 0.8, 0.6, 0.4)
        for shrink in np.linspace(1.0, 0.0, 11)
    ]
    best: tuple[float, int, int, float, float] | None = None
    for depth_fraction, offset in candidates:
        cx, cy = _breast_point(depth_fraction, offset, depth, upper, lower, center_y, tilt)
        r, c = int(cy / p), int(cx / p)
        if not (0 <= r < grid.rows and 0 <= c < grid.cols):
            continue
        margin = float(distance[r, c])
        if best is None or margin > best[0]:
            best = (margin, r, c, cx, cy)
        if margin > radius_mm + 8.0:
            break
    if best is None:  # cannot happen for breasts that fill part of the field
        raise ValueError("lesion placement found no point inside the field of view")
    _, r, c, cx, cy = best
    shape_rng = np.random.default_rng(lesion.shape_seed + (0 if view == "CC" else 1))
    half = math.ceil(radius_mm * 2.6 / p) + 2
    r0, r1 = max(r - half, 0), min(r + half + 1, grid.rows)
    c0, c1 = max(c - half, 0), min(c + half + 1, grid.cols)
    yy = ((np.arange(r0, r1) + 0.5) * p - cy)[:, None].astype(np.float32)
    xx = ((np.arange(c0, c1) + 0.5) * p - cx)[None, :].astype(np.float32)
    angle = shape_rng.uniform(0, math.pi)
    ca, sa = math.cos(angle), math.sin(angle)
    xr, yr = xx * ca + yy * sa, -xx * sa + yy * ca
    aspect = shape_rng.uniform(0.7, 1.0)
    ax, ay = radius_mm, radius_mm * aspect
    rho = np.sqrt((xr / ax) ** 2 + (yr / ay) ** 2)
    phi = np.arctan2(yr, xr)
    boundary = np.ones_like(rho)
    if lesion.kind in ("irregular_mass", "spiculated_mass"):
        for k in range(3, 8):
            boundary += shape_rng.uniform(0.04, 0.12) * np.cos(k * phi + shape_rng.uniform(0, 6.3))
    depth_cm = lesion.diameter_mm * aspect / 10.0
    core = np.clip(1.0 - (rho / boundary) ** 2, 0.0, None)
    path = depth_cm * np.sqrt(core)
    iodine_profile = path.copy()
    if lesion.kind == "spiculated_mass":
        spicules = np.zeros_like(rho)
        for _ in range(int(shape_rng.integers(8, 16))):
            direction = shape_rng.uniform(0, 2 * math.pi)
            reach = radius_mm * shape_rng.uniform(1.6, 2.6)
            width = shape_rng.uniform(0.25, 0.5)
            along = xr * math.cos(direction) + yr * math.sin(direction)
            off = np.abs(-xr * math.sin(direction) + yr * math.cos(direction))
            taper = np.clip(1.0 - along / reach, 0.0, 1.0) * (along > 0)
            spicules = np.maximum(spicules, taper * np.clip(1.0 - off / width, 0.0, 1.0))
        path = np.maximum(path, 0.15 * spicules)
        iodine_profile = iodine_profile + 0.3 * 0.15 * spicules
    if lesion.kind == "non_mass":
        # Clumped enhancement in a segment elongated along the ducts (toward the nipple).
        elong = np.sqrt(
            (xx * math.cos(tilt) + yy * math.sin(tilt)) ** 2 / radius_mm**2
            + (-xx * math.sin(tilt) + yy * math.cos(tilt)) ** 2 / (radius_mm * 0.45) ** 2
        )
        region = np.clip(1.0 - elong**2, 0.0, None)
        clumps = power_law_field(rho.shape, p, 2.5, shape_rng, largest_mm=8.0)
        clumps = np.clip(clumps + 0.3, 0.0, None)
        # Enhancing ducts and lobules through about 1.5 cm of gland at the thickest clump.
        path = 1.5 * region * clumps / (float((region * clumps).max()) + 1e-6)
        iodine_profile = path.copy()
    elif lesion.kind == "irregular_mass" and lesion.enhancing and shape_rng.uniform() < 0.5:
        # Rim enhancement: iodine concentrated at the margin.
        iodine_profile = path * (0.5 + 0.8 * np.clip(rho / boundary, 0, 1) ** 2)
    local_soft = soft[r0:r1, c0:c1]
    path = np.minimum(path, local_soft * 0.9).astype(np.float32)
    iodine_profile = np.minimum(iodine_profile, local_soft * 0.9)
    lesion_path = np.zeros((grid.rows, grid.cols), dtype=np.float32)
    lesion_iodine = np.zeros((grid.rows, grid.cols), dtype=np.float32)
    mask = np.zeros((grid.rows, grid.cols), dtype=bool)
    lesion_path[r0:r1, c0:c1] = path
    lesion_iodine[r0:r1, c0:c1] = iodine_profile * lesion.iodine_mg_per_ml
    # The mask covers where the lesion is substantial: 10 % of its peak path for masses,
    # 25 % for the diffuse non-mass enhancement.
    cut = 0.25 if lesion.kind == "non_mass" else 0.1
    mask[r0:r1, c0:c1] = path > cut * float(path.max()) if path.max() > 0 else False
    return lesion_path, lesion_iodine, mask, (cy / p - 0.5, cx / p - 0.5)


def draw_lesion(rng: np.random.Generator, config: PhantomConfig) -> LesionSpec:
    """A random lesion: kind, enhancement, size, iodine and position in the breast."""
    kind = str(rng.choice(LESION_KINDS, p=config.lesion_kind_shares))
    index = LESION_KINDS.index(kind)
    enhancing = bool(rng.uniform() < config.enhancing_probability[index])
    if kind == "non_mass":
        diameter = rng.uniform(*config.nme_extent_mm)
        iodine = rng.uniform(*config.enhancing_nme_iodine_mg_per_ml)
    else:
        diameter = rng.uniform(*config.lesion_diameter_mm)
        iodine = rng.uniform(*config.enhancing_mass_iodine_mg_per_ml)
    if not enhancing:
        iodine = config.non_enhancing_iodine_mg_per_ml
    return LesionSpec(
        kind=kind,
        enhancing=enhancing,
        diameter_mm=float(diameter),
        iodine_mg_per_ml=float(iodine),
        depth_fraction=float(rng.uniform(0.3, 0.75)),
        azimuth_rad=float(rng.uniform(0, 2 * math.pi)),
        radial_fraction=float(rng.uniform(0.0, 0.6)),
        shape_seed=int(rng.integers(0, 2**31 - 1)),
    )
