"""Physics checked on generated images: contrast, cancellation, enhancement, halo, truth."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from scipy import ndimage

from cemsynth.phantom.cohort import MANIFEST_COLUMNS, CohortResult, write_cohort
from cemsynth.phantom.config import PhantomConfig

Cohort = tuple[Path, CohortResult]
PIXEL_MM = 0.4  # the "small" size: 0.1 mm detector read out with 4 x 4 binning


def pixels(path: Path) -> np.ndarray:
    return pydicom.dcmread(path).pixel_array.astype(np.float64)


def mask(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)) > 0


def cnr(image: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """The paper's CNR: |mean_a - mean_b| / (std_a + std_b)."""
    return float(abs(image[a].mean() - image[b].mean()) / (image[a].std() + image[b].std()))


def rows_of(cohort: Cohort) -> list[dict[str, str]]:
    out, _ = cohort
    with open(out / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def distance_to_skin_mm(breast: np.ndarray) -> np.ndarray:
    """In-plane distance to the skin line; the chest-wall edge does not count as skin."""
    padded = np.pad(breast, 20, mode="edge")
    return ndimage.distance_transform_edt(padded)[20:-20, 20:-20] * PIXEL_MM


def test_manifest_has_the_promised_columns_and_four_views_per_patient(cohort: Cohort) -> None:
    out, result = cohort
    rows = rows_of(cohort)
    assert result.n_pairs == len(rows) == 4 * len({r["patient_id"] for r in rows})
    assert list(rows[0]) == list(MANIFEST_COLUMNS)
    for row in rows:
        assert row["bpe_grade"] in "abcd" and row["lesion_present"] in ("0", "1")
        assert row["halo"] in ("0", "1") and row["lesion_enhancing"] in ("0", "1")
        for key in ("le_path", "rc_path", "breast_mask_path", "fgt_mask_path",
                    "adipose_mask_path", "lesion_mask_path", "ideal_rc_path"):  # fmt: skip
            assert not Path(row[key]).is_absolute() and (out / row[key]).is_file()


def test_dicom_headers_describe_a_cem_acquisition(cohort: Cohort) -> None:
    out, _ = cohort
    for row in rows_of(cohort)[:4]:
        le = pydicom.dcmread(out / row["le_path"])
        rc = pydicom.dcmread(out / row["rc_path"])
        for ds in (le, rc):
            assert ds.Modality == "MG"
            assert ds.BitsAllocated == 16 and ds.BitsStored == 14 and ds.HighBit == 13
            assert ds.PhotometricInterpretation == "MONOCHROME2"
            assert ds.ImageLaterality == row["laterality"]
            assert ds.ViewPosition == row["view"]
            assert [float(v) for v in ds.PixelSpacing] == [PIXEL_MM, PIXEL_MM]
            assert [float(v) for v in ds.ImagerPixelSpacing] == [PIXEL_MM, PIXEL_MM]
            assert ds.PatientID == row["patient_id"]
            assert ds.StudyInstanceUID == row["study_uid"]
            assert ds.pixel_array.max() < 2**14
        assert "LOW_ENERGY" in le.ImageType and "RECOMBINED" in rc.ImageType
        assert le.SeriesDescription == "CEM low energy"
        assert rc.SeriesDescription == "CEM recombined"
        assert le.PresentationLUTShape == "IDENTITY" and le.PositionerType == "MAMMOGRAPHIC"
        assert le.AnatomicRegionSequence[0].CodeMeaning == "Breast"
        assert le.SeriesInstanceUID != rc.SeriesInstanceUID
        assert le.SOPInstanceUID != rc.SOPInstanceUID


def test_masks_are_binary_png_and_consistent_with_images_and_manifest(cohort: Cohort) -> None:
    out, _ = cohort
    for row in rows_of(cohort):
        image = pixels(out / row["le_path"])
        raw = np.asarray(Image.open(out / row["breast_mask_path"]))
        assert raw.dtype == np.uint8 and set(np.unique(raw)) <= {0, 255}
        breast = raw > 0
        fgt, adipose = mask(out / row["fgt_mask_path"]), mask(out / row["adipose_mask_path"])
        lesion = mask(out / row["lesion_mask_path"])
        for m in (breast, fgt, adipose, lesion):
            assert m.shape == image.shape
        assert not (fgt & adipose).any()
        assert not (fgt & ~breast).any() and not (adipose & ~breast).any()
        assert not (lesion & ~breast).any()
        assert bool(lesion.any()) == (row["lesion_present"] == "1")
        if row["lesion_present"] == "1":
            r, c = round(float(row["lesion_row"])), round(float(row["lesion_col"]))
            assert lesion[max(r - 2, 0) : r + 3, max(c - 2, 0) : c + 3].any()
        # Breast pixels are exposed tissue; outside is the flat dark background.
        assert image[breast].mean() > 1500 > image[~breast].mean()
        # Chest wall on the left for left breasts, on the right for right breasts.
        edge = breast[:, 0] if row["laterality"] == "L" else breast[:, -1]
        assert edge.mean() > 0.3


def test_stored_values_lie_in_the_papers_windows(cohort: Cohort) -> None:
    out, _ = cohort
    le_values, rc_values = [], []
    for row in rows_of(cohort):
        breast = mask(out / row["breast_mask_path"])
        inner = distance_to_skin_mm(breast) > 5.0
        le_values.append(pixels(out / row["le_path"])[inner])
        rc_values.append(pixels(out / row["rc_path"])[inner])
    le_low, le_high = np.percentile(np.concatenate(le_values), [2, 98])
    rc_low, rc_high = np.percentile(np.concatenate(rc_values), [2, 98])
    assert le_low >= 1700 and le_high <= 3000  # paper window 1800-2900
    assert rc_low >= 1600 and rc_high <= 2500  # paper window 1700-2400


def test_fibroglandular_tissue_is_denser_in_le_and_cancelled_in_rc(cohort: Cohort) -> None:
    """In LE, FGT is clearly brighter than fat; in RC (minimal BPE) that contrast is gone."""
    out, _ = cohort
    le_cnrs, rc_cnrs = [], []
    for row in rows_of(cohort):
        fgt, adipose = mask(out / row["fgt_mask_path"]), mask(out / row["adipose_mask_path"])
        if fgt.sum() < 200 or adipose.sum() < 200:
            continue
        le = pixels(out / row["le_path"])
        assert le[fgt].mean() > le[adipose].mean() + 300
        le_cnrs.append(cnr(le, fgt, adipose))
        if row["bpe_grade"] == "a":
            # Away from the periphery (the masks keep 6 mm clear of the skin line).
            rc_cnrs.append(cnr(pixels(out / row["rc_path"]), fgt, adipose))
    assert len(le_cnrs) >= 8 and len(rc_cnrs) >= 2
    assert np.median(le_cnrs) > 2.0
    assert np.median(rc_cnrs) < 0.35
    assert np.median(rc_cnrs) < 0.2 * np.median(le_cnrs)


def test_enhancing_lesions_stand_out_in_rc(cohort: Cohort) -> None:
    out, _ = cohort
    enhancing, other = [], []
    for row in rows_of(cohort):
        if row["lesion_present"] != "1":
            continue
        lesion = mask(out / row["lesion_mask_path"])
        breast = mask(out / row["breast_mask_path"])
        ring = (
            ndimage.binary_dilation(lesion, iterations=15)
            & ~ndimage.binary_dilation(lesion, iterations=5)
            & breast
        )
        rc = pixels(out / row["rc_path"])
        value = (rc[lesion].mean() - rc[ring].mean()) / rc[ring].std()
        (enhancing if row["lesion_enhancing"] == "1" else other).append(value)
    assert len(enhancing) >= 3
    assert min(enhancing) > 1.0
    assert np.median(enhancing) > 2.0
    if other:
        assert np.median(other) < np.median(enhancing)


def halo_index(rc: np.ndarray, breast: np.ndarray, adipose: np.ndarray) -> float:
    """Mean RC of fat in the 6-20 mm peripheral band minus that of fat deeper than 35 mm.

    Fat carries no BPE, so the difference isolates the thickness/scatter artifact.
    """
    distance = distance_to_skin_mm(breast)
    band = adipose & (distance > 6.0) & (distance < 20.0)
    inner = adipose & (distance > 35.0)
    return float(rc[band].mean() - rc[inner].mean())


def test_halo_images_show_excess_peripheral_signal_that_others_lack(cohort: Cohort) -> None:
    out, _ = cohort
    halo, clean = [], []
    for row in rows_of(cohort):
        index = halo_index(
            pixels(out / row["rc_path"]),
            mask(out / row["breast_mask_path"]),
            mask(out / row["adipose_mask_path"]),
        )
        (halo if row["halo"] == "1" else clean).append(index)
    assert len(halo) >= 4 and len(clean) >= 4
    assert min(halo) > max(clean)
    assert np.median(halo) > 100.0  # about 0.7 mg/cm^2 of iodine-equivalent signal
    assert np.median(clean) < 50.0


def ideal(out: Path, row: dict[str, str]) -> np.ndarray:
    return np.asarray(Image.open(out / row["ideal_rc_path"])).astype(np.float64)


def test_ideal_rc_is_the_clinical_rc_without_noise(cohort: Cohort) -> None:
    """On halo-free images the clinical RC is the ideal RC plus zero-mean quantum noise: equal
    means, a residual as noisy as the RC's own pixel-to-pixel noise, and an ideal image with
    (almost) none of it."""
    out, _ = cohort
    checked = 0
    for row in rows_of(cohort):
        if row["halo"] == "1":
            continue
        rc = pixels(out / row["rc_path"])
        perfect = ideal(out, row)
        inner = ndimage.binary_erosion(mask(out / row["breast_mask_path"]), iterations=25)
        residual = (rc - perfect)[inner]
        # pixel-to-pixel noise from horizontal neighbour differences (anatomy cancels)
        rc_noise = np.std(np.diff(rc, axis=1)[inner[:, 1:]]) / np.sqrt(2)
        ideal_noise = np.std(np.diff(perfect, axis=1)[inner[:, 1:]]) / np.sqrt(2)
        assert abs(residual.mean()) < 0.05 * rc_noise
        assert residual.std() == pytest.approx(rc_noise, rel=0.15)
        assert ideal_noise < 0.3 * rc_noise  # what is left: edges of vessels and gland
        checked += 1
    assert checked >= 4


def test_ideal_rc_has_no_halo_and_keeps_the_iodine(cohort: Cohort) -> None:
    """The halo (scatter over-correction near the skin line) is in the clinical RC only, while
    enhancing lesions are as bright in the ideal RC as in the clinical one."""
    out, _ = cohort
    halo_clinical, halo_ideal, lesion_gap = [], [], []
    for row in rows_of(cohort):
        breast = mask(out / row["breast_mask_path"])
        adipose = mask(out / row["adipose_mask_path"])
        rc, perfect = pixels(out / row["rc_path"]), ideal(out, row)
        if row["halo"] == "1":
            halo_clinical.append(halo_index(rc, breast, adipose))
            halo_ideal.append(halo_index(perfect, breast, adipose))
        if row["lesion_enhancing"] == "1" and row["halo"] == "0":
            lesion = mask(out / row["lesion_mask_path"])
            lesion_gap.append(abs(rc[lesion].mean() - perfect[lesion].mean()))
    assert len(halo_clinical) >= 4
    assert np.median(halo_clinical) > 100.0 and max(halo_ideal) < 50.0
    assert lesion_gap and max(lesion_gap) < 10.0  # stored units; lesions enhance by hundreds


def test_halo_share_is_configurable(tmp_path: Path) -> None:
    for share in (0.0, 1.0):
        result = write_cohort(
            tmp_path / str(share),
            n_patients=1,
            seed=1,
            pixel_mm=0.1,
            size="small",
            config=PhantomConfig(halo_share=share),
            workers=1,
        )
        assert {row["halo"] for row in result.rows} == {str(int(share))}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files_whatever_the_worker_count(tmp_path: Path) -> None:
    config = PhantomConfig()
    common = {"n_patients": 2, "pixel_mm": 0.1, "size": "small", "config": config}
    write_cohort(tmp_path / "a", seed=11, workers=1, **common)  # type: ignore[arg-type]
    write_cohort(tmp_path / "b", seed=11, workers=2, **common)  # type: ignore[arg-type]
    write_cohort(tmp_path / "c", seed=12, workers=1, **common)  # type: ignore[arg-type]
    a, b, c = (_digest(tmp_path / name) for name in "abc")
    assert a == b
    assert len(a) == 2 * 4 * 7 + 2  # 2 patients x 4 views x (2 DICOM + 4 masks + ideal RC) + 2
    assert a["P0001/L_CC_LE.dcm"] != c["P0001/L_CC_LE.dcm"]


@pytest.mark.slow
def test_full_size_image_has_detector_geometry(tmp_path: Path) -> None:
    result = write_cohort(
        tmp_path, n_patients=1, seed=0, pixel_mm=0.1, size="full", config=PhantomConfig(), workers=1
    )
    ds = pydicom.dcmread(tmp_path / result.rows[0]["le_path"])
    assert (ds.Rows, ds.Columns) == (2850, 2394)
    assert [float(v) for v in ds.PixelSpacing] == [0.1, 0.1]
