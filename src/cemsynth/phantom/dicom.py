"""Write phantom acquisitions as DICOM Digital Mammography X-Ray images (For Presentation).

The files look like a CEM system's output: Modality MG, 16-bit allocated / 14-bit stored,
MONOCHROME2, ImageLaterality, ViewPosition, PixelSpacing and ImagerPixelSpacing, and an
ImageType plus SeriesDescription that tell low-energy from recombined images. UIDs are derived
from the seed, so the same seed writes byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from cemsynth import __version__
from cemsynth.io.dicom_build import (
    code_item,
    hashed_uid,
    implementation_version_name,
    new_mg_dataset,
    set_identity_presentation,
    set_mono16_pixels,
    set_patient_study,
    write_dataset,
)

LOW_ENERGY_IMAGE_TYPE = ["ORIGINAL", "PRIMARY", "", "LOW_ENERGY"]
RECOMBINED_IMAGE_TYPE = ["DERIVED", "PRIMARY", "", "RECOMBINED"]
LOW_ENERGY_DESCRIPTION = "CEM low energy"
RECOMBINED_DESCRIPTION = "CEM recombined"
# Patient orientation (row direction, column direction) with the chest wall at column 0 for
# left breasts and at the last column for right breasts.
PATIENT_ORIENTATION = {
    ("L", "CC"): ["A", "R"],
    ("R", "CC"): ["P", "L"],
    ("L", "MLO"): ["A", "FR"],
    ("R", "MLO"): ["P", "FL"],
}
VIEW_CODES = {  # SNOMED CT view codes used in ViewCodeSequence
    "CC": ("399162004", "cranio-caudal"),
    "MLO": ("399368009", "medio-lateral oblique"),
}
STUDY_DATE = dt.date(2026, 1, 5)


def derived_uid(*parts: object) -> str:
    """A UID that is a pure function of ``parts`` (so a seed reproduces the files).

    Uses the ``2.25.<128-bit integer>`` form (ISO/IEC 9834-8), see
    :func:`cemsynth.io.dicom_build.hashed_uid`.
    """
    return hashed_uid("cemsynth-phantom", *parts)


@dataclass(frozen=True)
class ExamIds:
    """Identifiers shared by every image of one patient's exam."""

    patient_id: str
    patient_name: str
    study_uid: str
    study_date: dt.date
    accession: str
    age_years: int


@dataclass(frozen=True)
class ImageInfo:
    """What one image needs besides its pixels."""

    laterality: str
    view: str
    kind: str  # "LE" or "RC"
    series_uid: str
    sop_uid: str
    instance_number: int
    pixel_mm: float
    thickness_mm: float
    kvp: float
    bits_stored: int
    window: tuple[float, float]  # (center, width)


def build_dataset(pixels: npt.NDArray[np.uint16], exam: ExamIds, info: ImageInfo) -> Dataset:
    """A complete DICOM dataset (with file meta) for one stored image ``(rows, cols)``."""
    ds = new_mg_dataset(
        info.sop_uid,
        implementation_class_uid=derived_uid("implementation", "cemsynth"),
        implementation_version=implementation_version_name(__version__),
    )
    date = exam.study_date.strftime("%Y%m%d")
    low_energy = info.kind == "LE"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = LOW_ENERGY_IMAGE_TYPE if low_energy else RECOMBINED_IMAGE_TYPE
    set_patient_study(
        ds,
        study_uid=exam.study_uid,
        patient_id=exam.patient_id,
        patient_name=exam.patient_name,
        patient_sex="F",
        study_date=date,
        study_time="093000",
        study_id="1",
        accession=exam.accession,
    )
    ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "093000"
    ds.Manufacturer = "cemsynth phantom"
    ds.ManufacturerModelName = "physics-based CEM simulator"
    ds.SoftwareVersions = __version__
    ds.InstitutionName = "Simulated"
    ds.StudyDescription = "Contrast-enhanced mammography (simulated)"
    # One LE and one RC series per exam hold all four views: series-level attributes must
    # not depend on the view (laterality and view are image-level: ImageLaterality, ViewPosition).
    ds.SeriesDescription = LOW_ENERGY_DESCRIPTION if low_energy else RECOMBINED_DESCRIPTION
    ds.PatientAge = f"{exam.age_years:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ContrastBolusAgent = "Iodine (simulated)"
    ds.KVP = f"{info.kvp:.0f}"
    ds.BodyPartThickness = f"{info.thickness_mm:.1f}"
    ds.ViewPosition = info.view
    code_value, meaning = VIEW_CODES[info.view]
    ds.ViewCodeSequence = Sequence([code_item(code_value, "SCT", meaning)])
    ds.ImagerPixelSpacing = [f"{info.pixel_mm:.4f}", f"{info.pixel_mm:.4f}"]
    ds.PixelSpacing = [f"{info.pixel_mm:.4f}", f"{info.pixel_mm:.4f}"]
    ds.EstimatedRadiographicMagnificationFactor = "1.0"
    ds.SeriesInstanceUID = info.series_uid
    ds.SeriesNumber = 1 if low_energy else 2
    ds.InstanceNumber = info.instance_number
    ds.PatientOrientation = PATIENT_ORIENTATION[(info.laterality, info.view)]
    ds.ImageLaterality = info.laterality
    ds.PositionerType = "MAMMOGRAPHIC"
    ds.AnatomicRegionSequence = Sequence([code_item("76752008", "SCT", "Breast")])
    ds.ImageComments = "Simulated image from the cemsynth phantom; not a patient image."
    if not low_energy:
        ds.DerivationDescription = "Weighted log subtraction of high- and low-energy images"
    set_mono16_pixels(ds, pixels, info.bits_stored)
    # Stored values are linear in log attenuation; identity rescale and presentation LUT.
    set_identity_presentation(
        ds,
        relationship="LOG",
        window_center=info.window[0],
        window_width=info.window[1],
        decimals=0,
    )
    return ds


def write_dicom(path: Path, pixels: npt.NDArray[np.uint16], exam: ExamIds, info: ImageInfo) -> None:
    """Write one image atomically (a crash never leaves a truncated file under ``path``)."""
    write_dataset(path, build_dataset(pixels, exam, info))
