"""De-identified copies of the study images, built from an allow-list of attributes.

Rather than deleting identifying attributes from a copy (easy to miss a private tag or a
description that names the image source), each output file is a new dataset that holds only
what a reader needs: pixels, geometry, laterality and view. Identifiers are replaced by the case
code, dates are left empty, UIDs are new and derived from the study's secret seed, and the
attributes that record the de-identification (PatientIdentityRemoved, DeidentificationMethod
with DICOM code 113100 "Basic Application Confidentiality Profile") are set. Clinical and
synthetic copies get identical attribute sets, so no attribute tells them apart.

Pixels are 16-bit unsigned MONOCHROME2 (MONOCHROME1 sources are inverted). Images with
BurnedInAnnotation YES are refused: text in the pixels cannot be removed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cemsynth.errors import InputFileError
from cemsynth.io.atomic import write_atomic
from cemsynth.io.dicom_build import (
    code_item,
    new_mg_dataset,
    set_mono16_pixels,
    set_patient_study,
    write_dataset,
)

U16Array = npt.NDArray[np.uint16]

DEID_METHOD = "cemsynth reader-study: attribute allow-list, new UIDs, no dates"  # LO: <= 64


@dataclass(frozen=True)
class SourceImage:
    """A source image's pixels, ``uint16 (rows, cols)`` MONOCHROME2 in stored units, and the
    detector pixel spacing ``(row, col)`` in mm when the file gives it."""

    pixels: U16Array
    spacing_mm: tuple[float, float] | None


def read_source(path: Path, laterality: str, view: str) -> SourceImage:
    """Read a single-frame grayscale DICOM and check it against the manifest's breast and view."""
    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise InputFileError(path, f"not a readable DICOM file ({exc})") from exc
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise InputFileError(path, "BurnedInAnnotation is YES; text in the pixels cannot be hidden")
    tagged_side = str(ds.get("ImageLaterality", "") or ds.get("Laterality", "")).upper()
    if tagged_side and tagged_side != laterality:
        raise InputFileError(
            path, f"laterality tag is {tagged_side}, the manifest says {laterality}"
        )
    tagged_view = str(ds.get("ViewPosition", "")).upper()
    if tagged_view and tagged_view != view:
        raise InputFileError(path, f"ViewPosition is {tagged_view}, the manifest says {view}")
    if "PixelData" not in ds:
        raise InputFileError(path, "has no pixel data")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise InputFileError(path, "is not a grayscale image (SamplesPerPixel != 1)")
    try:
        array = np.asarray(ds.pixel_array)
    except Exception as exc:  # decoders raise many types; all mean "cannot decode"
        raise InputFileError(path, f"pixel data cannot be decoded ({exc})") from exc
    if array.ndim != 2:
        raise InputFileError(path, f"expected one 2-D frame, got pixel array shape {array.shape}")
    values = array.astype(np.float64)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        bits = int(ds.get("BitsStored", 16))
        values = float(2**bits - 1) - values
    if values.min() < 0:  # signed data: shift so the darkest pixel is 0
        values -= values.min()
    pixels = np.clip(np.rint(values), 0, 65535).astype(np.uint16)
    spacing = ds.get("ImagerPixelSpacing") or ds.get("PixelSpacing")
    spacing_mm = (float(spacing[0]), float(spacing[1])) if spacing else None
    return SourceImage(pixels, spacing_mm)


def case_uids(seed_secret: str, case_code: str, image_codes: dict[str, str]) -> dict[str, str]:
    """New study, series and per-view SOP instance UIDs for one case.

    Derived (hashed) from the secret seed and the codes, so a rebuild with the same seed gives
    the same UIDs while nobody without the seed can link them to the originals.
    """
    uids: dict[str, str] = {
        "study": generate_uid(entropy_srcs=[seed_secret, "study", case_code]),
        "series": generate_uid(entropy_srcs=[seed_secret, "series", case_code]),
    }
    for view, code in image_codes.items():
        uids[view] = generate_uid(entropy_srcs=[seed_secret, "sop", code])
    return uids


def deidentified_dataset(
    pixels: U16Array,
    *,
    case_code: str,
    laterality: str,
    view: str,
    instance_number: int,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    spacing_mm: tuple[float, float] | None,
) -> Dataset:
    """A new MG dataset for one view of one case, holding only allow-listed attributes."""
    ds = new_mg_dataset(sop_uid)
    # no dates, no accession, no sex: the case code is the only identifier
    set_patient_study(
        ds,
        study_uid=study_uid,
        patient_id=case_code,
        patient_name=f"CASE^{case_code}",
        study_id=case_code,
    )
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.ImageLaterality = laterality
    ds.ViewPosition = view
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = DEID_METHOD
    ds.DeidentificationMethodCodeSequence = Sequence(
        [code_item("113100", "DCM", "Basic Application Confidentiality Profile")]
    )
    ds.RecognizableVisualFeatures = "NO"
    if spacing_mm is not None:
        ds.ImagerPixelSpacing = [f"{spacing_mm[0]:.6g}", f"{spacing_mm[1]:.6g}"]
    set_mono16_pixels(ds, pixels, 16)
    return ds


def write_dicom(path: Path, ds: Dataset) -> None:
    """Write ``ds`` atomically as a DICOM Part 10 file."""
    write_dataset(path, ds)


def viewer_pixels(pixels: U16Array) -> U16Array:
    """Linear stretch of ``pixels`` to the full 0..65535 range (uint16).

    The viewer gets every image on the same numeric range, so the range of stored values (which
    can differ between clinical and synthetic images) gives no hint of the image type.
    """
    low = float(pixels.min())
    high = float(pixels.max())
    if high <= low:
        return np.zeros_like(pixels)
    scaled = (pixels.astype(np.float64) - low) * (65535.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)


def write_png16(path: Path, pixels: U16Array) -> None:
    """Write a 16-bit grayscale PNG atomically."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint16))

    def writer(handle: IO[bytes]) -> None:
        image.save(handle, format="PNG")

    write_atomic(path, writer)


def read_png16(path: Path) -> U16Array:
    """Read a 16-bit grayscale PNG written by :func:`write_png16`."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image, dtype=np.uint16)
