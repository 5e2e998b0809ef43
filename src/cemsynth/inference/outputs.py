"""Output files of ``cemsynth predict``: names, 16-bit PNG/TIFF writers, the synthetic manifest.

Each output is named ``<patient_id>_<L|R>_<view>.<dcm|png|tif>`` when the three are known
(from the input manifest or the DICOM tags), else after the input file. ``OUT/
synthetic_manifest.csv`` lists ``patient_id, laterality, view, path, source`` for every output
whose three keys are known (``path`` relative to ``OUT``, ``source`` the LE file), which is
what ``cemsynth evaluate`` and ``cemsynth reader-study build`` read to match outputs to cases.
Rows of an earlier run into the same folder are kept unless this run rewrote their key.

Every output says in its own header that cemsynth made it (DICOM ManufacturerModelName, the
PNG ``Software`` text chunk, the TIFF Software tag): :func:`made_by_predict` reads that label,
so ``predict`` replaces its own earlier outputs but never a file it did not write.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cemsynth import __version__
from cemsynth.errors import InputFileError
from cemsynth.imaging import Image
from cemsynth.inference.dicom_out import MANUFACTURER_MODEL_NAME, stored_pixels
from cemsynth.io.atomic import atomic_path, write_text_atomic
from cemsynth.io.formats import read_head
from cemsynth.io.tables import parse_laterality, parse_nonempty, read_rows
from cemsynth.vocabulary import ViewKey

SUFFIXES = {"dicom": ".dcm", "png": ".png", "tiff": ".tif"}
SYNTHETIC_MANIFEST: Final = "synthetic_manifest.csv"
"""File in a synthetic folder that maps each image to its breast and view (see above)."""
MANIFEST_COLUMNS = ("patient_id", "laterality", "view", "path", "source")
REQUIRED_MANIFEST_COLUMNS = MANIFEST_COLUMNS[:4]
"""A table made by other tools needs these; ``source`` is predict's own addition."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

SOFTWARE_LABEL = f"{MANUFACTURER_MODEL_NAME}, cemsynth {__version__}"
"""The PNG ``Software`` text and TIFF Software tag of every raster output."""


def safe_name(text: str) -> str:
    """``text`` with runs of characters other than letters, digits, ``._-`` replaced by ``_``,
    and no leading dot or underscore (a PatientID of ``..`` must not make a hidden file)."""
    return _UNSAFE.sub("_", text).lstrip("._").rstrip("_") or "image"


def output_name(key: ViewKey | None, source: Path, output_format: str) -> str:
    """File name of an output: ``<patient>_<lat>_<view><suffix>``, else the input's stem."""
    stem = "_".join(key) if key is not None else source.stem
    return safe_name(stem) + SUFFIXES[output_format]


def write_png16(path: Path, image: Image) -> None:
    """16-bit grayscale PNG of the rounded stored values (0-65535), with its pixel spacing."""
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    pixels = stored_pixels(image.array, 16)
    row_mm, col_mm = image.meta.pixel_spacing_mm
    dpi = (25.4 / col_mm, 25.4 / row_mm)
    try:
        with atomic_path(path) as tmp:
            info = PngInfo()
            info.add_text("Software", SOFTWARE_LABEL)
            PILImage.fromarray(pixels).save(tmp, format="PNG", dpi=dpi, pnginfo=info)
    except OSError as exc:
        raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None


def write_tiff16(path: Path, image: Image) -> None:
    """16-bit grayscale TIFF of the rounded stored values, resolution in pixels per cm."""
    import tifffile

    pixels = stored_pixels(image.array, 16)
    row_mm, col_mm = image.meta.pixel_spacing_mm
    try:
        with atomic_path(path) as tmp:
            tifffile.imwrite(
                tmp,
                pixels,
                photometric="minisblack",
                resolution=(10.0 / col_mm, 10.0 / row_mm),
                resolutionunit="CENTIMETER",
                software=SOFTWARE_LABEL,
            )
    except OSError as exc:
        raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None


def made_by_predict(path: Path) -> bool:
    """Whether the file at ``path`` is labelled as an output of ``cemsynth predict``.

    Reads only the header, and only of a regular file (:func:`~cemsynth.io.formats.read_head`
    never blocks on a FIFO). An unreadable, unlabelled or special file is not ours: False.
    """
    try:
        head = read_head(path)
        if head[128:132] == b"DICM":
            import pydicom

            ds = pydicom.dcmread(
                path, stop_before_pixels=True, specific_tags=["ManufacturerModelName"]
            )
            return str(ds.get("ManufacturerModelName", "")) == MANUFACTURER_MODEL_NAME
        if head.startswith(b"\x89PNG"):
            from PIL import Image as PILImage

            with PILImage.open(path) as png:
                label = str(png.info.get("Software", ""))
        elif head[:4] in (b"II*\x00", b"MM\x00*"):
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                label = str(tiff.pages[0].software or "")  # type: ignore[union-attr]
        else:
            return False
    except Exception:  # any unreadable file is simply not one of ours
        return False
    return label.startswith(MANUFACTURER_MODEL_NAME)


@dataclass(frozen=True)
class ManifestRow:
    """One line of the synthetic manifest: ``path`` is relative to the folder (or absolute),
    ``source`` the LE file it was made from ('' when the table does not say)."""

    patient_id: str
    laterality: str
    view: str
    path: str
    source: str

    @property
    def key(self) -> ViewKey:
        return (self.patient_id, self.laterality, self.view)


def read_synthetic_manifest(folder: Path) -> list[ManifestRow] | None:
    """The rows of ``folder/synthetic_manifest.csv``; None when the folder has none.

    The one reader of this table (predict, evaluate and the reader study use it). Laterality
    may be spelled left/right (stored as L/R), the view is upper-cased, and a breast view listed
    twice is an error. Raises InputFileError naming the file and line for a malformed table.
    """
    path = Path(folder) / SYNTHETIC_MANIFEST
    if not path.is_file():
        return None
    rows: list[ManifestRow] = []
    seen: set[ViewKey] = set()
    for row in read_rows(path, REQUIRED_MANIFEST_COLUMNS):
        entry = ManifestRow(
            patient_id=parse_nonempty(path, row, "patient_id"),
            laterality=parse_laterality(path, row),
            view=parse_nonempty(path, row, "view").upper(),
            path=parse_nonempty(path, row, "path"),
            source=row.get("source"),
        )
        if entry.key in seen:
            raise InputFileError(path, f"line {row.line}: {' '.join(entry.key)} listed twice")
        seen.add(entry.key)
        rows.append(entry)
    return rows


def write_synthetic_manifest(folder: Path, rows: Sequence[ManifestRow]) -> Path:
    """Write ``folder/synthetic_manifest.csv`` atomically: ``rows`` plus earlier rows.

    Earlier rows are kept when their key is not among ``rows`` and their file still exists.
    Rows are sorted by patient, laterality and view.
    """
    folder = Path(folder)
    keys = {row.key for row in rows}
    try:
        earlier = read_synthetic_manifest(folder) or []
    except InputFileError:  # a damaged table is replaced: its files are listed again below
        earlier = []
    kept = [row for row in earlier if row.key not in keys and (folder / row.path).is_file()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MANIFEST_COLUMNS)
    for row in sorted([*kept, *rows], key=lambda r: r.key):
        writer.writerow([row.patient_id, row.laterality, row.view, row.path, row.source])
    path = folder / SYNTHETIC_MANIFEST
    try:
        write_text_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None
    return path
