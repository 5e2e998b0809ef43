"""Read DICOM mammograms into :class:`cemsynth.imaging.Image` (float32, stored units).

What is read, in order (see ``docs/data-pipeline.md``):

- **Modality** must be MG or DX; anything else (CT, SR, ...) is rejected.
- **Pixels** are decoded by pydicom with the installed handlers (uncompressed, RLE, JPEG
  lossless/baseline, JPEG-LS, JPEG 2000 via pylibjpeg). A transfer syntax no installed handler
  decodes is rejected before decoding, naming the syntax and the package that would decode it.
- **MONOCHROME1** (bright = low signal) is turned into MONOCHROME2 on the *stored* values, before
  the rescale: ``v' = (2**BitsStored - 1) - v`` for unsigned pixels (``-1 - v`` for signed ones,
  which mirrors the signed range). The photometric interpretation that was read is kept in
  ``meta.extra["PhotometricInterpretation"]``.
- **Rescale**: ``value = RescaleSlope * v' + RescaleIntercept`` (1 and 0 when absent), in float32.
- **Pixel spacing** (row, col) in mm, as the file reports it: PixelSpacing, else
  ImagerPixelSpacing, else the caller's value, else 0.1 mm (``spacing_source`` names which).
  PixelSpacing is the vendor's calibrated spacing: usually the detector pitch, but for a
  magnification-corrected image it is at the breast plane (``PixelSpacingCalibrationType``,
  kept in ``meta.extra``, says so). ImagerPixelSpacing is the detector pitch, used as written: it
  is *not* divided by EstimatedRadiographicMagnificationFactor (also kept in ``meta.extra``).
- **Errors**: pydicom parses elements lazily, so a corrupt element can raise when a tag is first
  read; every step after opening the file turns such surprises into :class:`InputFileError`
  ("corrupt DICOM header: ...").
- **Laterality** from ImageLaterality, else Laterality ("L"/"R"; other values give None).
- **View** from ViewPosition, else the first ViewCodeSequence item (code value or meaning).
"""

from __future__ import annotations

import contextlib
import math
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cemsynth.errors import InputFileError
from cemsynth.imaging import FloatArray, Image, ImageMeta
from cemsynth.io.budget import check_image_size, check_spacing
from cemsynth.io.messages import one_line
from cemsynth.io.spacing import spacing_without_tags

ACCEPTED_MODALITIES = ("MG", "DX")

# Which package decodes a transfer syntax, for the error message (pydicom's own list names gdcm
# first; pylibjpeg is what cemsynth installs).
_DECODER_PACKAGES = {
    "1.2.840.10008.1.2.5": "pylibjpeg-rle (or numpy, pydicom's native RLE decoder)",
    "1.2.840.10008.1.2.4.50": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.51": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.70": "pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.81": "pylibjpeg-libjpeg or pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.91": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.202": "pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg-openjpeg",
}
_DEFLATED = "1.2.840.10008.1.2.1.99"
# Implicit VR little endian, explicit VR little endian, explicit VR big endian.
_NATIVE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
_CONVERT_HINT = (
    "convert it to an uncompressed transfer syntax first (e.g. dcmtk dcmdjpeg or gdcmconv --raw)"
)

# Mammography view codes (DICOM CID 4014) by SNOMED-RT code value and by code meaning.
_VIEW_BY_CODE = {
    "R-10242": "CC",
    "399162004": "CC",
    "R-10226": "MLO",
    "399368009": "MLO",
    "R-10224": "ML",
    "399260004": "ML",
    "R-10228": "LM",
    "399352003": "LM",
    "R-1024A": "XCCL",
    "399192003": "XCCL",
    "R-1024B": "XCCM",
    "399101009": "XCCM",
}
_VIEW_BY_MEANING = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "cranio-caudal exaggerated laterally": "XCCL",
    "cranio-caudal exaggerated medially": "XCCM",
}


def read_dicom(
    path: Path, pixel_spacing_mm: tuple[float, float] | None = None, mask: bool = False
) -> Image:
    """Read a DICOM mammogram as a float32 ``(rows, cols)`` image in stored units.

    Stored units: the rescaled stored values (``RescaleSlope * v + RescaleIntercept``), after the
    MONOCHROME1 inversion, so that brighter always means more attenuation. ``pixel_spacing_mm``
    is used only when the file has no spacing tag. Raises :class:`InputFileError` for a file
    that is not a usable 2-D mammogram (see the module docstring). ``mask=True`` reads a truth
    mask: any modality, and an all-zero image is valid.
    """
    path = Path(path)
    ds = _dcmread(path, stop_before_pixels=False)
    with _corrupt_header_is_input_error(path):
        meta = _meta_from_dataset(ds, path, pixel_spacing_mm, check_modality=not mask)
        if (
            "PixelData" not in ds
            and "FloatPixelData" not in ds
            and "DoubleFloatPixelData" not in ds
        ):
            sop = _sop_class_name(ds)
            raise InputFileError(path, f"no pixel data: a non-image DICOM ({sop})")
        _check_decodable(ds, path)
        try:
            stored = ds.pixel_array
        except Exception as exc:  # decoder errors come in many types; all mean "cannot decode"
            raise InputFileError(path, f"pixel data cannot be decoded: {one_line(exc)}") from exc
        stored = np.asarray(stored)
        if stored.ndim != 2:
            raise InputFileError(path, f"not a 2-D image: pixel array has shape {stored.shape}")
        array = _to_monochrome2(stored, ds)
        array = _rescale(array, ds)
    if not mask:
        _check_not_blank(array, path)
    return Image(array=array, meta=meta, units="stored")


def read_dicom_meta(path: Path, pixel_spacing_mm: tuple[float, float] | None = None) -> ImageMeta:
    """Read and check a DICOM header only (no pixel decoding): fast, for indexing a folder.

    Checks the modality, that the file describes one 2-D grayscale image and that its transfer
    syntax can be decoded here. It cannot see a blank image or corrupt pixel data; use
    :func:`read_dicom` for that.
    """
    path = Path(path)
    ds = _dcmread(path, stop_before_pixels=True)
    with _corrupt_header_is_input_error(path):
        meta = _meta_from_dataset(ds, path, pixel_spacing_mm)
        if "Rows" not in ds or "Columns" not in ds:
            raise InputFileError(path, f"no image in this DICOM ({_sop_class_name(ds)})")
        _check_decodable(ds, path)
    return meta


def read_dicom_tags(path: Path, keywords: Sequence[str]) -> dict[str, str]:
    """The text of some header elements of any DICOM file (no modality or image checks).

    For sorting files whatever they are (an exam routed to a node also holds dose reports
    and tomosynthesis stacks). Multi-valued elements are joined with backslashes; absent or
    empty elements are left out. Raises :class:`InputFileError` if the file is not DICOM or
    its header is corrupt.
    """
    path = Path(path)
    ds = _dcmread(path, stop_before_pixels=True)
    tags: dict[str, str] = {}
    with _corrupt_header_is_input_error(path):
        for keyword in keywords:
            value = _text(ds, keyword)
            if value is not None:
                tags[keyword] = value
    return tags


@contextlib.contextmanager
def _corrupt_header_is_input_error(path: Path) -> Iterator[None]:
    """pydicom converts element values lazily, on first access: a malformed element (wrong
    length for its VR, bad encoding, ...) raises there, in assorted exception types. Inside
    this block any such error becomes one :class:`InputFileError` line naming the file."""
    try:
        yield
    except InputFileError:
        raise
    except Exception as exc:
        raise InputFileError(path, f"corrupt DICOM header: {one_line(exc)}") from exc


def _dcmread(path: Path, stop_before_pixels: bool) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not path.exists():
        raise InputFileError(path, "file not found")
    if path.is_dir():
        raise InputFileError(path, "is a folder, not a file")
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            try:
                ds = pydicom.dcmread(stream, stop_before_pixels=stop_before_pixels)
            except InvalidDicomError:
                raise
            except Exception as exc:
                # An element's header or value running past the end of the file surfaces as
                # one of several parser errors; the parser's position tells them apart.
                if isinstance(exc, EOFError | struct.error) or stream.tell() >= size:
                    raise InputFileError(
                        path, f"truncated DICOM file: it ends inside an element at byte {size:,}"
                    ) from exc
                raise
            parsed_to = stream.tell()
    except InputFileError:
        raise
    except InvalidDicomError as exc:
        raise InputFileError(path, "not a DICOM file (no 'DICM' marker at byte 128)") from exc
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or one_line(exc)}") from exc
    except Exception as exc:  # corrupt files raise assorted parser errors
        raise InputFileError(path, f"corrupt DICOM file: {one_line(exc)}") from exc
    with _corrupt_header_is_input_error(path):
        _check_not_truncated(ds, path, size, parsed_to)
    return ds


def _check_not_truncated(ds: Any, path: Path, size: int, parsed_to: int) -> None:
    """Say "truncated" rather than "no Modality tag" or "no pixel data" when the file stops early.

    pydicom reads a file cut inside its header as a shorter, valid-looking dataset. An *image*
    SOP class (from the dataset or its file meta) whose parse reached the end of the file
    without pixel data was cut before its pixels; for native (uncompressed) transfer syntaxes
    the header also says how many pixel bytes must follow.
    """
    has_pixels = any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if str(syntax) == _DEFLATED and not has_pixels:
        return  # the parser's file position is in the compressed stream: it says nothing
    classes = (ds.get("SOPClassUID"), ds.file_meta.get("MediaStorageSOPClassUID"))
    is_image_class = any("Image Storage" in getattr(uid, "name", "") for uid in classes)
    if not has_pixels and parsed_to >= size and (is_image_class or len(ds) == 0):
        raise InputFileError(
            path, f"no pixel data: the file ends at byte {size:,}, inside or right after the "
            f"header (truncated, or a header without its image; {_sop_class_name(ds)})",
        )  # fmt: skip
    native = str(syntax) in _NATIVE_SYNTAXES
    rows, cols = _int_or_none(ds.get("Rows")), _int_or_none(ds.get("Columns"))
    bits = _int_or_none(ds.get("BitsAllocated"))
    if not (native and rows and cols and bits) or rows <= 0 or cols <= 0 or bits <= 0:
        return
    check_image_size(path, rows, cols)  # a bomb is refused as one, not as "truncated"
    expected = rows * cols * int(ds.get("SamplesPerPixel", 1) or 1) * bits // 8
    if has_pixels:
        available = len(ds.PixelData) if "PixelData" in ds else expected
    else:  # stopped before the pixel element: what is left of the file, less its 12-byte header
        available = max(size - parsed_to - 12, 0)
    if available < expected:
        raise InputFileError(
            path, f"truncated DICOM file: {available:,} of {expected:,} bytes of pixel data"
        )


def _meta_from_dataset(
    ds: Any,
    path: Path,
    user_spacing: tuple[float, float] | None,
    check_modality: bool = True,
) -> ImageMeta:
    modality = _text(ds, "Modality")
    if modality is None and check_modality:
        raise InputFileError(path, "no Modality tag; expected a mammogram (MG or DX)")
    if check_modality and modality is not None and modality.upper() not in ACCEPTED_MODALITIES:
        raise InputFileError(
            path,
            f"modality {modality} is not a mammogram (expected MG or DX; {_sop_class_name(ds)})",
        )
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples != 1:
        raise InputFileError(
            path, f"colour DICOM ({samples} samples per pixel); expected grayscale"
        )
    frames = _int_or_none(ds.get("NumberOfFrames"))
    if frames is not None and frames > 1:
        raise InputFileError(path, f"not a 2-D image: {frames} frames")
    rows, cols = _int_or_none(ds.get("Rows")), _int_or_none(ds.get("Columns"))
    if rows is not None and cols is not None:
        check_image_size(path, rows, cols)  # before a single pixel is decoded

    extra: dict[str, str] = {}
    spacing, source = _spacing(ds, path, user_spacing, extra)
    check_spacing(path, spacing, source)  # "PixelSpacing 40 x 40 mm is not plausible ..."
    for keyword in (
        "SeriesDescription",
        "Manufacturer",
        "ManufacturerModelName",
        "PhotometricInterpretation",
        "PixelSpacingCalibrationType",
        "EstimatedRadiographicMagnificationFactor",
        "AcquisitionDate",
    ):
        value = _text(ds, keyword)
        if value is not None:
            extra[keyword] = value
    image_type = _multi(ds, "ImageType")
    if image_type:
        extra["ImageType"] = "\\".join(image_type)
    transfer_syntax = _transfer_syntax(ds)
    if transfer_syntax is not None:
        extra["TransferSyntaxUID"] = transfer_syntax

    return ImageMeta(
        pixel_spacing_mm=spacing,
        spacing_source=source,
        source=path,
        laterality=_laterality(ds),
        view=_view(ds),
        patient_id=_text(ds, "PatientID"),
        study_uid=_text(ds, "StudyInstanceUID"),
        series_uid=_text(ds, "SeriesInstanceUID"),
        sop_instance_uid=_text(ds, "SOPInstanceUID"),
        modality=None if modality is None else modality.upper(),
        bits_stored=_int_or_none(ds.get("BitsStored")),
        extra=extra,
    )


def _spacing(
    ds: Any, path: Path, user_spacing: tuple[float, float] | None, extra: dict[str, str]
) -> tuple[tuple[float, float], str]:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        values = ds.get(keyword)
        if values is None or values == "":
            continue
        try:
            pair = [float(v) for v in values] if _is_sequence(values) else [float(values)] * 2
        except (TypeError, ValueError) as exc:
            raise InputFileError(path, f"{keyword} is not numeric: {values!r}") from exc
        if len(pair) != 2 or not all(math.isfinite(v) and v > 0 for v in pair):
            raise InputFileError(path, f"{keyword} must be two positive numbers, got {values!r}")
        if keyword == "PixelSpacing" and "ImagerPixelSpacing" in ds:
            extra["ImagerPixelSpacing"] = "\\".join(str(v) for v in ds.ImagerPixelSpacing)
        return (pair[0], pair[1]), keyword
    return spacing_without_tags(user_spacing)


def _laterality(ds: Any) -> str | None:
    for keyword in ("ImageLaterality", "Laterality"):
        value = _text(ds, keyword)
        if value is not None and value.upper() in ("L", "R"):
            return value.upper()
    return None


def _view(ds: Any) -> str | None:
    value = _text(ds, "ViewPosition")
    if value is not None:
        return value.upper()
    sequence = ds.get("ViewCodeSequence")
    if not sequence:
        return None
    item = sequence[0]
    code = str(item.get("CodeValue", "") or "").strip()
    if code in _VIEW_BY_CODE:
        return _VIEW_BY_CODE[code]
    meaning = str(item.get("CodeMeaning", "") or "").strip().lower()
    return _VIEW_BY_MEANING.get(meaning)


def _check_decodable(ds: Any, path: Path) -> None:
    """Reject a transfer syntax that no installed pixel-data handler can decode."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import UID

    uid_text = _transfer_syntax(ds)
    if uid_text is None:
        return  # a dataset without file meta: pydicom assumes implicit little endian
    uid = UID(uid_text)
    name = uid.name if uid.name != uid_text else "unknown transfer syntax"
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        raise InputFileError(
            path,
            f"unsupported transfer syntax {name} ({uid_text}): pydicom has no decoder for it; "
            + _CONVERT_HINT,
        ) from None
    if not decoder.is_available:
        package = _DECODER_PACKAGES.get(uid_text, "a pydicom pixel-data plugin")
        raise InputFileError(
            path,
            f"unsupported transfer syntax {name} ({uid_text}): install {package}, or "
            + _CONVERT_HINT,
        )


def _to_monochrome2(stored: np.ndarray, ds: Any) -> FloatArray:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    array = stored.astype(np.float32)
    if photometric != "MONOCHROME1":
        return array
    bits = _int_or_none(ds.get("BitsStored")) or stored.dtype.itemsize * 8
    if int(ds.get("PixelRepresentation", 0) or 0) == 1:
        # signed range [-2**(b-1), 2**(b-1) - 1]: max + min - v = -1 - v
        return np.float32(-1.0) - array
    return np.float32(2**bits - 1) - array


def _rescale(array: FloatArray, ds: Any) -> FloatArray:
    slope = _float_or_none(ds.get("RescaleSlope"))
    intercept = _float_or_none(ds.get("RescaleIntercept"))
    if slope is not None and slope != 1.0:
        array = array * np.float32(slope)
    if intercept is not None and intercept != 0.0:
        array = array + np.float32(intercept)
    return array.astype(np.float32, copy=False)


def _check_not_blank(array: FloatArray, path: Path) -> None:
    low, high = float(array.min()), float(array.max())
    if low == high:
        raise InputFileError(path, f"blank image: every pixel is {low:g}")


def _transfer_syntax(ds: Any) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return None
    value = meta.get("TransferSyntaxUID")
    return None if value is None else str(value)


def _sop_class_name(ds: Any) -> str:
    uid = ds.get("SOPClassUID")
    if uid is None:
        return "no SOP class"
    name = getattr(uid, "name", str(uid))
    return f"SOP class {name}"


def _text(ds: Any, keyword: str) -> str | None:
    value = ds.get(keyword)
    if value is None:
        return None
    if _is_sequence(value):
        value = "\\".join(str(v) for v in value)
    text = str(value).strip()
    return text or None


def _multi(ds: Any, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None:
        return []
    if _is_sequence(value):
        return [str(v).strip() for v in value]
    return [str(value).strip()]


def _is_sequence(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _float_or_none(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
