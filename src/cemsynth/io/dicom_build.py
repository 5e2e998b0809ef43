"""The parts every DICOM file the project writes shares.

Three builders write Digital Mammography X-Ray Image - For Presentation (MG) instances: the
phantom's acquisitions (:mod:`cemsynth.phantom.dicom`), predict's synthetic images
(:mod:`cemsynth.inference.dicom_out`) and the reader study's de-identified copies
(:mod:`cemsynth.reader_study.deid`). Each decides its own attributes; this module holds what
they have in common, so the three agree on it:

- :func:`new_mg_dataset`: file meta (Explicit VR Little Endian), SOP Common, Modality MG,
  For Presentation, no burned-in annotation;
- :func:`set_patient_study`, :func:`fill_missing_type2`: the patient and study attributes
  (type 2: present, empty when unknown);
- :func:`set_mono16_pixels`, :func:`set_identity_presentation`: the pixel module (16-bit
  unsigned MONOCHROME2) and identity rescale / presentation LUT with a linear window;
- :func:`code_item`, :func:`hashed_uid`, :func:`write_dataset`.

Element order does not matter: pydicom writes a dataset in tag order.

Ground floor: imports only numpy, pydicom, :mod:`cemsynth.errors` and :mod:`cemsynth.io`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from cemsynth.io.atomic import write_atomic

MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
"""SOP Class UID: Digital Mammography X-Ray Image Storage - For Presentation."""

PATIENT_STUDY_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
"""Type 2 attributes of the Patient and General Study modules (present, may be empty)."""


def hashed_uid(namespace: str, *parts: object) -> str:
    """A ``2.25.`` UID (ISO/IEC 9834-8) that is a pure function of ``namespace`` and ``parts``.

    The integer is the first 128 bits of the SHA-256 hash of the texts joined by ``\\x1f``;
    ``namespace`` keeps one builder's UIDs apart from another's.
    """
    text = "\x1f".join([namespace, *map(str, parts)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def implementation_version_name(version: str) -> str:
    """File meta ImplementationVersionName for cemsynth ``version`` (SH: at most 16 characters)."""
    return f"CEMSYNTH_{version}"[:16]


def new_mg_dataset(
    sop_instance_uid: str,
    *,
    implementation_class_uid: str | None = None,
    implementation_version: str | None = None,
) -> Dataset:
    """A new MG For Presentation dataset with its file meta and the attributes all builders set.

    Sets SOPClassUID, SOPInstanceUID, Modality ``MG``, PresentationIntentType ``FOR
    PRESENTATION`` and BurnedInAnnotation ``NO``. The file meta names Explicit VR Little
    Endian; ``implementation_class_uid`` / ``implementation_version`` go into it when given
    (else pydicom fills in its own when the file is written).
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MG_FOR_PRESENTATION)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if implementation_class_uid is not None:
        meta.ImplementationClassUID = UID(implementation_class_uid)
    if implementation_version is not None:
        meta.ImplementationVersionName = implementation_version
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MG_FOR_PRESENTATION
    ds.SOPInstanceUID = sop_instance_uid
    ds.Modality = "MG"
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BurnedInAnnotation = "NO"
    return ds


def set_patient_study(
    ds: Dataset,
    *,
    study_uid: str,
    patient_id: str,
    patient_name: str,
    patient_sex: str = "",
    study_date: str = "",
    study_time: str = "",
    study_id: str = "",
    accession: str = "",
) -> None:
    """Set the patient and study attributes; birth date and referring physician are empty.

    ``study_date``: ``YYYYMMDD``; ``study_time``: ``HHMMSS``; empty text means unknown.
    """
    ds.StudyInstanceUID = study_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = patient_sex
    ds.StudyDate = study_date
    ds.StudyTime = study_time
    ds.StudyID = study_id
    ds.AccessionNumber = accession
    ds.ReferringPhysicianName = ""


def fill_missing_type2(ds: Dataset, keywords: tuple[str, ...] = PATIENT_STUDY_TYPE2) -> None:
    """Add each of ``keywords`` that ``ds`` lacks, empty (type 2: present even when unknown)."""
    for keyword in keywords:
        if keyword not in ds:
            setattr(ds, keyword, "")


def set_mono16_pixels(ds: Dataset, pixels: npt.NDArray[np.uint16], bits_stored: int) -> None:
    """Set the image pixel module: ``pixels`` ``(rows, cols)`` as unsigned 16-bit MONOCHROME2.

    ``bits_stored`` (1..16): how many low bits carry the value; the caller keeps the values
    in ``[0, 2**bits_stored - 1]``.
    """
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<u2").tobytes()


def set_identity_presentation(
    ds: Dataset,
    *,
    relationship: str,
    window_center: float,
    window_width: float,
    decimals: int,
) -> None:
    """Identity rescale and presentation LUT, and a linear display window.

    ``relationship``: PixelIntensityRelationship (``LIN`` or ``LOG``), increasing with the
    signal. ``window_center`` / ``window_width`` are in stored units, written with
    ``decimals`` digits after the point.
    """
    ds.PixelIntensityRelationship = relationship
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.PresentationLUTShape = "IDENTITY"
    ds.WindowCenter = f"{window_center:.{decimals}f}"
    ds.WindowWidth = f"{window_width:.{decimals}f}"
    ds.VOILUTFunction = "LINEAR"


def code_item(code_value: str, scheme: str, meaning: str) -> Dataset:
    """One coded-entry sequence item (CodeValue, CodingSchemeDesignator, CodeMeaning)."""
    item = Dataset()
    item.CodeValue = code_value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def write_dataset(path: Path | str, ds: Dataset) -> None:
    """Write ``ds`` atomically as a DICOM Part 10 file (a crash never leaves half a file)."""
    write_atomic(path, lambda handle: ds.save_as(handle, enforce_file_format=True))
