"""One entry point for reading an image file, whatever its format.

The format is taken from the file's magic bytes (DICOM ``DICM`` marker, PNG, TIFF, JPEG
signatures), so a DICOM without a suffix or a PNG saved as ``.jpg`` is still read correctly;
the suffix decides only when the bytes say nothing (e.g. a truncated ``.dcm``).
"""

from __future__ import annotations

from pathlib import Path

from cemsynth.imaging import Image, ImageMeta
from cemsynth.io.formats import ImageFormat
from cemsynth.io.formats import detect_format as _detect


def read_image(
    path: Path, pixel_spacing_mm: tuple[float, float] | None = None, *, mask: bool = False
) -> Image:
    """Read a mammogram as a float32 ``(rows, cols)`` :class:`Image` with ``units="stored"``.

    DICOM (MG/DX): rescaled stored values, MONOCHROME1 inverted; spacing from PixelSpacing,
    else ImagerPixelSpacing, else ``pixel_spacing_mm``, else 0.1 mm. PNG/TIFF/JPEG: the file's
    pixel values; spacing ``pixel_spacing_mm``, else 0.1 mm. ``meta.spacing_source`` records
    where the spacing came from. Raises :class:`InputFileError` (one line: file and problem)
    for any file that is not a usable 2-D grayscale mammogram.

    ``mask=True`` reads a truth mask instead: an all-zero (blank) image is valid (e.g. "no
    lesion") and a DICOM of any modality is accepted (masks are often secondary captures);
    every other check and conversion is the same.
    """
    path = Path(path)
    image_format = _detect(path)
    if image_format == "dicom":
        from cemsynth.io.dicom import read_dicom

        return read_dicom(path, pixel_spacing_mm, mask=mask)
    from cemsynth.io.raster import read_raster

    return read_raster(path, pixel_spacing_mm, allow_blank=mask)


def read_image_meta(path: Path, pixel_spacing_mm: tuple[float, float] | None = None) -> ImageMeta:
    """Read only the header of an image file (no pixel decoding): fast, for indexing.

    Same metadata as :func:`read_image`; problems that only the pixels show (blank image,
    colour PNG, corrupt compressed data) are not detected here.
    """
    path = Path(path)
    image_format = _detect(path)
    if image_format == "dicom":
        from cemsynth.io.dicom import read_dicom_meta

        return read_dicom_meta(path, pixel_spacing_mm)
    from cemsynth.io.raster import read_raster_meta

    return read_raster_meta(path, pixel_spacing_mm)


def detect_format(path: Path) -> ImageFormat:
    """The image format of ``path``; raises :class:`InputFileError` if it is not one we read."""
    return _detect(Path(path))
