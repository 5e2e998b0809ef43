"""Write a synthetic RC image as a derived DICOM image of its LE image's study.

The output is a Digital Mammography X-Ray Image - For Presentation (MG) instance:

- **same Patient and Study** as the LE image (the patient and study attributes are copied),
  in a **new Series** with a new SOP Instance. The UIDs are derived from the source image's
  SOP Instance UID, the model's checkpoint hash and the inference settings, so running the
  same model on the same image again rewrites the same instance instead of adding a copy;
- **labelled as synthetic**: ImageType ``DERIVED\\SECONDARY``, a SeriesDescription and a
  DerivationDescription that say it is a synthetic recombined image computed by cemsynth
  from the low-energy image, with the model's name, SHA-256, training step and the cemsynth
  versions; DerivationCodeSequence (DCM 123110 "Artificial Intelligence": the image
  derivation context group CID 7203 has no code for a generative model); an ImageComments
  warning; BurnedInAnnotation NO;
- **a reference to the LE image**: SourceImageSequence with its SOP Class and Instance UIDs
  (purpose DCM 121322 "Source image for image processing operation");
- **the LE image's geometry**: Rows, Columns, PixelSpacing, ImagerPixelSpacing,
  ImageLaterality, ViewPosition, ViewCodeSequence, PatientOrientation (copied), so the
  synthetic image overlays the LE image pixel for pixel;
- **pixels**: MONOCHROME2, unsigned 16-bit allocated, BitsStored of the LE image, the RC stored
  values rounded and clipped to that range, RescaleSlope 1 / Intercept 0; the display window
  is the model's RC window.

:func:`validate_mg_dataset` checks the type 1 and 2 attributes of every mandatory module of
the MG For Presentation IOD (highdicom's tables of the standard).
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cemsynth import __version__
from cemsynth.errors import InputFileError
from cemsynth.imaging import Image
from cemsynth.inference.model import ModelIdentity
from cemsynth.io.dicom_build import (
    MG_FOR_PRESENTATION,
    code_item,
    fill_missing_type2,
    hashed_uid,
    implementation_version_name,
    new_mg_dataset,
    set_identity_presentation,
    set_mono16_pixels,
    write_dataset,
)

SYNTHETIC_IMAGE_TYPE = ("DERIVED", "SECONDARY")
SERIES_DESCRIPTION = "SYNTHETIC recombined (cemsynth)"
PREVIEW_SERIES_DESCRIPTION = "SYNTHETIC recombined PREVIEW (cemsynth)"
SERIES_NUMBER_OFFSET = 9000
"""Series number of the synthetic series: the LE image's plus this (kept below 2**31)."""
MANUFACTURER = "cemsynth"
MANUFACTURER_MODEL_NAME = "cemsynth synthetic recombined image"
"""Also the label :func:`cemsynth.inference.outputs.made_by_predict` recognises."""
IMAGE_COMMENTS = (
    "SYNTHETIC image computed by a neural network from the low-energy image; no contrast "
    "enhancement was imaged. Research use."
)
UID_ROOT_NAME = "cemsynth-synthetic-rc"

# (code value, coding scheme, meaning)
DERIVATION_CODE = ("123110", "DCM", "Artificial Intelligence")
SOURCE_PURPOSE_CODE = ("121322", "DCM", "Source image for image processing operation")
BREAST_CODE = ("76752008", "SCT", "Breast")

# Attributes copied from the LE image when present.
PATIENT_STUDY_KEYWORDS = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyDescription",
    "InstitutionName",
)
GEOMETRY_KEYWORDS = (
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "Laterality",
    "ImageLaterality",
    "ViewPosition",
    "ViewCodeSequence",
    "PatientOrientation",
    "PixelSpacing",
    "ImagerPixelSpacing",
    "PixelSpacingCalibrationType",
    "EstimatedRadiographicMagnificationFactor",
    "BodyPartExamined",
    "AnatomicRegionSequence",
    "PositionerType",
    "DetectorType",
    "InstanceNumber",
)


def read_source_header(path: Path) -> Any:
    """The LE image's DICOM header (no pixels); InputFileError if it cannot be read."""
    import pydicom

    try:
        return pydicom.dcmread(path, stop_before_pixels=True)
    except Exception as exc:  # any parser error: the file was readable moments ago
        raise InputFileError(path, f"cannot re-read the DICOM header ({exc})") from None


def stored_pixels(array: npt.NDArray[np.float32], bits_stored: int) -> npt.NDArray[np.uint16]:
    """Round float32 stored values and clip them to ``[0, 2**bits_stored - 1]`` as uint16."""
    top = float(2 ** min(bits_stored, 16) - 1)
    return np.clip(np.rint(array), 0.0, top).astype(np.uint16)


def derived_uid(*parts: object) -> str:
    """A ``2.25.`` UID (ISO/IEC 9834-8) that is a pure function of ``parts``.

    See :func:`cemsynth.io.dicom_build.hashed_uid`; the namespace is :data:`UID_ROOT_NAME`.
    """
    return hashed_uid(UID_ROOT_NAME, *parts)


def derivation_description(identity: ModelIdentity, source_uid: str, settings: str) -> str:
    """DerivationDescription text (at most 1024 characters, the ST limit)."""
    step = "unknown step" if identity.step is None else f"step {identity.step}"
    text = (
        f"SYNTHETIC recombined (iodine) image generated by cemsynth {__version__} from the "
        f"low-energy image {source_uid}; no contrast enhancement was imaged. Model "
        f"{identity.name} (sha256 {identity.sha256}, {step}, trained with cemsynth "
        f"{identity.trained_with}); {settings}."
    )
    return text[:1024]


def _series_number(value: object) -> int:
    """The LE's SeriesNumber as an int; 0 when absent or unusable (a corrupt header can make
    it several values, or text): the output's own number only needs to differ from it."""
    try:
        return abs(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0


def build_synthetic_dataset(
    synthetic: Image,
    source: Any,
    identity: ModelIdentity,
    rc_window: tuple[float, float],
    settings: str,
    preview: bool = False,
    now: dt.datetime | None = None,
) -> Any:
    """The derived MG dataset of a synthetic RC image.

    Args:
        synthetic: float32 ``(rows, cols)`` in RC stored units on the LE image's grid.
        source: the LE image's pydicom dataset (header is enough). Elements that cannot be
            decoded are left out; a missing ImageLaterality is taken from Laterality (else
            ``U``), a missing ImagerPixelSpacing from the spacing of ``synthetic``.
        identity: the model that made the image.
        rc_window: the model's RC window in stored units (the display window).
        settings: one phrase describing the inference settings (in the description and
            the UIDs, so other settings make another instance).
        preview: the image came from the single-pass preview (said in SeriesDescription).
        now: creation time (default: the current local time).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    source_uid = str(source.get("SOPInstanceUID", ""))
    rows, cols = synthetic.shape
    if (int(source.get("Rows", rows)), int(source.get("Columns", cols))) != (rows, cols):
        raise ValueError(
            f"synthetic image {rows} x {cols} does not match the source image "
            f"{source.get('Rows')} x {source.get('Columns')}"
        )
    now = now or dt.datetime.now()
    series_uid = derived_uid("series", source.get("SeriesInstanceUID", ""), identity.sha256)
    sop_uid = derived_uid("instance", source_uid, identity.sha256, settings)
    bits = int(source.get("BitsStored") or 16)
    bits = min(max(bits, 8), 16)

    ds = new_mg_dataset(sop_uid, implementation_version=implementation_version_name(__version__))
    for keyword in PATIENT_STUDY_KEYWORDS + GEOMETRY_KEYWORDS:
        if keyword in source:
            try:
                setattr(ds, keyword, copy.deepcopy(source[keyword].value))
            except (NotImplementedError, ValueError, TypeError, KeyError):
                continue  # a corrupt element (unknown VR, bad value): not copied
    # Type 1 in the MG image and DX detector modules; older or exported LE images may lack
    # them. Laterality of the series stands for the image's (else U: unpaired/unknown), and
    # the spacing the image was processed with is the one its pixels have.
    if "ImageLaterality" not in ds:
        laterality = str(ds.get("Laterality", "") or "").upper()
        ds.ImageLaterality = laterality if laterality in ("L", "R", "B") else "U"
    if "ImagerPixelSpacing" not in ds:
        row_mm, col_mm = synthetic.meta.pixel_spacing_mm
        ds.ImagerPixelSpacing = [f"{row_mm:.6g}", f"{col_mm:.6g}"]
    for item in ds.get("ViewCodeSequence") or []:
        if "ViewModifierCodeSequence" not in item:  # type 2 in the mammography image module
            item.ViewModifierCodeSequence = DicomSequence([])
    fill_missing_type2(ds)
    ds.InstanceCreationDate = now.strftime("%Y%m%d")
    ds.InstanceCreationTime = now.strftime("%H%M%S")
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = _series_number(source.get("SeriesNumber")) % 1000 + SERIES_NUMBER_OFFSET
    ds.SeriesDescription = PREVIEW_SERIES_DESCRIPTION if preview else SERIES_DESCRIPTION
    ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Manufacturer = MANUFACTURER
    ds.ManufacturerModelName = MANUFACTURER_MODEL_NAME
    ds.SoftwareVersions = __version__
    ds.ImageType = list(SYNTHETIC_IMAGE_TYPE)
    ds.DerivationDescription = derivation_description(identity, source_uid, settings)
    ds.DerivationCodeSequence = DicomSequence([code_item(*DERIVATION_CODE)])
    reference = Dataset()
    reference.ReferencedSOPClassUID = str(source.get("SOPClassUID", MG_FOR_PRESENTATION))
    reference.ReferencedSOPInstanceUID = source_uid
    reference.PurposeOfReferenceCodeSequence = DicomSequence([code_item(*SOURCE_PURPOSE_CODE)])
    ds.SourceImageSequence = DicomSequence([reference])
    ds.ImageComments = IMAGE_COMMENTS
    ds.LossyImageCompression = "00"
    if "AnatomicRegionSequence" not in ds:
        ds.AnatomicRegionSequence = DicomSequence([code_item(*BREAST_CODE)])
    if "PositionerType" not in ds:
        ds.PositionerType = "MAMMOGRAPHIC"
    if "DetectorType" not in ds:
        ds.DetectorType = ""
    if "PatientOrientation" not in ds:
        ds.PatientOrientation = ""
    if "InstanceNumber" not in ds:
        ds.InstanceNumber = 1
    ds.OrganExposed = "BREAST"
    ds.AcquisitionContextSequence = DicomSequence([])

    set_mono16_pixels(ds, stored_pixels(synthetic.array, bits), bits)
    low, high = rc_window
    set_identity_presentation(
        ds,
        relationship="LIN",
        window_center=(low + high) / 2,
        window_width=high - low,
        decimals=1,
    )
    return ds


def validate_mg_dataset(ds: Any) -> list[str]:
    """Problems with ``ds`` as an MG For Presentation instance (empty list: none found).

    Checks that every type 1 and type 2 attribute of the IOD's mandatory modules is present
    (recursively into sequences), using highdicom's tables of the DICOM standard. Presence
    only: values and conditional attributes are not checked.
    """
    from highdicom._standard_utils import (  # the standard's tables; no public accessor
        check_required_attributes,
        get_iod_module_map,
        get_sop_class_iod_map,
    )

    problems: list[str] = []
    iod = get_sop_class_iod_map()[MG_FOR_PRESENTATION]
    for module in get_iod_module_map()[iod]:
        if module["usage"] != "M":
            continue
        try:
            check_required_attributes(ds, module["key"])
        except AttributeError as exc:
            problems.append(f"{module['key']}: {exc}")
    for keyword in ("PixelData", "WindowCenter", "WindowWidth"):
        if keyword not in ds:
            problems.append(f"missing {keyword}")
    return problems


def write_synthetic_dicom(
    path: Path,
    synthetic: Image,
    source_path: Path,
    identity: ModelIdentity,
    rc_window: tuple[float, float],
    settings: str,
    preview: bool = False,
) -> Any:
    """Build, validate and write (atomically) the derived DICOM of ``synthetic``.

    Raises :class:`InputFileError` naming ``source_path`` if the LE image cannot be re-read,
    ``path`` if it cannot be written. Returns the dataset that was written.
    """
    source = read_source_header(source_path)
    ds = build_synthetic_dataset(synthetic, source, identity, rc_window, settings, preview)
    problems = validate_mg_dataset(ds)
    if problems:  # a bug here, not the user's: keep the traceback
        raise RuntimeError(f"synthetic DICOM for {source_path} is incomplete: {problems}")
    save_dataset(path, ds)
    return ds


def save_dataset(path: Path, ds: Any) -> None:
    """Write a pydicom dataset atomically; InputFileError naming ``path`` on failure."""
    try:
        write_dataset(path, ds)
    except OSError as exc:
        raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None
