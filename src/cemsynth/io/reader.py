"""One entry point for reading an image file, whatever its format.

The format is taken from the file's magic bytes (DICOM ``DICM`` marker, PNG, TIFF, JPEG
signatures), so a DICOM without a suffix or a PNG saved as ``.jpg`` is still read correctly;
the suffix decides only when the bytes say nothing (e.g. a truncated ``.dcm``).

Warnings that the decoding libraries (pydicom, Pillow, tifffile) raise while reading a file are
re-issued as :class:`FileWarning` with the file's name in front, so a batch's warnings say
which file they are about.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from cemsynth.errors import display_path
from cemsynth.imaging import Image, ImageMeta
from cemsynth.io.formats import ImageFormat
from cemsynth.io.formats import detect_format as _detect


class FileWarning(UserWarning):
    """A library's warning about one input file; the message starts with the file."""


@contextmanager
def _warnings_name(path: Path) -> Iterator[None]:
    """Re-issue the warnings raised inside the block with ``path`` in front, once each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen: set[str] = set()
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if text not in seen:
            seen.add(text)
            warnings.warn(f"{display_path(path)}: {text}", FileWarning, stacklevel=3)


T = TypeVar("T")


def _named(path: Path, read: Callable[[], T]) -> T:
    with _warnings_name(path):
        return read()


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

        return _named(path, lambda: read_dicom(path, pixel_spacing_mm, mask=mask))
    from cemsynth.io.raster import read_raster

    return _named(path, lambda: read_raster(path, pixel_spacing_mm, allow_blank=mask))


def read_image_meta(path: Path, pixel_spacing_mm: tuple[float, float] | None = None) -> ImageMeta:
    """Read only the header of an image file (no pixel decoding): fast, for indexing.

    Same metadata as :func:`read_image`; problems that only the pixels show (blank image,
    colour PNG, corrupt compressed data) are not detected here.
    """
    path = Path(path)
    image_format = _detect(path)
    if image_format == "dicom":
        from cemsynth.io.dicom import read_dicom_meta

        return _named(path, lambda: read_dicom_meta(path, pixel_spacing_mm))
    from cemsynth.io.raster import read_raster_meta

    return _named(path, lambda: read_raster_meta(path, pixel_spacing_mm))


def detect_format(path: Path) -> ImageFormat:
    """The image format of ``path``; raises :class:`InputFileError` if it is not one we read."""
    return _detect(Path(path))
