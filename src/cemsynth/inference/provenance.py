"""``OUT/provenance.json``: how a folder of ``cemsynth predict`` outputs was made.

``predict`` writes it (atomically) before the first image, so the settings travel with the
images: ``cemsynth evaluate`` takes the preprocessing from it instead of a ``--preset`` typed
again by hand, and refuses a ``--preset`` or ``--config`` whose preprocessing differs. Keys
(format :data:`PROVENANCE_FORMAT`, version :data:`PROVENANCE_VERSION`):

- ``format``, ``format_version``;
- ``checkpoint``: ``name`` (``run/best.pt``), ``sha256`` (of the checkpoint file), ``step``
  and ``trained_with`` (the cemsynth version that trained it); for an exported ONNX file, the
  checkpoint it was exported from;
- ``preprocess_config`` (every field) and ``preprocess_config_hash`` (its
  :meth:`~cemsynth.preprocess.config.PreprocessConfig.config_hash`);
- ``inference``: ``mode`` ("sliding window" or "preview"), ``backend``, ``device`` (``cpu``
  or ``cuda``, as resolved) and ``precision``;
- ``sliding_window``: every :class:`~cemsynth.inference.config.SlidingWindowConfig` field
  (``window``, ``stride``, ``blend``, ...) as used; null in preview mode;
- ``cemsynth_version`` and ``created_utc`` (ISO 8601) of the run that made the folder.

A folder holds the outputs of one set of settings: ``predict`` adds to a folder only when
everything above but ``checkpoint.name``, ``checkpoint.trained_with``,
``sliding_window.batch_size``, ``cemsynth_version`` and ``created_utc`` is the same, and then
leaves the file as it is (:func:`check_folder`). This module does not import torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cemsynth import __version__
from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.inference.model import ModelIdentity
from cemsynth.inference.outputs import SYNTHETIC_MANIFEST
from cemsynth.io.json_files import write_json
from cemsynth.preprocess.config import PreprocessConfig

if TYPE_CHECKING:
    from cemsynth.inference.predictor import Predictor

PROVENANCE_NAME = "provenance.json"
PROVENANCE_FORMAT = "cemsynth-predictions"
PROVENANCE_VERSION = 1
"""Bump when keys change meaning; :func:`read_provenance` refuses newer versions."""
UNCOMPARED_WINDOW_FIELDS = ("batch_size",)
"""Sliding-window settings that do not change the images (left out of the comparison)."""


@dataclass(frozen=True)
class Provenance:
    """How a prediction folder was made (the content of ``provenance.json``).

    Attributes:
        checkpoint: the model's identity (name, SHA-256 of the checkpoint file, step).
        preprocess_config: the preprocessing the model was trained with and applied.
        mode: "sliding window", or "preview" (one pass over the whole image).
        backend, device, precision: how the network ran ("onnx"/"torch", "cpu"/"cuda",
            "fp32"/"bf16").
        sliding_window: the sliding-window settings as used (window and stride in pixels of
            the cached grid); None in preview mode.
        cemsynth_version: the cemsynth that wrote the folder.
        created_utc: when, ISO 8601 in UTC.
    """

    checkpoint: ModelIdentity
    preprocess_config: PreprocessConfig
    mode: str
    backend: str
    device: str
    precision: str
    sliding_window: dict[str, Any] | None
    cemsynth_version: str
    created_utc: str

    @property
    def preprocess_config_hash(self) -> str:
        return self.preprocess_config.config_hash()

    @classmethod
    def of(cls, predictor: Predictor) -> Provenance:
        """The provenance of outputs ``predictor`` makes now."""
        model = predictor.model
        return cls(
            checkpoint=model.identity,
            preprocess_config=model.preprocess_config,
            mode="preview" if predictor.preview else "sliding window",
            backend=model.backend,
            device=model.device.type,
            precision=model.precision,
            sliding_window=None if predictor.preview else asdict(predictor.window),
            cemsynth_version=__version__,
            created_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (keys in the module docstring)."""
        return {
            "format": PROVENANCE_FORMAT,
            "format_version": PROVENANCE_VERSION,
            "checkpoint": self.checkpoint.to_dict(),
            "preprocess_config": self.preprocess_config.to_dict(),
            "preprocess_config_hash": self.preprocess_config_hash,
            "inference": {
                "mode": self.mode,
                "backend": self.backend,
                "device": self.device,
                "precision": self.precision,
            },
            "sliding_window": self.sliding_window,
            "cemsynth_version": self.cemsynth_version,
            "created_utc": self.created_utc,
        }

    @classmethod
    def from_dict(cls, data: Any, path: Path) -> Provenance:
        """Parse a document from :meth:`to_dict`; InputFileError naming ``path`` if it is not
        one, comes from a newer cemsynth, or its preprocessing hash does not match its config."""
        if not isinstance(data, dict) or data.get("format") != PROVENANCE_FORMAT:
            raise InputFileError(path, f"not a cemsynth provenance file (no '{PROVENANCE_FORMAT}')")
        version = data.get("format_version")
        if not isinstance(version, int) or version > PROVENANCE_VERSION:
            raise InputFileError(
                path,
                f"provenance format version {version!r} is newer than this cemsynth reads "
                f"({PROVENANCE_VERSION}); upgrade cemsynth",
            )
        try:
            inference = data["inference"]
            window = data["sliding_window"]
            provenance = cls(
                checkpoint=ModelIdentity.from_dict(data["checkpoint"]),
                preprocess_config=PreprocessConfig.from_dict(data["preprocess_config"]),
                mode=str(inference["mode"]),
                backend=str(inference["backend"]),
                device=str(inference["device"]),
                precision=str(inference["precision"]),
                sliding_window=None if window is None else dict(window),
                cemsynth_version=str(data["cemsynth_version"]),
                created_utc=str(data["created_utc"]),
            )
            recorded = str(data["preprocess_config_hash"])
        except KeyError as exc:
            raise InputFileError(path, f"provenance file lacks the key {exc}") from None
        except (TypeError, ValueError, ConfigError) as exc:
            raise InputFileError(path, f"provenance file cannot be used ({exc})") from None
        if recorded != provenance.preprocess_config_hash:
            raise InputFileError(
                path,
                f"preprocess_config_hash {recorded} does not match its preprocess_config "
                f"({provenance.preprocess_config_hash}); the file was edited",
            )
        return provenance

    def settings(self) -> dict[str, Any]:
        """What must agree for two runs to write into one folder (see the module docstring)."""
        window = self.sliding_window
        if window is not None:
            window = {k: v for k, v in window.items() if k not in UNCOMPARED_WINDOW_FIELDS}
        return {
            "checkpoint sha256": self.checkpoint.sha256,
            "preprocessing": self.preprocess_config_hash,
            "mode": self.mode,
            "backend": self.backend,
            "device": self.device,
            "precision": self.precision,
            "sliding window": window,
        }

    def preprocessing_label(self) -> str:
        """E.g. ``'phantom' (0123456789abcdef)``: the preset name and config hash."""
        return f"'{self.preprocess_config.preset}' ({self.preprocess_config_hash})"


def read_provenance(folder: Path | str) -> Provenance | None:
    """The provenance of a prediction folder; None when it has no ``provenance.json``.

    Raises InputFileError naming the file when it is there but cannot be used.
    """
    path = Path(folder) / PROVENANCE_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"not a readable provenance file ({exc})") from None
    return Provenance.from_dict(data, path)


def write_provenance(folder: Path | str, provenance: Provenance) -> Path:
    """Write ``folder/provenance.json`` atomically; returns its path (InputFileError if it
    cannot be written)."""
    path = Path(folder) / PROVENANCE_NAME
    try:
        write_json(path, provenance.to_dict())
    except OSError as exc:
        raise InputFileError(path, f"cannot write: {exc.strerror or exc}") from None
    return path


def differences(old: Provenance, new: Provenance) -> list[str]:
    """``"NAME X, not Y"`` for each setting (:meth:`Provenance.settings`) that differs."""
    before, now = old.settings(), new.settings()
    found = []
    for name, value in now.items():
        if before[name] == value:
            continue
        if isinstance(value, dict) and isinstance(before[name], dict):
            for key, item in value.items():
                if before[name].get(key) != item:
                    found.append(f"{key} {item}, not {before[name].get(key)}")
        else:
            found.append(f"{name} {value}, not {before[name]}")
    return found


def check_folder(folder: Path | str, provenance: Provenance) -> bool:
    """Whether ``folder`` may take outputs made as ``provenance`` says; True when its
    ``provenance.json`` must be written (none yet), False when it already says the same.

    Raises CemsynthError (one line) when the folder's outputs were made with other settings,
    or when it holds predict outputs (a synthetic manifest) without a provenance file.
    """
    folder = Path(folder)
    existing = read_provenance(folder)
    if existing is None:
        if (folder / SYNTHETIC_MANIFEST).is_file():
            raise CemsynthError(
                f"{folder}: holds predictions ({SYNTHETIC_MANIFEST}) without {PROVENANCE_NAME}, "
                "so how they were made is unknown; nothing was written: choose another --out"
            )
        return True
    changed = differences(existing, provenance)
    if changed:
        raise CemsynthError(
            f"{folder / PROVENANCE_NAME}: this folder holds predictions made with other "
            f"settings ({'; '.join(changed)}); nothing was written: choose another --out"
        )
    return False
