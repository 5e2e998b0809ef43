"""Patient-level train/val/test split, seeded and stratified by lesion status.

All images of a patient go to one split (both breasts, all views), so no patient's anatomy
is seen in training and scored in testing. A patient is lesion-positive if any of their
breasts has a lesion, negative if all known breasts have none, and "unknown" if the
manifest says nothing. Each stratum (positive, negative, unknown) is shuffled with the seed
and dealt to the splits so that every stratum, and the whole cohort, follows the fractions
to within one patient per split.

``splits.json`` (written by ``cemsynth preprocess`` into the cache and by ``cemsynth split``)
is what training and evaluation read; see ``docs/data-pipeline.md``.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cemsynth.config_files import ConfigFile
from cemsynth.errors import ConfigError, InputFileError
from cemsynth.io.json_files import write_json
from cemsynth.io.messages import one_line
from cemsynth.io.paths import ensure_writable_file

SPLITS_FORMAT = "cemsynth-splits"
SPLITS_VERSION = 1
SPLIT_NAMES = ("train", "val", "test")
SPLITS_NAME = "splits.json"
STRATA = ("positive", "negative", "unknown")


@dataclass(frozen=True)
class SplitConfig(ConfigFile):
    """Fractions of patients per split and the seed; train gets what val and test leave.

    The paper split 140 patients 100/40 (train/test) without a validation set; our default
    keeps a small validation set for model selection.
    """

    KIND = "split"

    val_fraction: float = 0.1
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ConfigError(f"seed must be a whole number of 0 or more, got {self.seed!r}")
        if self.seed < 0:  # numpy's generators take only non-negative seeds
            raise ConfigError(f"seed must be 0 or more, got {self.seed}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{name} must be a number in [0, 1), got {value!r}")
            if not 0.0 <= value < 1.0:  # also rejects NaN
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                f"val ({self.val_fraction}) + test ({self.test_fraction}) fractions must leave "
                "some patients for training (sum < 1)"
            )

    @property
    def fractions(self) -> dict[str, float]:
        return {
            "train": 1.0 - self.val_fraction - self.test_fraction,
            "val": self.val_fraction,
            "test": self.test_fraction,
        }


@dataclass(frozen=True)
class SplitItem:
    """One image (cache entry) to split: its key, patient and lesion status (None: unknown)."""

    key: str
    patient_id: str
    lesion_present: bool | None


@dataclass(frozen=True)
class Splits:
    """Patients and entry keys per split (sorted lists), with how they were made."""

    config: SplitConfig
    patients: dict[str, list[str]]
    entries: dict[str, list[str]]
    strata: dict[str, str]
    """patient id -> "positive" | "negative" | "unknown"."""

    def split_of(self, patient_id: str) -> str:
        for name in SPLIT_NAMES:
            if patient_id in self.patients[name]:
                return name
        raise KeyError(patient_id)

    def to_dict(self) -> dict[str, Any]:
        counts = {
            name: {
                "patients": len(self.patients[name]),
                "images": len(self.entries[name]),
                **{
                    stratum: sum(1 for p in self.patients[name] if self.strata[p] == stratum)
                    for stratum in STRATA
                },
            }
            for name in SPLIT_NAMES
        }
        return {
            "format": SPLITS_FORMAT,
            "version": SPLITS_VERSION,
            "seed": self.config.seed,
            "fractions": self.config.fractions,
            "stratified_by": "lesion_present (any breast of the patient)",
            "counts": counts,
            "patients": self.patients,
            "entries": self.entries,
            "strata": self.strata,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: Path | str = "splits") -> Splits:
        if data.get("format") != SPLITS_FORMAT or data.get("version") != SPLITS_VERSION:
            raise InputFileError(source, "not a cemsynth splits file (format/version)")
        try:
            fractions = data["fractions"]
            config = SplitConfig(
                val_fraction=float(fractions["val"]),
                test_fraction=float(fractions["test"]),
                seed=int(data["seed"]),
            )
            patients = {name: [str(p) for p in data["patients"][name]] for name in SPLIT_NAMES}
            entries = {name: [str(k) for k in data["entries"][name]] for name in SPLIT_NAMES}
            strata = {str(k): str(v) for k, v in data["strata"].items()}
        except (KeyError, TypeError, ValueError, ConfigError) as exc:
            raise InputFileError(source, f"malformed splits file ({one_line(exc)})") from None
        splits = cls(config=config, patients=patients, entries=entries, strata=strata)
        _check_disjoint(splits, source)
        return splits


def _check_disjoint(splits: Splits, source: Path | str) -> None:
    seen: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for patient in splits.patients[name]:
            if patient in seen:
                raise InputFileError(
                    source, f"patient {patient!r} is in both {seen[patient]} and {name}"
                )
            seen[patient] = name
    keys: dict[str, str] = {}
    for name in SPLIT_NAMES:
        for key in splits.entries[name]:
            if key in keys:
                raise InputFileError(source, f"entry {key!r} is in both {keys[key]} and {name}")
            keys[key] = name


def patient_strata(items: Iterable[SplitItem]) -> dict[str, str]:
    """Patient id -> "positive" (any lesion), "negative" (all known negative) or "unknown"."""
    status: dict[str, list[bool | None]] = {}
    for item in items:
        status.setdefault(item.patient_id, []).append(item.lesion_present)
    strata: dict[str, str] = {}
    for patient, values in status.items():
        if any(value is True for value in values):
            strata[patient] = "positive"
        elif any(value is False for value in values):
            strata[patient] = "negative"
        else:
            strata[patient] = "unknown"
    return strata


def _deal(n: int, fractions: Sequence[float], offsets: Sequence[float]) -> list[int]:
    """Split labels for ``n`` consecutive patients so that every prefix follows ``fractions``.

    Each next patient goes to the split furthest behind its quota. ``offsets`` carries the
    running surplus across strata, so the cohort total follows the fractions too.
    """
    owed = list(offsets)
    labels: list[int] = []
    for _ in range(n):
        for s, fraction in enumerate(fractions):
            owed[s] += fraction
        choice = max(range(len(fractions)), key=lambda s: (owed[s], -s))
        owed[choice] -= 1.0
        labels.append(choice)
    return labels


def make_splits(items: Sequence[SplitItem], config: SplitConfig) -> Splits:
    """Assign every patient (with all their images) to train, val or test.

    Deterministic for a given ``config.seed`` and set of items (input order does not matter).
    """
    strata = patient_strata(items)
    rng = np.random.default_rng(config.seed)
    fractions = [config.fractions[name] for name in SPLIT_NAMES]
    owed = [0.0, 0.0, 0.0]
    assignment: dict[str, str] = {}
    for stratum in STRATA:
        members = sorted(p for p, s in strata.items() if s == stratum)
        order = [members[i] for i in rng.permutation(len(members))]
        labels = _deal(len(order), fractions, owed)
        for patient, label in zip(order, labels, strict=True):
            assignment[patient] = SPLIT_NAMES[label]
        # carry what is still owed so small strata do not all round the same way
        for s in range(3):
            owed[s] += len(order) * fractions[s] - labels.count(s)
    patients = {name: sorted(p for p, s in assignment.items() if s == name) for name in SPLIT_NAMES}
    entries = {
        name: sorted(item.key for item in items if assignment[item.patient_id] == name)
        for name in SPLIT_NAMES
    }
    return Splits(config=config, patients=patients, entries=entries, strata=strata)


def write_splits(path: Path, splits: Splits) -> None:
    """Write ``splits.json`` atomically."""
    write_json(path, splits.to_dict())


def read_splits(path: Path) -> Splits:
    """Read ``splits.json``; a patient or entry in two splits raises InputFileError."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(path, "splits file not found (run cemsynth split)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"unreadable splits file: {one_line(exc)}") from None
    if not isinstance(data, dict):
        raise InputFileError(path, "unreadable splits file: not a JSON object")
    return Splits.from_dict(data, source=path)


def split_cache(cache_root: Path, config: SplitConfig, out: Path | None = None) -> Splits:
    """Split the entries of a cache and write ``splits.json`` (default: inside the cache).

    An unwritable ``out`` raises :class:`~cemsynth.errors.CemsynthError` (one line) first.
    """
    from cemsynth.preprocess.cache import open_cache

    target = out if out is not None else Path(cache_root) / SPLITS_NAME
    cache = open_cache(cache_root)
    ensure_writable_file(target, "splits file")
    items = [SplitItem(e.key, e.patient_id, e.lesion_present) for e in cache.entries]
    splits = make_splits(items, config)
    write_splits(target, splits)
    return splits


@dataclass(frozen=True)
class DefaultSplit:
    """What :func:`ensure_default_split` did with a cache's ``splits.json``.

    Attributes:
        path: the cache's ``splits.json``.
        written: there was none, so the default split was written now.
        matches: the file lists exactly the cache's entries (always True when ``written``).
    """

    path: Path
    written: bool
    matches: bool

    def warning(self) -> str | None:
        """One line saying the split does not fit the cache and what to run, else None."""
        if self.matches:
            return None
        return (
            f"warning: {self.path} does not list exactly the cached pairs; "
            f"run: cemsynth split {self.path.parent}"
        )


def ensure_default_split(cache_root: Path, config: SplitConfig | None = None) -> DefaultSplit:
    """After preprocessing: give a cache (with entries) a split if it has none.

    Writes ``CACHE/splits.json`` with ``config`` (default: :class:`SplitConfig`'s defaults)
    when it is missing. An existing one is kept, never overwritten; the result says whether it
    still lists exactly the cache's entries (a re-run with other pairs leaves it stale).
    Raises :class:`~cemsynth.errors.InputFileError` naming an unreadable index or splits file.
    """
    from cemsynth.preprocess.cache import open_cache

    path = Path(cache_root) / SPLITS_NAME
    if not path.exists():
        split_cache(cache_root, config if config is not None else SplitConfig())
        return DefaultSplit(path=path, written=True, matches=True)
    listed = {key for keys in read_splits(path).entries.values() for key in keys}
    cached = {entry.key for entry in open_cache(cache_root).entries}
    return DefaultSplit(path=path, written=False, matches=listed == cached)
