"""Generate a phantom cohort on disk: DICOM images, truth masks and ``manifest.csv``.

Layout under the output folder (paths in the manifest are relative to it)::

    manifest.csv                one row per breast and view (see MANIFEST_COLUMNS)
    phantom.json                the configuration and arguments that made the cohort
    P0001/L_CC_LE.dcm           low-energy image
    P0001/L_CC_RC.dcm           recombined image
    P0001/truth/L_CC_breast.png breast, fgt, adipose and lesion masks: 8-bit PNG, 0 or 255
    P0001/truth/L_CC_ideal_rc.png the ideal recombined image (no quantum noise, perfect scatter
                                correction, so no halo): 16-bit PNG in RC stored values

Every random draw comes from a generator seeded by (seed, patient, breast, view), so the files
do not depend on the number of workers or their order. Files are written atomically and the
manifest last, so an interrupted run leaves no manifest and no truncated file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cemsynth.batch import available_cpus
from cemsynth.errors import CemsynthError
from cemsynth.io.atomic import write_atomic, write_text_atomic
from cemsynth.io.json_files import write_json
from cemsynth.io.manifest import MANIFEST_NAME
from cemsynth.io.paths import ensure_writable_dir
from cemsynth.phantom.acquisition import acquire
from cemsynth.phantom.anatomy import Anatomy, BreastSpec, Grid, draw_lesion, render_anatomy
from cemsynth.phantom.config import FIELD_OF_VIEW_MM, SIZE_PRESETS, PhantomConfig
from cemsynth.phantom.dicom import STUDY_DATE, ExamIds, ImageInfo, derived_uid, write_dicom
from cemsynth.phantom.physics import make_beams
from cemsynth.progress import progress_bar
from cemsynth.vocabulary import (
    BPE_GRADES,
    DENSITY_GRADES,
    LATERALITIES,
    LE_DISPLAY_WINDOW,
    RC_DISPLAY_WINDOW,
    STANDARD_VIEWS,
)

MANIFEST_COLUMNS = (
    "patient_id", "study_uid", "laterality", "view", "le_path", "rc_path",
    "breast_mask_path", "fgt_mask_path", "adipose_mask_path", "lesion_mask_path",
    "ideal_rc_path", "lesion_present", "lesion_enhancing", "lesion_kind", "bpe_grade", "halo",
    "density", "glandular_fraction", "thickness_mm", "rolloff_mm", "pixel_mm", "rows", "cols",
    "lesion_diameter_mm", "lesion_iodine_mg_per_ml", "lesion_row", "lesion_col",
    "recombination_weight", "halo_rolloff_error",
)  # fmt: skip


def _window_tags(low_high: tuple[float, float]) -> tuple[float, float]:
    """DICOM (WindowCenter, WindowWidth) for a (low, high) intensity window."""
    low, high = low_high
    return ((low + high) / 2.0, high - low)


# Viewers open the images in the paper's windows (also the preprocessing defaults).
LE_WINDOW = _window_tags(LE_DISPLAY_WINDOW)
RC_WINDOW = _window_tags(RC_DISPLAY_WINDOW)


@dataclass(frozen=True)
class CohortResult:
    n_pairs: int
    seconds: float
    manifest_path: Path
    rows: list[dict[str, str]]


@dataclass(frozen=True)
class DetectorGeometry:
    """The stored image grid and the (coarser or equal) grid the anatomy is built on."""

    rows: int
    cols: int
    pixel_mm: float
    anatomy_factor: int

    @property
    def anatomy_grid(self) -> Grid:
        k = self.anatomy_factor
        return Grid(-(-self.rows // k), -(-self.cols // k), self.pixel_mm * k)


def detector_geometry(size: str, pixel_mm: float, config: PhantomConfig) -> DetectorGeometry:
    """Validate ``size`` and ``pixel_mm`` and derive the image and anatomy grids."""
    if size not in SIZE_PRESETS:
        raise CemsynthError(f"unknown --size {size!r}; valid sizes: {', '.join(SIZE_PRESETS)}")
    if not 0.02 <= pixel_mm <= 1.0:
        raise CemsynthError(f"--pixel-mm must be between 0.02 and 1.0 mm, got {pixel_mm}")
    binning = SIZE_PRESETS[size]
    pixel = pixel_mm * binning
    rows = round(FIELD_OF_VIEW_MM[0] / pixel)
    cols = round(FIELD_OF_VIEW_MM[1] / pixel)
    factor = max(1, round(config.texture_grid_mm / pixel))
    return DetectorGeometry(rows=rows, cols=cols, pixel_mm=pixel, anatomy_factor=factor)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _choice(rng: np.random.Generator, options: tuple[str, ...], shares: tuple[float, ...]) -> str:
    return str(options[int(rng.choice(len(options), p=np.asarray(shares)))])


def breast_spec(
    seed: int, patient: int, side: int, density: str, bpe: str, config: PhantomConfig
) -> BreastSpec:
    """Everything fixed for one breast: size, compression, glandularity, iodine, lesion."""
    rng = _rng(seed, patient, side, 0)
    thickness = rng.uniform(*config.compressed_thickness_mm)
    lesion = draw_lesion(rng, config) if rng.uniform() < config.lesion_share else None
    low, high = config.glandular_fraction[DENSITY_GRADES.index(density)]
    return BreastSpec(
        thickness_mm=float(thickness),
        rolloff_mm=float(thickness / 2.0 * rng.uniform(*config.rolloff_width_factor)),
        depth_mm=float(rng.uniform(*config.breast_depth_mm)),
        half_width_mm=float(rng.uniform(*config.breast_half_width_mm)),
        nipple_length_mm=float(rng.uniform(*config.nipple_length_mm)),
        glandular_fraction=float(rng.uniform(low, high)),
        bpe_iodine_mg_per_ml=config.bpe_iodine_mg_per_ml[BPE_GRADES.index(bpe)],
        lesion=lesion,
    )


def _repeat(
    mask: npt.NDArray[np.bool_], factor: int, shape: tuple[int, int]
) -> npt.NDArray[np.bool_]:
    if factor > 1:
        mask = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
    return np.ascontiguousarray(mask[: shape[0], : shape[1]])


def truth_masks(
    anatomy: Anatomy, distance_mm: npt.NDArray[np.float32], factor: int, config: PhantomConfig
) -> dict[str, npt.NDArray[np.bool_]]:
    """Breast, fibroglandular, adipose and lesion masks on the detector grid.

    Tissue masks keep ``mask_edge_margin_mm`` clear of the skin line (where the thickness
    rolls off and tissue type is ill-defined), and exclude lesions, muscle and vessels.
    """
    shape = distance_mm.shape
    share = anatomy.glandular_share
    clean = (
        (anatomy.distance_mm >= config.mask_edge_margin_mm)
        & (anatomy.muscle <= 0.0)
        & (anatomy.lesion <= 0.0)
        & (anatomy.blood <= 0.0)
    )
    fgt = clean & (share >= config.fgt_mask_threshold)
    adipose = clean & (share <= config.adipose_mask_threshold)
    return {
        "breast": distance_mm > 0,
        "fgt": _repeat(fgt, factor, shape),
        "adipose": _repeat(adipose, factor, shape),
        "lesion": _repeat(anatomy.lesion_mask, factor, shape),
    }


def _write_png(path: Path, pixels: npt.NDArray[np.bool_] | npt.NDArray[np.uint16]) -> None:
    """A mask as 8-bit 0/255, or uint16 stored values as a 16-bit grayscale PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    if pixels.dtype == np.bool_:
        image = Image.fromarray(pixels.astype(np.uint8) * 255, mode="L")
    else:
        image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint16))
    image.save(buffer, "PNG", compress_level=1)
    write_atomic(path, lambda handle: handle.write(buffer.getvalue()))


def simulate_patient(
    out: Path, patient: int, seed: int, geometry: DetectorGeometry, config: PhantomConfig
) -> list[dict[str, str]]:
    """Simulate and write all four LE/RC pairs of one patient; return their manifest rows."""
    beams = make_beams(config)
    rng = _rng(seed, patient)
    density = _choice(rng, DENSITY_GRADES, config.density_shares)
    bpe = _choice(rng, BPE_GRADES, config.bpe_shares)
    patient_id = f"P{patient + 1:04d}"
    exam = ExamIds(
        patient_id=patient_id,
        patient_name=f"PHANTOM^{patient_id}",
        study_uid=derived_uid(seed, patient, "study"),
        study_date=STUDY_DATE + dt.timedelta(days=int(rng.integers(0, 365))),
        accession=f"CEM{seed % 10000:04d}{patient + 1:05d}",
        age_years=int(rng.integers(40, 76)),
    )
    shape = (geometry.rows, geometry.cols)
    rows: list[dict[str, str]] = []
    for side_index, side in enumerate(LATERALITIES):
        spec = breast_spec(seed, patient, side_index, density, bpe, config)
        for view_index, view in enumerate(STANDARD_VIEWS):
            view_rng = _rng(seed, patient, side_index, view_index + 1)
            halo = bool(view_rng.uniform() < config.halo_share)
            anatomy = render_anatomy(geometry.anatomy_grid, spec, view, view_rng, config)
            acquisition, distance = acquire(
                anatomy, geometry.anatomy_factor, shape, spec, beams, halo, view_rng, config
            )
            masks = truth_masks(anatomy, distance, geometry.anatomy_factor, config)
            le, rc = acquisition.low_energy, acquisition.recombined
            ideal_rc = acquisition.ideal_recombined
            lesion_rc = anatomy.lesion_center_rc
            if lesion_rc is not None:
                k = geometry.anatomy_factor
                lesion_rc = ((lesion_rc[0] + 0.5) * k - 0.5, (lesion_rc[1] + 0.5) * k - 0.5)
            if side == "R":  # canonical images have the chest wall at column 0
                le, rc, ideal_rc = np.fliplr(le), np.fliplr(rc), np.fliplr(ideal_rc)
                masks = {name: np.fliplr(m) for name, m in masks.items()}
                if lesion_rc is not None:
                    lesion_rc = (lesion_rc[0], geometry.cols - 1 - lesion_rc[1])
            stem = f"{side}_{view}"
            relative = {
                "le_path": f"{patient_id}/{stem}_LE.dcm",
                "rc_path": f"{patient_id}/{stem}_RC.dcm",
                **{f"{name}_mask_path": f"{patient_id}/truth/{stem}_{name}.png" for name in masks},
                "ideal_rc_path": f"{patient_id}/truth/{stem}_ideal_rc.png",
            }
            for kind, pixels, kvp, window, number in (
                ("LE", le, config.le_kvp, LE_WINDOW, 1 + 2 * side_index + view_index),
                ("RC", rc, config.he_kvp, RC_WINDOW, 1 + 2 * side_index + view_index),
            ):
                info = ImageInfo(
                    laterality=side, view=view, kind=kind,
                    series_uid=derived_uid(seed, patient, "series", kind),
                    sop_uid=derived_uid(seed, patient, side, view, kind),
                    instance_number=number, pixel_mm=geometry.pixel_mm,
                    thickness_mm=spec.thickness_mm, kvp=kvp,
                    bits_stored=config.bits_stored, window=window,
                )  # fmt: skip
                write_dicom(out / relative[f"{kind.lower()}_path"], pixels, exam, info)
            for name, mask in masks.items():
                _write_png(out / relative[f"{name}_mask_path"], mask)
            _write_png(out / relative["ideal_rc_path"], ideal_rc)
            lesion = spec.lesion
            rows.append({
                "patient_id": patient_id,
                "study_uid": exam.study_uid,
                "laterality": side,
                "view": view,
                **relative,
                "lesion_present": str(int(lesion is not None)),
                "lesion_enhancing": str(int(lesion is not None and lesion.enhancing)),
                "lesion_kind": lesion.kind if lesion is not None else "none",
                "bpe_grade": bpe,
                "halo": str(int(halo)),
                "density": density,
                "glandular_fraction": f"{spec.glandular_fraction:.4f}",
                "thickness_mm": f"{spec.thickness_mm:.2f}",
                "rolloff_mm": f"{spec.rolloff_mm:.2f}",
                "pixel_mm": f"{geometry.pixel_mm:.4f}",
                "rows": str(geometry.rows),
                "cols": str(geometry.cols),
                "lesion_diameter_mm": f"{lesion.diameter_mm:.2f}" if lesion else "",
                "lesion_iodine_mg_per_ml": f"{lesion.iodine_mg_per_ml:.3f}" if lesion else "",
                "lesion_row": f"{lesion_rc[0]:.1f}" if lesion_rc else "",
                "lesion_col": f"{lesion_rc[1]:.1f}" if lesion_rc else "",
                "recombination_weight": f"{acquisition.recombination_weight:.5f}",
                "halo_rolloff_error": f"{acquisition.halo_rolloff_error:.4f}",
            })  # fmt: skip
    return rows


def _manifest_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _run(
    out: Path,
    n_patients: int,
    seed: int,
    geometry: DetectorGeometry,
    config: PhantomConfig,
    workers: int,
) -> Iterator[list[dict[str, str]]]:
    if workers <= 1 or n_patients == 1:
        for patient in range(n_patients):
            yield simulate_patient(out, patient, seed, geometry, config)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(simulate_patient, out, p, seed, geometry, config) for p in range(n_patients)
        ]
        try:
            for future in as_completed(futures):
                yield future.result()
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def write_cohort(
    out: Path,
    n_patients: int,
    seed: int,
    pixel_mm: float,
    size: str,
    config: PhantomConfig,
    workers: int = 0,
    progress: bool = False,
) -> CohortResult:
    """Simulate ``n_patients`` patients (both breasts, CC and MLO) into ``out``.

    ``pixel_mm`` is the detector pitch; ``size`` a key of ``SIZE_PRESETS``. ``workers`` is the
    number of processes (0: one per CPU core). Returns the manifest rows, sorted by patient,
    laterality and view.
    """
    if n_patients < 1:
        raise CemsynthError(f"--patients must be at least 1, got {n_patients}")
    if workers < 0:
        raise CemsynthError(f"--workers must be 0 (auto) or more, got {workers}")
    if seed < 0:
        raise CemsynthError(f"--seed must be 0 or more, got {seed}")
    geometry = detector_geometry(size, pixel_mm, config)
    out = Path(out)
    ensure_writable_dir(out, "output folder")
    manifest_path = out / MANIFEST_NAME
    manifest_path.unlink(missing_ok=True)  # no stale manifest may describe a partial run
    workers = min(workers or available_cpus(), n_patients)
    start = time.perf_counter()
    rows: list[dict[str, str]] = []
    batches = _run(out, n_patients, seed, geometry, config, workers)
    with progress_bar("simulating patients", enabled=progress, transient=False) as bar:
        task = bar.add_task("simulate", total=n_patients)
        for batch in batches:
            rows.extend(batch)
            bar.advance(task)
    rows.sort(key=lambda r: (r["patient_id"], r["laterality"], STANDARD_VIEWS.index(r["view"])))
    description = {
        "generator": "cemsynth phantom",
        "n_patients": n_patients,
        "seed": seed,
        "pixel_mm": pixel_mm,
        "size": size,
        "image_pixel_mm": geometry.pixel_mm,
        "rows": geometry.rows,
        "cols": geometry.cols,
        "config": config.to_dict(),
    }
    write_json(out / "phantom.json", description, indent=1)
    write_text_atomic(manifest_path, _manifest_text(rows))
    return CohortResult(
        n_pairs=len(rows),
        seconds=time.perf_counter() - start,
        manifest_path=manifest_path,
        rows=rows,
    )
