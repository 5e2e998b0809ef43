"""The manifest: one CSV row per LE/RC pair, with optional ground truth.

Format (UTF-8 CSV, header row, one row per pair; see ``docs/data-pipeline.md``):

- required: ``patient_id, study_uid, laterality, view, le_path, rc_path``. ``laterality`` is
  ``L`` or ``R``; ``view`` is e.g. ``CC``/``MLO`` and must not be empty; ``study_uid`` may be
  empty (a dataset without study UIDs).
- optional truth (empty = unknown): ``breast_mask_path, fgt_mask_path, adipose_mask_path,
  lesion_mask_path`` (paths), ``ideal_rc_path`` (the ideal recombined image a simulator can
  write: no quantum noise, perfect scatter correction; same grid and stored scale as the
  RC), ``lesion_present, lesion_enhancing, halo`` (``0``/``1``), ``lesion_kind`` (text;
  the phantom writes ``none`` when there is no lesion), ``bpe_grade`` (``a``-``d``),
  ``density`` (text, e.g. ACR ``a``-``d``), ``pixel_spacing_mm`` (one number, or
  ``row;col``, used only for image files without spacing of their own).
- any other column is kept verbatim in :attr:`PairRecord.extra` and written back, so a round
  trip loses nothing. The truth columns are written only when some record has a truth value
  (a manifest made by ``cemsynth index`` from clinical DICOM has none).

Paths in the file are relative to the manifest's folder (absolute paths are kept as they are);
:func:`read_manifest` returns absolute paths and :func:`write_manifest` writes relative ones.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from cemsynth.errors import InputFileError, display_path
from cemsynth.io.atomic import write_text_atomic
from cemsynth.vocabulary import BPE_GRADES, LATERALITIES

MANIFEST_NAME = "manifest.csv"
"""File name of the manifest that `cemsynth index` and `cemsynth phantom` write."""
REQUIRED_COLUMNS = ("patient_id", "study_uid", "laterality", "view", "le_path", "rc_path")
MASK_COLUMNS = ("breast_mask_path", "fgt_mask_path", "adipose_mask_path", "lesion_mask_path")
IDEAL_RC_COLUMN = "ideal_rc_path"
TRUTH_PATH_COLUMNS = (*MASK_COLUMNS, IDEAL_RC_COLUMN)
BOOL_COLUMNS = ("lesion_present", "lesion_enhancing", "halo")
TEXT_COLUMNS = ("lesion_kind", "bpe_grade", "density")
SPACING_COLUMN = "pixel_spacing_mm"
OPTIONAL_COLUMNS = (
    *TRUTH_PATH_COLUMNS,
    "lesion_present",
    "lesion_enhancing",
    "lesion_kind",
    "bpe_grade",
    "halo",
    "density",
    SPACING_COLUMN,
)
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
TRUTH_COLUMNS = tuple(name for name in OPTIONAL_COLUMNS if name != SPACING_COLUMN)
# The columns cemsynth.phantom always writes; their presence marks a phantom manifest.
PHANTOM_COLUMNS = (
    *REQUIRED_COLUMNS,
    *MASK_COLUMNS,
    "lesion_present",
    "lesion_enhancing",
    "lesion_kind",
    "bpe_grade",
    "halo",
)
_TRUE = frozenset({"1", "true", "yes"})
_FALSE = frozenset({"0", "false", "no"})


@dataclass(frozen=True)
class PairRecord:
    """One low-energy / recombined pair of the same breast, view and exam, with optional truth.

    Paths are absolute once read. ``laterality`` is "L" or "R"; ``view`` e.g. "CC", "MLO".
    Truth fields are None when unknown; ``ideal_rc_path`` is the simulator's ideal recombined
    image (no quantum noise, no halo), which only phantom data has. ``pixel_spacing_mm``
    (row, col) in mm is a per-pair override for image files that carry no spacing. ``extra``
    holds every other CSV column.
    """

    patient_id: str
    study_uid: str
    laterality: str
    view: str
    le_path: Path
    rc_path: Path
    breast_mask_path: Path | None = None
    fgt_mask_path: Path | None = None
    adipose_mask_path: Path | None = None
    lesion_mask_path: Path | None = None
    ideal_rc_path: Path | None = None
    lesion_present: bool | None = None
    lesion_enhancing: bool | None = None
    lesion_kind: str | None = None
    bpe_grade: str | None = None
    halo: bool | None = None
    density: str | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.laterality not in LATERALITIES:
            raise ValueError(f"laterality must be L or R, got {self.laterality!r}")
        if not self.view:
            raise ValueError("view must not be empty")
        if self.bpe_grade is not None and self.bpe_grade not in BPE_GRADES:
            raise ValueError(f"bpe_grade must be one of a, b, c, d, got {self.bpe_grade!r}")

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(patient_id, study_uid, laterality, view): what makes two images one pair."""
        return (self.patient_id, self.study_uid, self.laterality, self.view)


def read_manifest(path: Path, check_files: bool = False) -> list[PairRecord]:
    """Read a manifest CSV; paths come back absolute (relative ones joined to its folder).

    With ``check_files`` every referenced file must exist. Raises :class:`InputFileError`
    naming the file (and the line, for a bad row) for anything malformed.
    """
    path = Path(path)
    folder = path.parent.absolute()
    records: list[PairRecord] = []
    for line, row in iter_csv_rows(path, REQUIRED_COLUMNS):
        record = record_from_row(row, folder, path, line)
        if check_files:
            _check_files(record, path, line)
        records.append(record)
    return records


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (stripped); raises :class:`InputFileError`."""
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    return [name.strip() for name in (reader.fieldnames or [])]


def iter_csv_rows(
    path: Path, required_columns: Sequence[str]
) -> Iterator[tuple[int, dict[str, str | None]]]:
    """Yield ``(line number, row)`` for each non-blank row of a UTF-8 CSV with a header.

    Raises :class:`InputFileError` naming the file (and line) for an unreadable file, a
    missing or duplicated column, or a row with more values than columns.
    """
    path = Path(path)
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    header = [name.strip() for name in (reader.fieldnames or [])]
    if not header:
        raise InputFileError(path, "empty CSV file: no header row")
    reader.fieldnames = header
    missing = [name for name in required_columns if name not in header]
    if missing:
        raise InputFileError(path, f"missing required column(s): {', '.join(missing)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputFileError(path, f"duplicated column(s): {', '.join(duplicated)}")
    try:
        for row in reader:
            if None in row:
                raise InputFileError(path, f"line {reader.line_num}: more values than columns")
            cells: dict[str, str | None] = {str(k): v for k, v in row.items()}
            if all(not (value or "").strip() for value in cells.values()):
                continue  # a blank line
            yield reader.line_num, cells
    except csv.Error as exc:
        raise InputFileError(path, f"line {reader.line_num}: bad CSV ({exc})") from exc


def _read_text(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, "is a folder, not a CSV file") from None
    except UnicodeDecodeError as exc:
        raise InputFileError(path, f"not a UTF-8 text file ({exc.reason})") from exc
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def write_manifest(path: Path, records: Sequence[PairRecord]) -> None:
    """Write ``records`` atomically as CSV, paths relative to ``path``'s folder.

    Columns: the required ones; the truth columns if any record has a truth value (all of
    them then, so the set of columns survives a round trip); ``pixel_spacing_mm`` if any record
    has one; then every ``extra`` key in the order first seen. Booleans are written 0/1,
    unknown values as empty cells.
    """
    path = Path(path)
    folder = path.parent.absolute()
    has_truth = any(getattr(r, name) is not None for r in records for name in TRUTH_COLUMNS)
    has_spacing = any(r.pixel_spacing_mm is not None for r in records)
    extra_columns: list[str] = []
    for record in records:
        for name in record.extra:
            if name not in extra_columns and name not in KNOWN_COLUMNS:
                extra_columns.append(name)
    columns = [
        *REQUIRED_COLUMNS,
        *(TRUTH_COLUMNS if has_truth else ()),
        *((SPACING_COLUMN,) if has_spacing else ()),
        *extra_columns,
    ]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = _format_row(record, folder)
        writer.writerow({name: row.get(name, "") for name in columns})
    write_text_atomic(path, buffer.getvalue())


def relative_path_text(target: Path, folder: Path) -> str:
    """``target`` relative to ``folder`` with forward slashes (absolute if on another drive).

    A name that is not valid UTF-8 is written with ``\\xNN`` escapes (such files are refused
    when read, so they only appear in lists of unpaired or failed files).
    """
    target = Path(target).absolute()
    try:
        text = Path(os.path.relpath(target, folder.absolute())).as_posix()
    except ValueError:  # Windows: a different drive has no relative path
        text = target.as_posix()
    return display_path(text)


def resolve_path_text(text: str, folder: Path) -> Path:
    """A path cell from a CSV, made absolute against ``folder`` (without following links)."""
    candidate = Path(text.strip())
    if not candidate.is_absolute():
        candidate = folder.absolute() / candidate
    return Path(os.path.normpath(candidate))


def record_from_row(
    row: Mapping[str, str | None], folder: Path, path: Path, line: int
) -> PairRecord:
    """One :class:`PairRecord` from a CSV row (column name -> cell text).

    Relative paths are joined to ``folder``; ``path`` and ``line`` name the row in errors.
    Columns that are not fields go to ``extra``. Raises :class:`InputFileError`.
    """

    def cell(name: str) -> str:
        return (row.get(name) or "").strip()

    def fail(problem: str) -> InputFileError:
        return InputFileError(path, f"line {line}: {problem}")

    laterality = cell("laterality").upper()
    if laterality not in LATERALITIES:
        raise fail(f"laterality must be L or R, got {cell('laterality')!r}")
    view = cell("view").upper()
    if not view:
        raise fail("view is empty")
    patient_id = cell("patient_id")
    if not patient_id:
        raise fail("patient_id is empty")
    paths: dict[str, Path | None] = {}
    for name in ("le_path", "rc_path"):
        if not cell(name):
            raise fail(f"{name} is empty")
        paths[name] = resolve_path_text(cell(name), folder)
    for name in TRUTH_PATH_COLUMNS:
        paths[name] = resolve_path_text(cell(name), folder) if cell(name) else None

    flags: dict[str, bool | None] = {}
    for name in BOOL_COLUMNS:
        value = cell(name).lower()
        if not value:
            flags[name] = None
        elif value in _TRUE:
            flags[name] = True
        elif value in _FALSE:
            flags[name] = False
        else:
            raise fail(f"{name} must be 0 or 1, got {cell(name)!r}")

    bpe = cell("bpe_grade").lower() or None
    if bpe is not None and bpe not in BPE_GRADES:
        raise fail(f"bpe_grade must be a, b, c or d, got {cell('bpe_grade')!r}")
    spacing = _parse_spacing(cell(SPACING_COLUMN), fail)
    extra = {name: (value or "") for name, value in row.items() if name not in KNOWN_COLUMNS}
    le_path, rc_path = paths["le_path"], paths["rc_path"]
    assert le_path is not None and rc_path is not None
    return PairRecord(
        patient_id=patient_id,
        study_uid=cell("study_uid"),
        laterality=laterality,
        view=view,
        le_path=le_path,
        rc_path=rc_path,
        breast_mask_path=paths["breast_mask_path"],
        fgt_mask_path=paths["fgt_mask_path"],
        adipose_mask_path=paths["adipose_mask_path"],
        lesion_mask_path=paths["lesion_mask_path"],
        ideal_rc_path=paths[IDEAL_RC_COLUMN],
        lesion_present=flags["lesion_present"],
        lesion_enhancing=flags["lesion_enhancing"],
        lesion_kind=cell("lesion_kind") or None,
        bpe_grade=bpe,
        halo=flags["halo"],
        density=cell("density") or None,
        pixel_spacing_mm=spacing,
        extra=extra,
    )


def _parse_spacing(text: str, fail: Callable[[str], InputFileError]) -> tuple[float, float] | None:
    if not text:
        return None
    parts = [part for part in text.replace(";", " ").split() if part]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(0 < value < float("inf") for value in values):
        raise fail(f"{SPACING_COLUMN} must be one positive number or 'row;col', got {text!r}")
    return (values[0], values[1])


def _check_files(record: PairRecord, path: Path, line: int) -> None:
    for name in ("le_path", "rc_path", *TRUTH_PATH_COLUMNS):
        target = getattr(record, name)
        if target is not None and not Path(target).is_file():
            raise InputFileError(path, f"line {line}: {name} {target} does not exist")


def _format_row(record: PairRecord, folder: Path) -> dict[str, str]:
    row: dict[str, str] = {}
    for spec in fields(PairRecord):
        name = spec.name
        if name == "extra":
            continue
        value = getattr(record, name)
        if value is None:
            row[name] = ""
        elif isinstance(value, bool):
            row[name] = "1" if value else "0"
        elif isinstance(value, Path):
            row[name] = relative_path_text(value, folder)
        elif name == SPACING_COLUMN:
            row_mm, col_mm = value
            row[name] = str(row_mm) if row_mm == col_mm else f"{row_mm};{col_mm}"
        else:
            row[name] = str(value)
    for name, value in record.extra.items():
        if name not in KNOWN_COLUMNS:
            row[name] = value
    return row
