"""Read PNG, TIFF and JPEG images into :class:`cemsynth.imaging.Image` (float32, stored units).

Stored units here are the file's own pixel values (0-255 for 8-bit, 0-65535 for 16-bit, the
values themselves for float TIFF), as float32. These formats carry no trustworthy physical
spacing (PNG pHYs and TIFF resolution tags usually hold a screen DPI), so spacing is the
caller's value, else the 0.1 mm fallback; ``meta.spacing_source`` records which.

Channels: an RGB(A) image whose three colour channels are equal is read as grayscale; a true
colour image is rejected. An alpha channel is dropped if it is fully opaque and rejected
otherwise. A TIFF with photometric MINISWHITE (bright = low signal, like DICOM MONOCHROME1) is
inverted as ``max_of_dtype - v``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cemsynth.errors import InputFileError
from cemsynth.imaging import FloatArray, Image, ImageMeta
from cemsynth.io.budget import (
    MAX_PIXELS_VARIABLE,
    check_image_size,
    check_spacing,
    max_image_pixels,
)
from cemsynth.io.formats import ImageFormat, detect_format
from cemsynth.io.messages import one_line
from cemsynth.io.spacing import spacing_without_tags

RASTER_FORMATS: tuple[ImageFormat, ...] = ("png", "tiff", "jpeg")


def read_raster(
    path: Path, pixel_spacing_mm: tuple[float, float] | None = None, allow_blank: bool = False
) -> Image:
    """Read an 8/16-bit (or float TIFF) grayscale image as float32 ``(rows, cols)``.

    Raises :class:`InputFileError` for an unreadable or corrupt file, a true-colour image, a
    multi-page stack (not 2-D) or a blank (constant) image; ``allow_blank`` accepts the last
    (for truth masks, where all zero means "none").
    """
    path = Path(path)
    image_format = _format(path)
    if image_format == "tiff":
        _tiff_header(path)  # the size check, before anything is decoded
        pixels, bits = _read_tiff_pixels(path)
    else:
        _pillow_header(path)
        pixels, bits = _read_pillow_pixels(path)
    gray = _to_gray(pixels, path)
    low, high = float(gray.min()), float(gray.max())
    if low == high and not allow_blank:
        raise InputFileError(path, f"blank image: every pixel is {low:g}")
    meta = _meta(path, image_format, bits, pixel_spacing_mm)
    return Image(array=gray, meta=meta, units="stored")


def read_raster_meta(path: Path, pixel_spacing_mm: tuple[float, float] | None = None) -> ImageMeta:
    """Open the file's header only (fast, for indexing) and return its metadata.

    Checks that the file is a readable PNG/TIFF/JPEG with a 2-D pixel grid; colour and blank
    images are only detected by :func:`read_raster`.
    """
    path = Path(path)
    image_format = _format(path)
    bits = _tiff_header(path) if image_format == "tiff" else _pillow_header(path)
    return _meta(path, image_format, bits, pixel_spacing_mm)


def _format(path: Path) -> ImageFormat:
    image_format = detect_format(path)
    if image_format not in RASTER_FORMATS:
        raise InputFileError(path, "not a PNG, TIFF or JPEG image")
    return image_format


def _meta(
    path: Path,
    image_format: ImageFormat,
    bits: int | None,
    user_spacing: tuple[float, float] | None,
) -> ImageMeta:
    spacing, source = spacing_without_tags(user_spacing)
    check_spacing(path, spacing, f"{source} spacing")
    return ImageMeta(
        pixel_spacing_mm=spacing,
        spacing_source=source,
        source=path,
        bits_stored=bits,
        extra={"format": image_format.upper()},
    )


def _open_pillow(path: Path) -> Any:
    """``PIL.Image.open`` with Pillow's decompression-bomb limit at the budget, as an error."""
    from PIL import Image as PILImage

    budget = max_image_pixels()
    PILImage.MAX_IMAGE_PIXELS = budget
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PILImage.DecompressionBombWarning)
            return PILImage.open(path)
    except (PILImage.DecompressionBombWarning, PILImage.DecompressionBombError) as exc:
        raise InputFileError(
            path,
            f"more pixels than the budget of {budget:,} ({MAX_PIXELS_VARIABLE}); not decoded "
            f"(Pillow: {one_line(exc)})",
        ) from None


def _read_pillow_pixels(path: Path) -> tuple[np.ndarray, int | None]:
    from PIL import Image as PILImage

    try:
        with _open_pillow(path) as handle:
            handle.load()
            image: PILImage.Image = handle
            if image.mode in ("P", "PA"):  # palette: expand, then judge the colours
                image = image.convert("RGBA")
            if image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                raise InputFileError(path, f"colour image (mode {image.mode}); expected grayscale")
            pixels = np.asarray(image)
            bits = _pillow_bits(image.mode, pixels)
    except InputFileError:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError for bad files
        raise InputFileError(path, f"corrupt or unreadable image: {one_line(exc)}") from exc
    return pixels, bits


def _pillow_header(path: Path) -> int | None:

    try:
        with _open_pillow(path) as handle:
            mode = handle.mode
            width, height = handle.size
            frames = int(getattr(handle, "n_frames", 1))
    except InputFileError:
        raise
    except Exception as exc:  # see _read_pillow_pixels
        raise InputFileError(path, f"corrupt or unreadable image: {one_line(exc)}") from exc
    if frames > 1:
        raise InputFileError(path, f"not a 2-D image: {frames} frames")
    if width == 0 or height == 0:
        raise InputFileError(path, f"empty image ({width} x {height})")
    check_image_size(path, height, width)
    return {"1": 1, "L": 8, "LA": 8, "P": 8, "RGB": 8, "RGBA": 8}.get(
        mode, 16 if "16" in mode else None
    )


def _pillow_bits(mode: str, pixels: np.ndarray) -> int | None:
    if pixels.dtype == np.bool_:
        return 1
    if pixels.dtype == np.uint8:
        return 8
    if mode.startswith("I;16") or (mode == "I" and pixels.size and int(pixels.max()) < 2**16):
        return 16  # a 16-bit PNG may open as mode "I" (int32)
    return None


def _read_tiff_pixels(path: Path) -> tuple[np.ndarray, int | None]:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            photometric = int(getattr(page, "photometric", 1))
            bits = int(getattr(page, "bitspersample", 0)) or None
            series = tif.series[0]
            axes, shape = str(series.axes), tuple(series.shape)
            pixels = np.asarray(series.asarray())
    except Exception as exc:  # tifffile raises TiffFileError, ValueError, struct errors
        raise InputFileError(path, f"corrupt or unreadable TIFF: {one_line(exc)}") from exc
    _check_tiff_axes(axes, shape, path)
    if photometric == 0 and np.issubdtype(pixels.dtype, np.integer):  # MINISWHITE
        pixels = np.iinfo(pixels.dtype).max - pixels
    if np.issubdtype(pixels.dtype, np.floating):
        bits = None
    return pixels, bits


def _tiff_header(path: Path) -> int | None:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = str(series.axes), tuple(series.shape)
            bits = int(getattr(tif.pages[0], "bitspersample", 0)) or None
    except Exception as exc:  # see _read_tiff_pixels
        raise InputFileError(path, f"corrupt or unreadable TIFF: {one_line(exc)}") from exc
    _check_tiff_axes(axes, shape, path)
    if "Y" in axes and "X" in axes:
        check_image_size(path, shape[axes.index("Y")], shape[axes.index("X")])
    return bits


def _check_tiff_axes(axes: str, shape: tuple[int, ...], path: Path) -> None:
    """Only Y, X and a sample (channel) axis may have more than one element."""
    extra = [
        f"{axis}={size}"
        for axis, size in zip(axes, shape, strict=False)
        if axis not in "YXS" and size > 1
    ]
    if extra:
        raise InputFileError(path, f"not a 2-D image: shape {shape} ({', '.join(extra)})")


def _to_gray(pixels: Any, path: Path) -> FloatArray:
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        return pixels.astype(np.float32)
    if pixels.ndim != 3:
        raise InputFileError(path, f"not a 2-D image: shape {pixels.shape}")
    channels = pixels.shape[-1]
    if channels in (2, 4):
        alpha = pixels[..., -1]
        opaque = np.iinfo(alpha.dtype).max if np.issubdtype(alpha.dtype, np.integer) else 1.0
        if not np.all(alpha == opaque):
            raise InputFileError(path, "image has transparency (alpha channel); expected grayscale")
        pixels = pixels[..., :-1]
        channels -= 1
    if channels == 1:
        return pixels[..., 0].astype(np.float32)
    if channels == 3:
        if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(
            pixels[..., 0], pixels[..., 2]
        ):
            return pixels[..., 0].astype(np.float32)
        raise InputFileError(path, "true colour image (channels differ); expected grayscale")
    raise InputFileError(path, f"not a 2-D image: shape {pixels.shape}")
