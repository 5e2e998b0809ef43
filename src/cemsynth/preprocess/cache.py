"""The preprocessing cache: LE/RC pairs on the training grid, one folder per pair.

Layout (documented key by key in ``docs/data-pipeline.md``, section "Cache format")::

    CACHE/
      index.json                 the config, its hash, the list of entries, the failures
      preprocess.yaml            the config again, as YAML (``--config`` accepts it)
      splits.json                patient-level train/val/test split (cemsynth.data.splits)
      entries/<key>/
        le.npy  rc.npy           float32 (rows, cols) in [-1, 1], memory-mappable
        mask.npy                 bool (rows, cols): breast mask on the cached grid
        truth_<name>.npy         bool (rows, cols): manifest truth masks (fgt, adipose, ...)
        breast_mask_crop.npz     bool original-resolution breast mask inside the box
        record.json              written last: the entry is complete when it exists
      failures.csv               every failed pair of the last run (path, problem)

Every file is written atomically. A re-run reuses an entry only if its ``record.json`` has the
same config hash, the same manifest row (a hash over every :class:`PairRecord` field: keys,
paths, labels, spacing and extra columns) and LE, RC and truth-mask files of the same size and
modification time; otherwise the entry is rebuilt, its old ``record.json`` removed first. A
folder whose ``index.json`` names another config hash is refused (use a new folder).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from cemsynth.batch import FAILURES_NAME, BatchReport, available_cpus
from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.imaging import BoolArray, FloatArray
from cemsynth.io.atomic import write_atomic
from cemsynth.io.json_files import write_json
from cemsynth.io.messages import internal_error, one_line
from cemsynth.io.paths import ensure_writable_dir
from cemsynth.vocabulary import PATCH_SIZE

if TYPE_CHECKING:
    from rich.console import Console

    from cemsynth.io.manifest import PairRecord
    from cemsynth.preprocess.config import PreprocessConfig
    from cemsynth.preprocess.pipeline import PreprocessRecord

CACHE_FORMAT = "cemsynth-cache"
CACHE_VERSION = 1
INDEX_NAME = "index.json"
CONFIG_NAME = "preprocess.yaml"
ENTRIES_DIR = "entries"
RECORD_NAME = "record.json"
TRUTH_MASKS = {
    "breast": "breast_mask_path",
    "fgt": "fgt_mask_path",
    "adipose": "adipose_mask_path",
    "lesion": "lesion_mask_path",
}
"""Truth-mask name in the cache -> manifest field holding its path."""
TRUTH_LABELS = ("lesion_present", "lesion_enhancing", "lesion_kind", "bpe_grade", "halo", "density")


# --- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CacheEntry:
    """One pair in ``index.json``: its folder name and what splits and reports need."""

    key: str
    patient_id: str
    study_uid: str
    laterality: str
    view: str
    shape: tuple[int, int]
    breast_pixels: int
    lesion_present: bool | None = None
    bpe_grade: str | None = None
    truth_masks: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "patient_id": self.patient_id,
            "study_uid": self.study_uid,
            "laterality": self.laterality,
            "view": self.view,
            "shape": list(self.shape),
            "breast_pixels": self.breast_pixels,
            "lesion_present": self.lesion_present,
            "bpe_grade": self.bpe_grade,
            "truth_masks": list(self.truth_masks),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CacheEntry:
        rows, cols = (int(v) for v in data["shape"])
        return cls(
            key=str(data["key"]),
            patient_id=str(data["patient_id"]),
            study_uid=str(data["study_uid"]),
            laterality=str(data["laterality"]),
            view=str(data["view"]),
            shape=(rows, cols),
            breast_pixels=int(data["breast_pixels"]),
            lesion_present=data.get("lesion_present"),
            bpe_grade=data.get("bpe_grade"),
            truth_masks=tuple(data.get("truth_masks", ())),
        )


@dataclass(frozen=True)
class CachedPair:
    """The arrays of one entry (memory-mapped read-only when opened with ``mmap=True``).

    ``le``/``rc``: float32 ``(rows, cols)`` in [-1, 1]; ``mask``: bool breast mask;
    ``truth``: bool truth masks by name (fgt, adipose, lesion, breast) when the manifest had
    them. All on the cached grid.
    """

    key: str
    folder: Path
    le: FloatArray
    rc: FloatArray
    mask: BoolArray
    truth: dict[str, BoolArray] = field(default_factory=dict)

    def record(self) -> PreprocessRecord:
        """The :class:`PreprocessRecord` (loads the original-resolution breast mask)."""
        return read_preprocess_record(self.folder)

    def entry_json(self) -> dict[str, Any]:
        """The whole ``record.json`` (manifest keys, truth labels, sources, record)."""
        return _read_json(self.folder / RECORD_NAME)


class Cache:
    """An opened cache folder: its config, entries and arrays."""

    def __init__(self, root: Path, index: dict[str, Any]) -> None:
        from cemsynth.preprocess.config import PreprocessConfig

        self.root = root
        self.index = index
        self.config: PreprocessConfig = PreprocessConfig.from_dict(index["config"])
        self.config_hash: str = str(index["config_hash"])
        self.entries: list[CacheEntry] = [CacheEntry.from_dict(e) for e in index["entries"]]
        self._by_key = {entry.key: entry for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def entry(self, key: str) -> CacheEntry:
        try:
            return self._by_key[key]
        except KeyError:
            raise CemsynthError(f"{self.root}: no cache entry {key!r}") from None

    def folder(self, key: str) -> Path:
        return self.root / ENTRIES_DIR / key

    def load(self, key: str, mmap: bool = True) -> CachedPair:
        """Arrays of entry ``key``; with ``mmap`` they are read-only memory maps (cheap)."""
        entry = self.entry(key)
        folder = self.folder(key)
        mode: Any = "r" if mmap else None
        try:
            le = np.load(folder / "le.npy", mmap_mode=mode)
            rc = np.load(folder / "rc.npy", mmap_mode=mode)
            mask = np.load(folder / "mask.npy", mmap_mode=mode)
            truth = {
                name: np.load(folder / f"truth_{name}.npy", mmap_mode=mode)
                for name in entry.truth_masks
            }
        except (OSError, ValueError) as exc:
            raise InputFileError(folder, f"cache entry is damaged ({exc}); rebuild it") from exc
        return CachedPair(key=key, folder=folder, le=le, rc=rc, mask=mask, truth=truth)

    def check_config(self, config: PreprocessConfig) -> None:
        """Raise ConfigError if ``config`` is not the config this cache was made with."""
        if config.config_hash() != self.config_hash:
            raise ConfigError(
                f"{self.root} was preprocessed with another config (hash {self.config_hash}, "
                f"yours {config.config_hash()}); rebuild the cache or use its "
                f"{CONFIG_NAME}"
            )


def open_cache(root: Path) -> Cache:
    """Open a cache folder made by :func:`build_cache` (reads ``index.json`` only)."""
    root = Path(root)
    index = _read_json(root / INDEX_NAME, what="cache index")
    if index.get("format") != CACHE_FORMAT:
        raise InputFileError(root / INDEX_NAME, "not a cemsynth cache index")
    if index.get("version") != CACHE_VERSION:
        raise InputFileError(
            root / INDEX_NAME,
            f"cache version {index.get('version')!r} is not {CACHE_VERSION}; rebuild the cache",
        )
    return Cache(root, index)


def read_preprocess_record(folder: Path) -> PreprocessRecord:
    """The :class:`PreprocessRecord` of one entry folder."""
    from cemsynth.preprocess.pipeline import PreprocessRecord

    data = _read_json(folder / RECORD_NAME)
    with np.load(folder / "breast_mask_crop.npz") as archive:
        packed = archive["packed"]
        shape = tuple(int(v) for v in archive["shape"])
    mask = np.unpackbits(packed, count=shape[0] * shape[1]).reshape(shape).astype(np.bool_)
    return PreprocessRecord.from_dict(data["preprocess"], mask)


def _read_json(path: Path, what: str = "cache record") -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, f"{what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"unreadable {what}: {one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise InputFileError(path, f"unreadable {what}: not a JSON object")
    return data


# --- writing one entry ------------------------------------------------------------------


def entry_key(pair: PairRecord) -> str:
    """Folder name of a pair: readable manifest keys plus a hash of the LE path (unique)."""
    digest = hashlib.sha1(str(pair.le_path).encode("utf-8"), usedforsecurity=False).hexdigest()
    readable = "_".join(
        re.sub(r"[^A-Za-z0-9.-]+", "-", part)
        for part in (pair.patient_id, pair.laterality, pair.view)
    )
    return f"{readable[:80]}_{digest[:10]}"


def _save_npy(path: Path, array: npt.NDArray[Any]) -> None:
    def writer(handle: IO[bytes]) -> None:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    write_atomic(path, writer)


def _save_packed_mask(path: Path, mask: BoolArray) -> None:
    def writer(handle: IO[bytes]) -> None:
        np.savez_compressed(
            handle, packed=np.packbits(mask.ravel()), shape=np.array(mask.shape, dtype=np.int64)
        )

    write_atomic(path, writer)


def _source_stamp(path: Path) -> dict[str, Any]:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise InputFileError(path, "file not found") from None
    except OSError as exc:
        raise InputFileError(path, f"cannot read: {exc.strerror or one_line(exc)}") from None
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _source_stamps(pair: PairRecord) -> dict[str, Any]:
    """Size and modification time of every file the entry is made from (LE, RC, truth masks)."""
    stamps = {"le": _source_stamp(pair.le_path), "rc": _source_stamp(pair.rc_path)}
    for name, attribute in TRUTH_MASKS.items():
        mask_path = getattr(pair, attribute)
        if mask_path is not None:
            stamps[f"truth_{name}"] = _source_stamp(Path(mask_path))
    return stamps


def pair_hash(pair: PairRecord) -> str:
    """16 hex digits over every field of the manifest row (paths, keys, labels, spacing, extra).

    A changed label (``lesion_present``, ``bpe_grade``, ``halo``, ...), truth-mask path,
    per-row spacing or extra column gives another hash, so the cache entry is rebuilt.
    """
    data: dict[str, Any] = {}
    for item in dataclasses.fields(pair):
        value = getattr(pair, item.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[item.name] = value
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def read_truth_mask(path: Path, shape: tuple[int, int]) -> BoolArray:
    """A truth mask file (PNG/TIFF/JPEG/DICOM) as bool: nonzero pixels are True.

    Read by :func:`cemsynth.io.reader.read_image` with ``mask=True`` (same format detection,
    checks and one-line errors as images; MONOCHROME1 inverted, rescale applied) except that,
    unlike an image, an all-zero mask is valid (e.g. no lesion) and any DICOM modality is
    accepted. Must have ``shape`` (its LE image's size).
    """
    from cemsynth.io.reader import read_image

    pixels = read_image(Path(path), mask=True).array
    if pixels.shape != shape:
        raise InputFileError(
            path,
            f"mask is {pixels.shape[0]} x {pixels.shape[1]} pixels, its LE image "
            f"{shape[0]} x {shape[1]}; they must match",
        )
    return np.asarray(pixels != 0)


def _reusable(folder: Path, pair: PairRecord, config_hash: str) -> CacheEntry | None:
    """The existing entry in ``folder`` if it was made from the same manifest row, files and
    config: same config hash, same :func:`pair_hash` and unchanged source stamps."""
    record_path = folder / RECORD_NAME
    if not record_path.is_file():
        return None
    try:
        data = json.loads(record_path.read_text(encoding="utf-8"))
        if data.get("config_hash") != config_hash or data.get("pair_hash") != pair_hash(pair):
            return None
        if data["sources"] != _source_stamps(pair):
            return None
        return CacheEntry.from_dict(data["entry"])
    except (OSError, ValueError, KeyError, TypeError, InputFileError):
        return None  # unreadable, old or a source is gone: make it again (and report why)


def process_pair(
    pair: PairRecord, root: Path, config: PreprocessConfig, reuse: bool = True
) -> tuple[CacheEntry, bool]:
    """Read, preprocess and write one manifest pair into ``root/entries/<key>``.

    Returns the entry and whether an existing complete entry was reused.
    Raises :class:`InputFileError` (one line, naming the file) for a bad input.
    """
    from cemsynth.io.reader import read_image
    from cemsynth.preprocess.pipeline import forward, mask_to_cached_grid

    key = entry_key(pair)
    folder = Path(root) / ENTRIES_DIR / key
    config_hash = config.config_hash()
    if reuse:
        existing = _reusable(folder, pair, config_hash)
        if existing is not None:
            return existing, True

    # stamped before reading: a file changed while this runs is rebuilt next time
    stamps = _source_stamps(pair)
    le = read_image(pair.le_path, pair.pixel_spacing_mm)
    rc = read_image(pair.rc_path, pair.pixel_spacing_mm)
    result = forward(le, rc, config)
    assert result.rc is not None
    truth: dict[str, BoolArray] = {}
    for name, attribute in TRUTH_MASKS.items():
        mask_path = getattr(pair, attribute)
        if mask_path is not None:
            full = read_truth_mask(Path(mask_path), le.shape)
            truth[name] = mask_to_cached_grid(full, result.record).array
    del le, rc

    # An old record goes first, the new one last: a folder without record.json is an
    # incomplete entry, so an interrupted rebuild never pairs new arrays with an old record.
    (folder / RECORD_NAME).unlink(missing_ok=True)
    for stale in folder.glob("truth_*.npy"):
        if stale.stem.removeprefix("truth_") not in truth:
            stale.unlink(missing_ok=True)
    _save_npy(folder / "le.npy", result.le)
    _save_npy(folder / "rc.npy", result.rc)
    _save_npy(folder / "mask.npy", result.mask.array)
    for name, array in truth.items():
        _save_npy(folder / f"truth_{name}.npy", array)
    _save_packed_mask(folder / "breast_mask_crop.npz", result.record.breast_mask_crop)
    entry = CacheEntry(
        key=key,
        patient_id=pair.patient_id,
        study_uid=pair.study_uid,
        laterality=pair.laterality,
        view=pair.view,
        shape=result.record.cached_shape,
        breast_pixels=int(np.count_nonzero(result.mask.array)),
        lesion_present=pair.lesion_present,
        bpe_grade=pair.bpe_grade,
        truth_masks=tuple(truth),
    )
    document = {
        "format": "cemsynth-cache-entry",
        "version": CACHE_VERSION,
        "key": key,
        "config_hash": config_hash,
        "pair_hash": pair_hash(pair),
        "entry": entry.to_dict(),
        "pair": {
            "patient_id": pair.patient_id,
            "study_uid": pair.study_uid,
            "laterality": pair.laterality,
            "view": pair.view,
            "le_path": str(pair.le_path),
            "rc_path": str(pair.rc_path),
            **{
                attribute: None
                if getattr(pair, attribute) is None
                else str(getattr(pair, attribute))
                for attribute in TRUTH_MASKS.values()
            },
        },
        "truth": {name: getattr(pair, name) for name in TRUTH_LABELS},
        "sources": stamps,
        "arrays": {
            "le": "le.npy",
            "rc": "rc.npy",
            "mask": "mask.npy",
            **{f"truth_{name}": f"truth_{name}.npy" for name in truth},
            "breast_mask_crop": "breast_mask_crop.npz",
        },
        "preprocess": result.record.to_dict(),
    }
    write_json(folder / RECORD_NAME, document)
    return entry, False


# --- the batch -----------------------------------------------------------------------


@dataclass
class BuildResult:
    """What :func:`build_cache` did."""

    root: Path
    entries: list[CacheEntry]
    n_reused: int
    report: BatchReport
    seconds: float


@dataclass(frozen=True)
class _Outcome:
    index: int
    entry: CacheEntry | None = None
    reused: bool = False
    path: str | None = None
    problem: str | None = None
    stop: bool = False
    """The cache itself cannot be written (disk full, read-only): the run stops."""


#: Write errors that no other pair would escape: the run stops with one line.
_STOP_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _work(index: int, pair: PairRecord, root: Path, config: PreprocessConfig) -> _Outcome:
    """Worker body: user-fixable problems come back as values (they pickle reliably)."""
    try:
        entry, reused = process_pair(pair, root, config)
    except InputFileError as exc:
        return _Outcome(index, path=str(exc.path), problem=exc.problem)
    except CemsynthError as exc:
        return _Outcome(index, path=str(pair.le_path), problem=str(exc))
    except OSError as exc:
        if exc.errno not in _STOP_ERRNOS:
            raise
        where = str(exc.filename) if exc.filename else str(root)
        return _Outcome(index, path=where, problem=exc.strerror or str(exc), stop=True)
    return _Outcome(index, entry=entry, reused=reused)


def _check_existing_index(root: Path, config: PreprocessConfig) -> None:
    path = root / INDEX_NAME
    if not path.exists():
        return
    index = _read_json(path, what="cache index")
    old = index.get("config_hash")
    if old != config.config_hash():
        raise ConfigError(
            f"{root} holds a cache made with another preprocessing config (hash {old}, "
            f"now {config.config_hash()}); choose a new --out folder or delete the old one"
        )


def build_cache(
    pairs: Sequence[PairRecord],
    root: Path,
    config: PreprocessConfig,
    report: BatchReport,
    workers: int = 1,
    manifest_path: Path | None = None,
    progress_console: Console | None = None,
    raise_unexpected: bool = False,
    on_done: Callable[[int], None] | None = None,
) -> BuildResult:
    """Preprocess every pair into ``root`` and write ``index.json`` and ``preprocess.yaml``.

    Args:
        pairs: manifest rows.
        root: cache folder (created; checked for writing before any work, a one-line
            :class:`CemsynthError` if it cannot be used).
        config: preprocessing settings; an existing cache with another hash is refused.
        report: collects one-line failures (with ``strict`` it raises at the first) and
            warnings; every failure is also written to ``root/failures.csv``.
        workers: processes; 1 runs in this process, 0 means one per CPU this process may use
            (:func:`cemsynth.batch.available_cpus`).
        manifest_path: recorded in the index.
        progress_console: draw a progress bar there if it is a terminal (None: no bar).
        raise_unexpected: let an unexpected exception (a bug) propagate with its
            traceback instead of recording it as a failure.
        on_done: called with the number of pairs finished so far (for callers' progress).

    Returns:
        The entries in manifest order (failed pairs left out) and counts.
    """
    import time

    from cemsynth.preprocess.config import save_preprocess_config

    start = time.perf_counter()
    root = Path(root)
    ensure_writable_dir(root, "cache folder")
    _check_existing_index(root, config)
    save_preprocess_config(config, root / CONFIG_NAME)
    n_workers = available_cpus() if workers == 0 else max(1, workers)
    outcomes: dict[int, _Outcome] = {}
    keys = [entry_key(pair) for pair in pairs]
    duplicates = {key for key, count in Counter(keys).items() if count > 1}

    def handle(outcome: _Outcome) -> None:
        if outcome.stop:
            raise CemsynthError(
                f"{outcome.path}: {outcome.problem}; the cache cannot be written, so "
                "preprocessing stopped (pairs cached so far are kept and reused when you rerun "
                "cemsynth preprocess after freeing space)"
            )
        outcomes[outcome.index] = outcome
        if outcome.problem is not None:
            report.add_failure(outcome.path or "?", outcome.problem)
        else:
            report.add_success()

    def unexpected(index: int, exc: BaseException) -> _Outcome:
        if raise_unexpected:
            raise exc
        return _Outcome(index, path=str(pairs[index].le_path), problem=internal_error(exc))

    todo: list[int] = []
    for index, pair in enumerate(pairs):
        if keys[index] in duplicates:
            handle(_Outcome(index, path=str(pair.le_path), problem="listed twice in the manifest"))
        else:
            todo.append(index)

    with _progress(progress_console, len(pairs)) as advance:
        advance(len(pairs) - len(todo))
        if n_workers == 1 or len(todo) <= 1:
            for index in todo:
                try:
                    outcome = _work(index, pairs[index], root, config)
                except Exception as exc:
                    outcome = unexpected(index, exc)
                handle(outcome)
                advance(1)
                if on_done is not None:
                    on_done(len(outcomes))
        else:
            with ProcessPoolExecutor(max_workers=min(n_workers, len(todo))) as pool:
                futures: dict[Future[_Outcome], int] = {
                    pool.submit(_work, index, pairs[index], root, config): index for index in todo
                }
                pending = set(futures)
                try:
                    while pending:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in done:
                            try:
                                outcome = future.result()
                            except Exception as exc:
                                outcome = unexpected(futures[future], exc)
                            handle(outcome)
                            advance(1)
                            if on_done is not None:
                                on_done(len(outcomes))
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise

    finished: list[CacheEntry] = []
    for index in range(len(pairs)):  # manifest order, whatever order the workers finished in
        entry = outcomes[index].entry if index in outcomes else None
        if entry is not None:
            finished.append(entry)
    _write_index(root, config, finished, report, manifest_path)
    report.write_failures(root / FAILURES_NAME)
    _warn_small_entries(finished, root, report)
    n_reused = sum(1 for o in outcomes.values() if o.reused)
    return BuildResult(
        root=root,
        entries=finished,
        n_reused=n_reused,
        report=report,
        seconds=time.perf_counter() - start,
    )


def _warn_small_entries(entries: Sequence[CacheEntry], root: Path, report: BatchReport) -> None:
    """One warning line if some cached images are smaller than a training patch."""
    small = [entry for entry in entries if min(entry.shape) < PATCH_SIZE]
    if not small:
        return
    smallest = min(small, key=lambda entry: entry.shape[0] * entry.shape[1])
    report.warn(
        f"{len(small)} of {len(entries)} cached images are smaller than a {PATCH_SIZE} x "
        f"{PATCH_SIZE} training patch (smallest {smallest.shape[0]} x {smallest.shape[1]}: "
        f"{root / ENTRIES_DIR / smallest.key}); patches will be mostly padding: lower "
        "downsample_factor (1 for images already at training resolution) or target_spacing_mm"
    )


def _write_index(
    root: Path,
    config: PreprocessConfig,
    entries: list[CacheEntry],
    report: BatchReport,
    manifest_path: Path | None,
) -> None:
    from cemsynth import __version__

    index = {
        "format": CACHE_FORMAT,
        "version": CACHE_VERSION,
        "cemsynth_version": __version__,
        "written_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "manifest": None if manifest_path is None else str(Path(manifest_path).absolute()),
        "config_hash": config.config_hash(),
        "config": config.to_dict(),
        "entries": [entry.to_dict() for entry in entries],
        "failures": [{"path": str(f.path), "problem": f.problem} for f in report.failures],
    }
    write_json(root / INDEX_NAME, index)


class _progress:
    """A rich progress bar (or nothing) as a context manager yielding ``advance(n)``."""

    def __init__(self, console: Console | None, total: int) -> None:
        self.console = console
        self.total = total
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if self.console is None:
            return lambda n: None
        from cemsynth.progress import progress_bar

        self._bar = progress_bar(
            "preprocessing", console=self.console, transient=False, elapsed=True
        )
        self._bar.__enter__()
        self._task = self._bar.add_task("preprocess", total=self.total)
        return lambda n: self._bar.advance(self._task, n) if n else None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
