"""Find LE and RC images under a folder and pair them into a manifest.

Rule sets (``rules``):

- ``dicom``: DICOM files are classified LE / RC / skip by their ImageType and SeriesDescription
  (:mod:`cemsynth.index.keywords`) and paired by (PatientID, StudyInstanceUID, laterality, view).
- ``cdd-cesm``: file names ``P<n>_<L|R>_<DM|CM>_<view>`` or ``P<n>_<L|R>_<view>_<LE|RE>``
  (:mod:`cemsynth.index.naming`) give kind and keys.
- ``csv``: a user CSV (``pairs_csv``) lists the pairs (``le_path, rc_path`` and optionally
  ``patient_id, study_uid, laterality, view``; missing keys are taken from DICOM tags or the file
  name). Relative paths are relative to the indexed folder. Where both images carry them, the
  LE and RC tags (PatientID, laterality, view) must agree, else the row is not paired.
- ``phantom``: the folder's ``manifest.csv`` written by ``cemsynth phantom`` is taken as is;
  image files under the folder that it does not list (as LE, RC or truth mask) are unpaired.
- ``auto``: ``csv`` if a pairs CSV is given; else ``phantom`` if the folder has a
  ``manifest.csv`` with the phantom's truth columns; else DICOM files by ``dicom`` and other
  images by ``cdd-cesm``.

Every image file found that ends up in no pair is listed with a reason (LE without RC,
duplicates, high-energy, unknown type, unreadable); unreadable files are also batch failures,
and so is a file whose reading raised an unexpected error ("internal error ...", a bug; the
traceback with ``raise_unexpected``). Only headers are read here (fast); pixel problems
surface when the images are read.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeVar, get_args

from cemsynth.batch import FAILURES_NAME, BatchReport
from cemsynth.errors import ConfigError, InputFileError, display_path
from cemsynth.imaging import ImageMeta
from cemsynth.index.keywords import KIND_NAMES, KeywordRules, Kind, classify, default_keywords
from cemsynth.index.naming import parse_cdd_cesm_name
from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.formats import (
    IMAGE_SUFFIXES,
    ImageFormat,
    format_from_magic,
    format_from_suffix,
    read_head,
)
from cemsynth.io.manifest import (
    MANIFEST_NAME,
    PHANTOM_COLUMNS,
    PairRecord,
    csv_header,
    iter_csv_rows,
    read_manifest,
    record_from_row,
    relative_path_text,
    resolve_path_text,
    write_manifest,
)
from cemsynth.io.messages import internal_error
from cemsynth.io.paths import ensure_writable_file

if TYPE_CHECKING:
    from rich.console import Console

Rules = Literal["auto", "dicom", "cdd-cesm", "csv", "phantom"]
RULE_CHOICES: tuple[str, ...] = get_args(Rules)
UNPAIRED_NAME = "unpaired.csv"
UNPAIRED_COLUMNS = ("path", "kind", "patient_id", "study_uid", "laterality", "view", "reason")
PAIRS_CSV_REQUIRED = ("le_path", "rc_path")
PROGRESS_MIN_FILES = 20  # below this a progress bar only flickers
SUMMARY_MAX_UNPAIRED = 20

_T = TypeVar("_T")

# What an image that is in no pair was: a kind, "unknown" or "unreadable".
UnpairedKind = Literal["le", "rc", "skip", "unknown", "unreadable"]


@dataclass(frozen=True)
class ImageEntry:
    """One image file as the rules see it: its kind (None: unknown) and pairing keys."""

    path: Path
    kind: Kind | None
    reason: str
    patient_id: str | None = None
    study_uid: str | None = None
    laterality: str | None = None
    view: str | None = None


@dataclass(frozen=True)
class UnpairedImage:
    """An image file that is in no pair, and why (one line)."""

    path: Path
    kind: UnpairedKind
    reason: str
    patient_id: str | None = None
    study_uid: str | None = None
    laterality: str | None = None
    view: str | None = None


@dataclass
class IndexResult:
    """What :func:`index_folder` found: pairs, unpaired images and counts."""

    root: Path
    rules: str
    pairs: list[PairRecord] = field(default_factory=list)
    unpaired: list[UnpairedImage] = field(default_factory=list)
    n_images: int = 0
    n_ignored: int = 0
    report: BatchReport | None = None
    """The report that collected the failures; :func:`write_index` writes them to a file."""


@dataclass(frozen=True)
class FoundFile:
    """A file under the indexed folder that is (or claims by its suffix to be) an image."""

    path: Path
    image_format: ImageFormat | None


def parse_rules(text: str) -> Rules:
    """``text`` as a rule-set name; raises :class:`ConfigError` listing the choices."""
    for choice in get_args(Rules):
        if text == choice:
            return choice
    raise ConfigError(f"unknown rules {text!r}; choose one of {', '.join(RULE_CHOICES)}")


def index_folder(
    root: Path,
    rules: Rules = "auto",
    pairs_csv: Path | None = None,
    keywords: KeywordRules | None = None,
    report: BatchReport | None = None,
    progress: bool = False,
    console: Console | None = None,
    out: Path | None = None,
    raise_unexpected: bool = False,
) -> IndexResult:
    """Pair the LE and RC images under ``root`` by ``rules`` (see the module docstring).

    Bad files are recorded in ``report`` (which raises at the first one if strict) and listed
    as unpaired. ``keywords``: vendor keywords for DICOM classification (defaults if None).
    ``progress``: show a rich progress bar on ``console`` when there are many files.
    ``out``: the manifest that :func:`write_index` will write; checked before scanning, so an
    unusable location fails at once. ``raise_unexpected``: let an unexpected exception while
    reading one file (a bug) propagate with its traceback instead of recording it as that
    file's failure. Raises :class:`ConfigError` / :class:`InputFileError` for unusable
    arguments and :class:`~cemsynth.errors.CemsynthError` for an unwritable ``out``.
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    if out is not None:
        ensure_writable_file(out, "manifest")
    rules = parse_rules(rules)
    if pairs_csv is not None and rules not in ("auto", "csv"):
        raise ConfigError(f"--pairs-csv needs --rules csv (or auto), not --rules {rules}")
    if rules == "csv" and pairs_csv is None:
        raise ConfigError("--rules csv needs --pairs-csv FILE")
    report = report if report is not None else BatchReport()
    keywords = keywords if keywords is not None else default_keywords()
    phantom_manifest = root / MANIFEST_NAME
    if rules == "phantom" and not phantom_manifest.is_file():
        raise ConfigError(f"{root}: --rules phantom needs {MANIFEST_NAME} in the folder")

    reader = _MetaReader(report, raise_unexpected)
    if pairs_csv is not None:
        result = _index_pairs_csv(root, Path(pairs_csv), reader, progress, console)
    elif rules == "phantom" or (rules == "auto" and is_phantom_manifest(phantom_manifest)):
        result = _index_phantom(root, phantom_manifest, report)
    else:
        result = _index_by_rules(root, rules, keywords, reader, progress, console)
    result.report = report
    return result


def is_phantom_manifest(path: Path) -> bool:
    """True if ``path`` is a CSV file with every column the phantom writes."""
    if not Path(path).is_file():
        return False
    try:
        header = csv_header(path)
    except InputFileError:
        return False
    return all(name in header for name in PHANTOM_COLUMNS)


def find_image_files(root: Path, exclude: Iterable[Path] = ()) -> tuple[list[FoundFile], int]:
    """Image files under ``root`` (recursively, sorted, hidden files and folders skipped).

    A file counts as an image if its first bytes say DICOM/PNG/TIFF/JPEG, or if its suffix
    claims an image format (so a corrupt ``.dcm`` is found and reported, not ignored). Only
    regular files are opened (a FIFO would block): others count by their suffix alone.
    Returns the files and the number of other (non-image) files ignored.
    """
    excluded = {Path(p).absolute() for p in exclude}
    found: list[FoundFile] = []
    n_ignored = 0
    for folder, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for name in sorted(filenames):
            path = Path(folder) / name
            if name.startswith(".") or path.absolute() in excluded:
                continue
            try:
                head = read_head(path)
            except OSError:  # unreadable or not a regular file: reported when it is read
                head = b""
            image_format = format_from_magic(head)
            if image_format is None and path.suffix.lower() not in IMAGE_SUFFIXES:
                n_ignored += 1
                continue
            found.append(FoundFile(path, image_format))
    return found, n_ignored


def pair_entries(entries: Sequence[ImageEntry]) -> tuple[list[PairRecord], list[UnpairedImage]]:
    """Pair LE with RC entries that share (patient, study, laterality, view).

    A key with exactly one LE and one RC gives a pair; anything else (LE or RC alone,
    duplicates) and every skip / unknown entry is returned as unpaired with the reason.
    """
    unpaired: list[UnpairedImage] = []
    groups: dict[tuple[str, str, str, str], list[ImageEntry]] = defaultdict(list)
    for entry in entries:
        if entry.kind is None or entry.kind == "skip":
            unpaired.append(_unpaired(entry, entry.kind or "unknown", entry.reason))
            continue
        missing = [
            label
            for label, value in (
                ("patient id", entry.patient_id),
                ("laterality", entry.laterality),
                ("view", entry.view),
            )
            if not value
        ]
        if missing:
            reason = f"{KIND_NAMES[entry.kind]} image without {' and '.join(missing)}; cannot pair"
            unpaired.append(_unpaired(entry, entry.kind, reason))
            continue
        key = (
            entry.patient_id or "",
            entry.study_uid or "",
            entry.laterality or "",
            entry.view or "",
        )
        groups[key].append(entry)

    pairs: list[PairRecord] = []
    for key, group in groups.items():
        les = [e for e in group if e.kind == "le"]
        rcs = [e for e in group if e.kind == "rc"]
        label = _key_label(key)
        if len(les) == 1 and len(rcs) == 1:
            pairs.append(
                PairRecord(
                    patient_id=key[0],
                    study_uid=key[1],
                    laterality=key[2],
                    view=key[3],
                    le_path=_normalized(les[0].path),
                    rc_path=_normalized(rcs[0].path),
                )
            )
            continue
        for entry in group:
            assert entry.kind is not None
            if len(les) > 1 or len(rcs) > 1:
                reason = (
                    f"duplicate: {len(les)} low-energy and {len(rcs)} recombined images for "
                    f"{label}; cannot tell which belong together (list them in --pairs-csv)"
                )
            elif entry.kind == "le":
                reason = f"low-energy image without a recombined image for {label}"
            else:
                reason = f"recombined image without a low-energy image for {label}"
            unpaired.append(_unpaired(entry, entry.kind, reason))
    pairs.sort(key=lambda p: (p.patient_id, p.study_uid, p.laterality, p.view))
    unpaired.sort(key=lambda u: str(u.path))
    return pairs, unpaired


def write_index(result: IndexResult, out: Path) -> Path:
    """Write the manifest to ``out``, ``unpaired.csv`` and ``failures.csv`` beside it (atomic).

    ``unpaired.csv`` is always written (header only when everything paired) so that no stale
    list from an earlier run remains; so is ``failures.csv`` (every failure of
    ``result.report``, see :meth:`BatchReport.write_failures`) when the result has a report.
    An unusable ``out`` raises :class:`~cemsynth.errors.CemsynthError` (one line) before
    anything is written. Returns the path of ``unpaired.csv``.
    """
    out = ensure_writable_file(Path(out), "manifest")
    write_manifest(out, result.pairs)
    unpaired_path = out.parent / UNPAIRED_NAME
    folder = out.parent.absolute()
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(UNPAIRED_COLUMNS)
    for item in result.unpaired:
        writer.writerow(
            [
                relative_path_text(item.path, folder),
                item.kind,
                item.patient_id or "",
                item.study_uid or "",
                item.laterality or "",
                item.view or "",
                item.reason,
            ]
        )
    write_text_atomic(unpaired_path, buffer.getvalue())
    if result.report is not None:
        result.report.write_failures(out.parent / FAILURES_NAME)
    return unpaired_path


def print_index_summary(result: IndexResult, out: Path, console: Console) -> None:
    """Print counts, the manifest and unpaired paths, and the first unpaired images."""
    n_unpaired = len(result.unpaired)
    _say(
        console,
        f"indexed {result.root} (rules: {result.rules}): {len(result.pairs)} pairs from "
        f"{result.n_images} images; manifest: {out}",
    )
    if result.n_ignored:
        _say(console, f"{result.n_ignored} non-image files ignored")
    if not n_unpaired:
        return
    unpaired_path = Path(out).parent / UNPAIRED_NAME
    _say(console, f"{n_unpaired} images not paired (all listed in {unpaired_path}):", "yellow")
    for item in result.unpaired[:SUMMARY_MAX_UNPAIRED]:
        _say(console, f"  {display_path(item.path)}: {item.reason}")
    if n_unpaired > SUMMARY_MAX_UNPAIRED:
        _say(console, f"  ... and {n_unpaired - SUMMARY_MAX_UNPAIRED} more")


def _say(console: Console, text: str, style: str | None = None) -> None:
    """One line, verbatim: paths may contain [brackets] or :colons: that rich would interpret."""
    console.print(text, style=style, markup=False, highlight=False, emoji=False, soft_wrap=True)


# --- rule sets ------------------------------------------------------------------------------


class _MetaReader:
    """Reads one file's header; a problem becomes that file's failure, never the batch's end.

    An :class:`InputFileError` is the file's problem; any other exception is a bug met on this
    file, recorded as "internal error ..." (or re-raised with ``raise_unexpected``, for
    ``--debug``). Either way the file is listed as unreadable and None is returned.
    """

    def __init__(self, report: BatchReport, raise_unexpected: bool) -> None:
        self.report = report
        self.raise_unexpected = raise_unexpected

    def read(self, path: Path, unpaired: list[UnpairedImage]) -> ImageMeta | None:
        from cemsynth.io.reader import read_image_meta

        try:
            meta = read_image_meta(path)
        except InputFileError as exc:
            problem = exc.problem
            self.report.add_error(exc)
        except Exception as exc:
            if self.raise_unexpected:
                raise
            problem = internal_error(exc)
            self.report.add_failure(path, problem)
        else:
            self.report.add_success()
            return meta
        unpaired.append(UnpairedImage(path, "unreadable", problem))
        return None


def _index_by_rules(
    root: Path,
    rules: Rules,
    keywords: KeywordRules,
    reader: _MetaReader,
    progress: bool,
    console: Console | None,
) -> IndexResult:
    files, n_ignored = find_image_files(root)
    result = IndexResult(
        root=root, rules=_rules_label(rules), n_images=len(files), n_ignored=n_ignored
    )
    entries: list[ImageEntry] = []
    for found in _progress(files, progress, console, "scanning images"):
        entry = _entry_for(found, rules, keywords, reader, result)
        if entry is not None:
            entries.append(entry)
    result.pairs, unpaired = pair_entries(entries)
    result.unpaired = sorted([*result.unpaired, *unpaired], key=lambda u: str(u.path))
    return result


def _entry_for(
    found: FoundFile,
    rules: Rules,
    keywords: KeywordRules,
    reader: _MetaReader,
    result: IndexResult,
) -> ImageEntry | None:
    """Classify one file; None (after recording it) if it cannot be read."""
    path = found.path
    image_format = found.image_format or format_from_suffix(path)
    by_tags = image_format == "dicom" and rules in ("auto", "dicom")
    if rules == "dicom" and image_format != "dicom":
        return ImageEntry(path, None, "not a DICOM file (--rules dicom)")
    meta = reader.read(path, result.unpaired)
    if meta is None:
        return None
    if by_tags:
        return _entry_from_tags(path, meta, keywords)
    keys = parse_cdd_cesm_name(path)
    if keys is None:
        return ImageEntry(
            path,
            None,
            "unknown type: the name follows no naming rule "
            "(CDD-CESM: P<n>_<L|R>_<DM|CM>_<view> or P<n>_<L|R>_<view>_<LE|RE>)",
        )
    return ImageEntry(
        path,
        keys.kind,
        f"name says {KIND_NAMES[keys.kind]}",
        patient_id=keys.patient_id,
        study_uid="",
        laterality=keys.laterality,
        view=keys.view,
    )


def _entry_from_tags(path: Path, meta: ImageMeta, keywords: KeywordRules) -> ImageEntry:
    verdict = classify(
        meta.extra.get("ImageType"),
        meta.extra.get("SeriesDescription"),
        meta.extra.get("Manufacturer"),
        keywords,
    )
    reason = verdict.reason
    if verdict.kind == "skip":
        reason = f"neither low-energy nor recombined: {verdict.reason}"
    return ImageEntry(
        path,
        verdict.kind,
        reason,
        patient_id=meta.patient_id,
        study_uid=meta.study_uid or "",
        laterality=meta.laterality,
        view=meta.view,
    )


def _index_phantom(root: Path, manifest: Path, report: BatchReport) -> IndexResult:
    records = read_manifest(manifest)
    files, n_ignored = find_image_files(root, exclude=[manifest])
    listed = {
        _normalized(path)
        for record in records
        for path in (record.le_path, record.rc_path, *_truth_paths(record))
    }
    unlisted = [_normalized(f.path) for f in files if _normalized(f.path) not in listed]
    result = IndexResult(
        root=root,
        rules="phantom",
        n_images=2 * len(records) + len(unlisted),
        n_ignored=n_ignored,
    )
    for path in unlisted:
        result.unpaired.append(
            UnpairedImage(
                path,
                "unknown",
                f"not listed in {manifest.name} (--rules phantom pairs only what it lists)",
            )
        )
    for record in records:
        missing = [p for p in (record.le_path, record.rc_path) if not p.is_file()]
        for path in missing:
            problem = f"listed in {manifest.name} but not found"
            report.add_failure(path, problem)
            result.unpaired.append(UnpairedImage(path, "unreadable", problem))
        if missing:
            present = [p for p in (record.le_path, record.rc_path) if p.is_file()]
            for path in present:
                kind: UnpairedKind = "le" if path == record.le_path else "rc"
                result.unpaired.append(
                    UnpairedImage(
                        path,
                        kind,
                        f"its partner in {manifest.name} is missing",
                        record.patient_id,
                        record.study_uid,
                        record.laterality,
                        record.view,
                    )
                )
            continue
        report.add_success(2)
        result.pairs.append(record)
    result.unpaired.sort(key=lambda u: str(u.path))
    return result


def _truth_paths(record: PairRecord) -> list[Path]:
    return [
        path
        for path in (
            record.breast_mask_path,
            record.fgt_mask_path,
            record.adipose_mask_path,
            record.lesion_mask_path,
            record.ideal_rc_path,
        )
        if path is not None
    ]


def _index_pairs_csv(
    root: Path,
    pairs_csv: Path,
    reader: _MetaReader,
    progress: bool,
    console: Console | None,
) -> IndexResult:
    rows = list(iter_csv_rows(pairs_csv, PAIRS_CSV_REQUIRED))
    files, n_ignored = find_image_files(root, exclude=[pairs_csv])
    result = IndexResult(root=root, rules="csv", n_ignored=n_ignored)
    listed: dict[Path, int] = {}
    for line, row in _progress(rows, progress, console, "checking pairs"):
        if any(not (row.get(name) or "").strip() for name in PAIRS_CSV_REQUIRED):
            raise InputFileError(pairs_csv, f"line {line}: le_path and rc_path must not be empty")
        paths = {name: resolve_path_text(row.get(name) or "", root) for name in PAIRS_CSV_REQUIRED}
        metas: dict[str, ImageMeta] = {}
        problems: list[str] = []
        for name, path in paths.items():
            if path in listed:
                problems.append(f"{path} is already in the pair on line {listed[path]}")
                continue
            listed[path] = line
            meta = reader.read(path, result.unpaired)
            if meta is None:
                problems.append(f"{name} cannot be read")
            else:
                metas[name] = meta
        cells = dict(row)
        if not problems:
            problems.extend(_tag_mismatches(metas["le_path"], metas["rc_path"]))
        if not problems:
            problems.extend(_fill_keys(cells, metas["le_path"], paths["le_path"]))
        if problems:
            reason = f"{pairs_csv.name} line {line}: {'; '.join(problems)}"
            for name, path in paths.items():
                if name in metas:
                    kind: UnpairedKind = "le" if name == "le_path" else "rc"
                    result.unpaired.append(UnpairedImage(path, kind, reason))
            continue
        cells["le_path"], cells["rc_path"] = str(paths["le_path"]), str(paths["rc_path"])
        result.pairs.append(record_from_row(cells, root, pairs_csv, line))

    for found in files:
        path = _normalized(found.path)
        if path not in listed:
            result.unpaired.append(
                UnpairedImage(path, "unknown", f"not listed in {pairs_csv.name} (--pairs-csv)")
            )
    result.n_images = len(set(listed) | {_normalized(f.path) for f in files})
    result.unpaired.sort(key=lambda u: str(u.path))
    return result


def _tag_mismatches(le_meta: ImageMeta, rc_meta: ImageMeta) -> list[str]:
    """Where both images carry a key (DICOM tags), LE and RC must agree; what differs."""
    problems: list[str] = []
    for label, le_value, rc_value in (
        ("PatientID", le_meta.patient_id, rc_meta.patient_id),
        ("laterality", le_meta.laterality, rc_meta.laterality),
        ("view", le_meta.view, rc_meta.view),
    ):
        if le_value is not None and rc_value is not None and le_value != rc_value:
            problems.append(f"LE and RC tags disagree: {label} {le_value!r} vs {rc_value!r}")
    return problems


def _fill_keys(cells: dict[str, str | None], le_meta: ImageMeta, le_path: Path) -> list[str]:
    """Fill empty key cells from the LE image's tags or name; return what is still missing."""
    from_name = parse_cdd_cesm_name(le_path)
    fallback = {
        "patient_id": le_meta.patient_id or (from_name.patient_id if from_name else None),
        "study_uid": le_meta.study_uid or "",
        "laterality": le_meta.laterality or (from_name.laterality if from_name else None),
        "view": le_meta.view or (from_name.view if from_name else None),
    }
    missing: list[str] = []
    for name, value in fallback.items():
        if (cells.get(name) or "").strip():
            continue
        if value is None:
            missing.append(f"{name} unknown (not in the CSV, the DICOM tags or the file name)")
        else:
            cells[name] = value
    return missing


# --- helpers --------------------------------------------------------------------------------


def _normalized(path: Path) -> Path:
    return Path(os.path.normpath(Path(path).absolute()))


def _unpaired(entry: ImageEntry, kind: UnpairedKind, reason: str) -> UnpairedImage:
    return UnpairedImage(
        _normalized(entry.path),
        kind,
        reason,
        entry.patient_id,
        entry.study_uid,
        entry.laterality,
        entry.view,
    )


def _key_label(key: tuple[str, str, str, str]) -> str:
    patient, study, laterality, view = key
    study_part = f", study {study}" if study else ""
    return f"patient {patient}{study_part}, {laterality} {view}"


def _rules_label(rules: Rules) -> str:
    return "dicom tags + cdd-cesm names" if rules == "auto" else rules


def _progress(
    items: Sequence[_T], enabled: bool, console: Console | None, label: str
) -> Iterable[_T]:
    """``items``, wrapped in a transient progress bar on a terminal when there are many."""
    if not enabled or len(items) < PROGRESS_MIN_FILES:
        return items
    from rich.console import Console

    from cemsynth.progress import track

    return track(items, label, console=console if console is not None else Console(stderr=True))
