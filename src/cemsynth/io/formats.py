"""Tell image formats apart by their first bytes (the name's suffix only as a last resort).

DICOM files often have no suffix at all, and PNGs are sometimes saved as ``.jpg``; the magic
bytes say what a file really is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from cemsynth.errors import InputFileError, is_printable_path

ImageFormat = Literal["dicom", "png", "tiff", "jpeg"]

DICOM_SUFFIXES = frozenset({".dcm", ".dicom", ".dic", ".ima"})
PNG_SUFFIXES = frozenset({".png"})
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
JPEG_SUFFIXES = frozenset({".jpg", ".jpeg"})
IMAGE_SUFFIXES = DICOM_SUFFIXES | PNG_SUFFIXES | TIFF_SUFFIXES | JPEG_SUFFIXES

_DICOM_MAGIC_OFFSET = 128
_HEAD_BYTES = 132


class NotRegularFileError(OSError):
    """A path that is neither a regular file nor a folder: a FIFO, socket or device."""


def read_head(path: Path, size: int = _HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of the regular file ``path``.

    Only regular files are opened: opening a FIFO blocks until something writes to it, and a
    device may never end. Raises IsADirectoryError for a folder, :class:`NotRegularFileError`
    for anything else that is not a regular file, OSError if it cannot be read.
    """
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path)
    with open(path, "rb") as handle:
        return handle.read(size)


def sniff_format(path: Path) -> ImageFormat | None:
    """The format of ``path`` from its magic bytes, else from its suffix, else None.

    Reads at most 132 bytes of a regular file (:func:`read_head`). Raises OSError if it
    cannot be read, :class:`NotRegularFileError` if it is not a regular file.
    """
    head = read_head(path)
    by_magic = format_from_magic(head)
    if by_magic is not None:
        return by_magic
    return format_from_suffix(path)


def detect_format(path: Path) -> ImageFormat:
    """The format of ``path`` (as :func:`sniff_format`); raises :class:`InputFileError` (one
    line) for a missing file, a folder, an unreadable file or a file that is no image we read.

    The one check every reader uses, so that all formats report these problems the same way.
    """
    path = Path(path)
    if not is_printable_path(path):
        raise InputFileError(
            path,
            "file name is not valid UTF-8: rename the file (manifests and DICOM headers store "
            "names as UTF-8)",
        )
    try:
        image_format = sniff_format(path)
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a folder, not a file") from None
    except NotRegularFileError:
        raise InputFileError(
            path, "not a regular file (a FIFO, socket or device): only regular files are read"
        ) from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    if image_format is None:
        raise InputFileError(path, "not an image file we read (expected DICOM, PNG, TIFF or JPEG)")
    return image_format


def format_from_magic(head: bytes) -> ImageFormat | None:
    """The format named by a file's first bytes (at least 132 for DICOM), or None."""
    if head[_DICOM_MAGIC_OFFSET:_HEAD_BYTES] == b"DICM":
        return "dicom"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    return None


def format_from_suffix(path: Path) -> ImageFormat | None:
    """The format that the file name's suffix claims, or None."""
    suffix = path.suffix.lower()
    if suffix in DICOM_SUFFIXES:
        return "dicom"
    if suffix in PNG_SUFFIXES:
        return "png"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in JPEG_SUFFIXES:
        return "jpeg"
    return None
