"""Write phantom acquisitions as DICOM Digital Mammography X-Ray images (For Presentation).

The files look like a CEM system's output: Modality MG, 16-bit allocated / 14-bit stored,
MONOCHROME2, ImageLaterality, ViewPosition, PixelSpacing and ImagerPixelSpacing, and an
ImageType plus SeriesDescription that tell low-energy from recombined images. UIDs are derived
from the seed, so the same seed writes byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from cemsynth import __version__
from cemsynth.io.atomic import write_atomic

MAMMOGRAPHY_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
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

    Uses the ``2.25.<128-bit integer>`` form (ISO/IEC 9834-8) with the integer taken from a
    SHA-256 hash of the parts.
    """
    text = "\x1f".join(["cemsynth-phantom", *map(str, parts)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


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
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MAMMOGRAPHY_FOR_PRESENTATION)
    meta.MediaStorageSOPInstanceUID = UID(info.sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(derived_uid("implementation", "cemsynth"))
    meta.ImplementationVersionName = f"CEMSYNTH_{__version__}"[:16]

    ds = Dataset()
    ds.file_meta = meta
    date = exam.study_date.strftime("%Y%m%d")
    low_energy = info.kind == "LE"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = LOW_ENERGY_IMAGE_TYPE if low_energy else RECOMBINED_IMAGE_TYPE
    ds.SOPClassUID = MAMMOGRAPHY_FOR_PRESENTATION
    ds.SOPInstanceUID = info.sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = "093000"
    ds.AccessionNumber = exam.accession
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "cemsynth phantom"
    ds.ManufacturerModelName = "physics-based CEM simulator"
    ds.SoftwareVersions = __version__
    ds.InstitutionName = "Simulated"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "Contrast-enhanced mammography (simulated)"
    # One LE and one RC series per exam hold all four views: series-level attributes must
    # not depend on the view (laterality and view are image-level: ImageLaterality, ViewPosition).
    ds.SeriesDescription = LOW_ENERGY_DESCRIPTION if low_energy else RECOMBINED_DESCRIPTION
    ds.PatientName = exam.patient_name
    ds.PatientID = exam.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "F"
    ds.PatientAge = f"{exam.age_years:03d}Y"
    ds.BodyPartExamined = "BREAST"
    ds.ContrastBolusAgent = "Iodine (simulated)"
    ds.KVP = f"{info.kvp:.0f}"
    ds.BodyPartThickness = f"{info.thickness_mm:.1f}"
    ds.ViewPosition = info.view
    code_value, meaning = VIEW_CODES[info.view]
    view_code = Dataset()
    view_code.CodeValue = code_value
    view_code.CodingSchemeDesignator = "SCT"
    view_code.CodeMeaning = meaning
    ds.ViewCodeSequence = Sequence([view_code])
    ds.ImagerPixelSpacing = [f"{info.pixel_mm:.4f}", f"{info.pixel_mm:.4f}"]
    ds.PixelSpacing = [f"{info.pixel_mm:.4f}", f"{info.pixel_mm:.4f}"]
    ds.EstimatedRadiographicMagnificationFactor = "1.0"
    ds.StudyInstanceUID = exam.study_uid
    ds.SeriesInstanceUID = info.series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = 1 if low_energy else 2
    ds.InstanceNumber = info.instance_number
    ds.PatientOrientation = PATIENT_ORIENTATION[(info.laterality, info.view)]
    ds.ImageLaterality = info.laterality
    ds.PositionerType = "MAMMOGRAPHIC"
    breast = Dataset()
    breast.CodeValue = "76752008"
    breast.CodingSchemeDesignator = "SCT"
    breast.CodeMeaning = "Breast"
    ds.AnatomicRegionSequence = Sequence([breast])
    ds.BurnedInAnnotation = "NO"
    ds.ImageComments = "Simulated image from the cemsynth phantom; not a patient image."
    if not low_energy:
        ds.DerivationDescription = "Weighted log subtraction of high- and low-energy images"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = info.bits_stored
    ds.HighBit = info.bits_stored - 1
    ds.PixelRepresentation = 0
    # Stored values are linear in log attenuation; identity rescale and presentation LUT.
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.WindowCenter = f"{info.window[0]:.0f}"
    ds.WindowWidth = f"{info.window[1]:.0f}"
    ds.VOILUTFunction = "LINEAR"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()
    return ds


def write_dicom(path: Path, pixels: npt.NDArray[np.uint16], exam: ExamIds, info: ImageInfo) -> None:
    """Write one image atomically (a crash never leaves a truncated file under ``path``)."""
    dataset = build_dataset(pixels, exam, info)
    write_atomic(path, lambda handle: dataset.save_as(handle, enforce_file_format=True))
