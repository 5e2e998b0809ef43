"""From anatomy to stored LE and RC pixels: scatter, quantum noise, blur, recombination.

The chain for each energy: primary signal P (polyenergetic Beer-Lambert) -> plus scatter S
(a broad point-spread of the primary, scaled by a scatter-to-primary ratio that grows with
thickness) -> quantum noise -> detector blur -> the vendor's scatter correction -> log.
The recombined signal is ``R = A_high - w * A_low`` with w calibrated at the breast's nominal
thickness. Presentation processing then equalises thickness and maps to stored values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from cemsynth.phantom.anatomy import Anatomy, BreastSpec, thickness_profile
from cemsynth.phantom.config import PhantomConfig
from cemsynth.phantom.physics import Beam, Beams, log_attenuation, recombination_weight
from cemsynth.phantom.sampling import upsample

F32 = npt.NDArray[np.float32]
U16 = npt.NDArray[np.uint16]


@dataclass
class Acquisition:
    """Stored images (uint16, ``bits_stored`` bits) and what made them.

    ``ideal_recombined`` is the same exposure recombined without quantum noise and with
    perfect scatter correction (so without the halo), on the same stored scale: what an ideal
    prediction from the LE image could approach (iodine, vessels, lesions; no noise).
    """

    low_energy: U16
    recombined: U16
    ideal_recombined: U16
    recombination_weight: float
    halo: bool
    scatter_kernel_mm: float
    halo_rolloff_error: float


def _block_mean(array: F32, factor: int) -> F32:
    rows, cols = (array.shape[0] // factor) * factor, (array.shape[1] // factor) * factor
    trimmed = array[:rows, :cols]
    return trimmed.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


def scatter_field(
    source: F32, pixel_mm: float, spr: float, kernel_mm: float, factor: int, shape: tuple[int, int]
) -> F32:
    """Scatter reaching each detector pixel: ``spr`` x a Gaussian point-spread of ``source``.

    ``source`` (on a grid of ``pixel_mm``) is where scatter is generated: the primary behind
    tissue, weighted by relative thickness. In a uniform interior the result is
    ``spr * primary``; near the skin line it falls, because less tissue lies within a kernel
    width. Computed on a ~2 mm grid, then interpolated onto the detector grid ``shape``, which
    is ``factor`` times finer than ``source``.
    """
    block = max(1, round(2.0 / pixel_mm))
    coarse = _block_mean(source, block)
    blurred = ndimage.gaussian_filter(coarse, kernel_mm / (pixel_mm * block), mode="constant")
    fine = upsample(blurred.astype(np.float32), block * factor)
    out = np.zeros(shape, dtype=np.float32)
    rows, cols = min(shape[0], fine.shape[0]), min(shape[1], fine.shape[1])
    out[:rows, :cols] = fine[:rows, :cols]
    # Trimmed edge blocks (at most block-1 coarse pixels) take their neighbour's value.
    if rows < shape[0]:
        out[rows:, :] = out[rows - 1 : rows, :]
    if cols < shape[1]:
        out[:, cols:] = out[:, cols - 1 : cols]
    return out * np.float32(spr)


def equalisation_reference(
    beam: Beam, distance_mm: F32, spec: BreastSpec, config: PhantomConfig
) -> F32:
    """-ln(I/I0) of 50 % glandular tissue of the local thickness (no skin), per pixel.

    Evaluated on a 1-D table over the distance to the skin line, then interpolated.
    """
    table_mm = np.linspace(0.0, spec.rolloff_mm, 256, dtype=np.float32)
    total, _ = thickness_profile(table_mm, spec, config.skin_thickness_mm)
    table = log_attenuation(beam, {"glandular": 0.5 * total, "adipose": 0.5 * total})
    return np.interp(distance_mm, table_mm, table).astype(np.float32)


def acquire(
    anatomy: Anatomy,
    factor: int,
    detector_shape: tuple[int, int],
    spec: BreastSpec,
    beams: Beams,
    halo: bool,
    rng: np.random.Generator,
    config: PhantomConfig,
) -> tuple[Acquisition, F32]:
    """Simulate the dual-energy exposure of ``anatomy`` and return stored LE and RC images.

    ``anatomy`` lies on a grid ``factor`` times coarser than the detector: its noise-free
    signals are interpolated up, then quantum noise and blur are added on the detector grid
    ``detector_shape``. Also returns the distance to the skin line (mm) on the detector grid.
    """
    shape = detector_shape
    pixel = anatomy.grid.pixel_mm / factor
    nominal_cm = spec.thickness_mm / 10.0
    paths = anatomy.paths()
    a_low_c = log_attenuation(beams.low, paths)
    a_high_c = log_attenuation(beams.high, paths)
    weight = recombination_weight(beams, nominal_cm, config.skin_thickness_mm / 10.0)
    ref_low_c = equalisation_reference(beams.low, anatomy.distance_mm, spec, config)
    ref_high_c = equalisation_reference(beams.high, anatomy.distance_mm, spec, config)
    breast_c = anatomy.breast

    relative = anatomy.thickness / np.float32(nominal_cm)
    # The vendor's scatter model: exact for halo-free images; for halo images it assumes part
    # of the peripheral thickness that the roll-off removed.
    rolloff_error = float(rng.uniform(*config.halo_rolloff_error)) if halo else 0.0
    assumed = (relative + np.float32(rolloff_error) * (1.0 - relative)) * breast_c

    distance = upsample(anatomy.distance_mm, factor, shape)
    breast = distance > 0
    blur_px = config.detector_blur_mm / pixel
    logs = []
    ideal_logs = []
    for a_c, spr_per_cm, quanta_per_mm2 in (
        (a_low_c, config.spr_per_cm_le, config.le_quanta_per_mm2),
        (a_high_c, config.spr_per_cm_he, config.he_quanta_per_mm2),
    ):
        primary_c = np.exp(-a_c)
        # Perfect scatter correction leaves the blurred primary; no quanta, no noise.
        ideal = np.exp(-upsample(a_c, factor, shape))
        if blur_px >= 0.3:
            ideal = ndimage.gaussian_filter(ideal, blur_px)
        ideal_logs.append(-np.log(np.maximum(ideal, np.float32(1e-6))))
        spr = spr_per_cm * nominal_cm
        scatter = scatter_field(
            primary_c * relative,
            anatomy.grid.pixel_mm,
            spr,
            config.scatter_kernel_mm,
            factor,
            shape,
        )
        measured = np.exp(-upsample(a_c, factor, shape))
        measured += scatter
        quanta = np.float32(quanta_per_mm2 * pixel * pixel)  # open-beam quanta per pixel
        noise = rng.standard_normal(shape, dtype=np.float32)
        measured += np.sqrt(measured / quanta) * noise
        if blur_px >= 0.3:
            measured = ndimage.gaussian_filter(measured, blur_px)
        if halo:
            measured -= scatter_field(
                primary_c * assumed,
                anatomy.grid.pixel_mm,
                spr,
                config.scatter_kernel_mm,
                factor,
                shape,
            )
        else:
            measured -= scatter
        np.maximum(measured, np.float32(1e-6), out=measured)
        np.log(measured, out=measured)
        logs.append(-measured)
    log_low, log_high = logs

    max_value = float(2**config.bits_stored - 1)
    le = log_low - upsample(ref_low_c, factor, shape)
    le *= np.float32(config.le_gain)
    le += np.float32(config.le_center)
    background = config.le_background + 2.0 * rng.standard_normal(shape, dtype=np.float32)
    le = np.where(breast, le, background)
    reference = upsample(ref_high_c - np.float32(weight) * ref_low_c, factor, shape)

    def recombine(high: F32, low: F32) -> F32:
        combined = high - np.float32(weight) * low - reference
        return combined * np.float32(config.rc_gain) + np.float32(config.rc_offset)

    rc = recombine(log_high, log_low)
    # Like LE, the recombined image's background is set to a flat value with mild noise.
    rc = np.where(breast, rc, config.rc_offset + 2.0 * rng.standard_normal(shape, dtype=np.float32))
    ideal_rc = np.where(breast, recombine(ideal_logs[1], ideal_logs[0]), config.rc_offset)
    le_stored = np.clip(np.rint(le), 0, max_value).astype(np.uint16)
    rc_stored = np.clip(np.rint(rc), 0, max_value).astype(np.uint16)
    return (
        Acquisition(
            low_energy=le_stored,
            recombined=rc_stored,
            ideal_recombined=np.clip(np.rint(ideal_rc), 0, max_value).astype(np.uint16),
            recombination_weight=weight,
            halo=halo,
            scatter_kernel_mm=config.scatter_kernel_mm,
            halo_rolloff_error=rolloff_error,
        ),
        distance,
    )
