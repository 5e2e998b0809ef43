"""The checkpoint format and its one reader, shared by training, inference and export.

A checkpoint is one ``torch.save`` file: a dict of tensors and plain Python values, so it
loads with ``torch.load(weights_only=True)`` (no pickled classes, no code runs on load). It
holds the architecture and the preprocessing it was trained with, so ``predict`` needs no
architecture flags (:func:`load_generator`), and, in ``last.pt``, every random state, so
``--resume`` continues bit for bit. Keys (format version 1; ``docs/training.md`` describes
each):

``format``, ``format_version``, ``step``, ``world_size``, ``networks`` (``g_le_to_rc``,
``g_rc_to_le``, ``d_le``, ``d_rc`` state dicts), ``optimizers`` (``generators``,
``discriminators``), ``rng`` (one dict per rank: ``python``, ``numpy``, ``torch``,
``torch_cuda``, ``sampler``), ``model_config``, ``train_config``, ``preprocess_config``,
``preprocess_config_hash``, ``cache``, ``metrics``, ``replica_sha256``, ``versions``,
``created_utc``; and, only when the run keeps a weight average (``ema_decay`` > 0), ``ema``
(``g_le_to_rc``: the averaged state dict), which :func:`load_generator` prefers.

This module reads; :mod:`cemsynth.training.checkpoint` writes (and captures the random
states). It depends on no training or inference code, so both can import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.models.config import ModelConfig
from cemsynth.models.generator import build_generator
from cemsynth.preprocess.config import PreprocessConfig

CHECKPOINT_FORMAT = "cemsynth-checkpoint"
CHECKPOINT_VERSION = 1
"""Bump when keys change meaning; keep a loader (and a test) for every older version."""
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"
DIRECTIONS = ("g_le_to_rc", "g_rc_to_le")
"""The two generators of the cycle-GAN: LE -> RC (the one inference runs) and RC -> LE."""


def resolve_checkpoint(path_or_run_dir: Path | str) -> Path:
    """A checkpoint file, or the best (else last) checkpoint of a run folder."""
    path = Path(path_or_run_dir)
    if path.is_dir():
        for name in (BEST_NAME, LAST_NAME):
            if (path / name).is_file():
                return path / name
        raise InputFileError(
            path, f"no {BEST_NAME} or {LAST_NAME} here; is it a cemsynth train --out folder?"
        )
    if not path.exists():
        raise InputFileError(path, "checkpoint not found")
    return path


def read_checkpoint(path: Path | str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and check a checkpoint file; returns the dict in the current format.

    Raises InputFileError (one line, says what to do) for a file that is not a cemsynth
    checkpoint, is damaged, or comes from a newer cemsynth.
    """
    path = Path(path)
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise InputFileError(path, "checkpoint not found") from None
    except Exception as exc:  # torch raises many types (pickle, zip, unsafe global) here
        text = " ".join(str(exc).split())[:200]
        raise InputFileError(
            path, f"not a readable cemsynth checkpoint ({type(exc).__name__}: {text})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(
            path,
            f"not a cemsynth checkpoint (no 'format: {CHECKPOINT_FORMAT}' key); "
            "weights-only files from other code cannot be loaded",
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise InputFileError(path, f"checkpoint format version {version!r} is not valid")
    if version > CHECKPOINT_VERSION:
        raise InputFileError(
            path,
            f"checkpoint format version {version} was written by a newer cemsynth "
            f"(this one reads up to {CHECKPOINT_VERSION}); upgrade cemsynth",
        )
    return upgrade(data, version)


def upgrade(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring a checkpoint dict of format ``version`` to the current format (1 is current:
    nothing to do yet; a version 2 adds its step from 1 here)."""
    return data


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself (without building networks).

    Attributes:
        path: the checkpoint file.
        step: training step it was saved at.
        model_config: the architecture.
        preprocess_config: the preprocessing its training cache was made with.
        preprocess_config_hash: that config's hash as the checkpoint recorded it.
        train_config: the training settings (a plain dict; empty if not recorded).
        versions: package versions of the run (``cemsynth``, ``torch``, ...).
        patch_size: side of the square training patches in cached-grid pixels
            (``train_config["patch_size"]``; None if the checkpoint does not record it).
    """

    path: Path
    step: int
    model_config: ModelConfig
    preprocess_config: PreprocessConfig
    preprocess_config_hash: str
    train_config: dict[str, Any]
    versions: dict[str, str]
    patch_size: int | None


def checkpoint_info(data: dict[str, Any], path: Path) -> CheckpointInfo:
    """The configs of a checkpoint dict from :func:`read_checkpoint`.

    Raises InputFileError naming ``path`` for a missing key or a config that cannot be used.
    """
    try:
        model = ModelConfig.from_dict(data["model_config"], source=f"{path}: model_config")
        preprocess = PreprocessConfig.from_dict(data["preprocess_config"])
        train_config = dict(data.get("train_config") or {})
        patch_size = train_config.get("patch_size")
        if patch_size is not None and (
            isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1
        ):
            raise InputFileError(
                path, f"train_config patch_size {patch_size!r} is not a positive integer"
            )
        return CheckpointInfo(
            path=path,
            step=int(data["step"]),
            model_config=model,
            preprocess_config=preprocess,
            preprocess_config_hash=str(
                data.get("preprocess_config_hash", preprocess.config_hash())
            ),
            train_config=train_config,
            versions=dict(data.get("versions") or {}),
            patch_size=patch_size,
        )
    except KeyError as exc:
        raise InputFileError(path, f"checkpoint lacks the key {exc}; the file is damaged") from None
    except ConfigError as exc:
        raise InputFileError(path, f"checkpoint config cannot be used: {exc}") from None


def load_state(module: torch.nn.Module, state: Mapping[str, Any], name: str, path: Path) -> None:
    """``module.load_state_dict(state)`` with a one-line error for an architecture mismatch."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CemsynthError(
            f"{path}: the {name} weights do not fit the architecture this checkpoint "
            f"describes ({first.strip()}); the file is damaged or was edited"
        ) from None


def generator_state(data: dict[str, Any], direction: str, path: Path) -> Mapping[str, Any]:
    """The state dict of generator ``direction`` in a read checkpoint: its weight average
    (``ema``) when there is one, else the trained weights. InputFileError if it has neither."""
    try:
        averaged = data.get("ema") or {}
        state: Mapping[str, Any] = (
            averaged[direction] if direction in averaged else data["networks"][direction]
        )
    except (KeyError, TypeError, AttributeError):
        raise InputFileError(path, f"checkpoint has no {direction} weights") from None
    return state


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class LoadedGenerator:
    """A generator read from a checkpoint, with what the checkpoint says about it.

    Attributes:
        generator: the network in eval mode, float32; input and output ``(N, 1, H, W)`` in
            [-1, 1] (LE window in, RC window out for ``g_le_to_rc``).
        info: the checkpoint's configs, step, versions and training patch size.
        sha256: hex SHA-256 of the checkpoint file's bytes (names the exact weights).
    """

    generator: nn.Module
    info: CheckpointInfo
    sha256: str

    @property
    def path(self) -> Path:
        return self.info.path

    @property
    def model_config(self) -> ModelConfig:
        return self.info.model_config

    @property
    def preprocess_config(self) -> PreprocessConfig:
        """Apply this to new LE images, and its inverse to the outputs."""
        return self.info.preprocess_config

    @property
    def patch_size(self) -> int | None:
        return self.info.patch_size


def load_generator(
    path_or_run_dir: Path | str,
    device: str | torch.device = "cpu",
    direction: str = "g_le_to_rc",
) -> LoadedGenerator:
    """A trained generator with the configs it needs: the one way any code loads one.

    Args:
        path_or_run_dir: a checkpoint file or a ``cemsynth train --out`` folder (its
            ``best.pt``, else ``last.pt``).
        device: where to put the network.
        direction: one of :data:`DIRECTIONS`. The weight average (``ema``) is used when the
            checkpoint has one for ``direction``: it is what validation scored and
            ``best.pt`` was chosen by.

    Raises:
        InputFileError: not a usable cemsynth checkpoint (one line, names the file).
        CemsynthError: the weights do not fit the architecture the file describes.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    path = resolve_checkpoint(path_or_run_dir)
    data = read_checkpoint(path)
    info = checkpoint_info(data, path)
    generator = build_generator(info.model_config)
    load_state(generator, generator_state(data, direction, path), direction, path)
    generator.to(device).eval()
    return LoadedGenerator(generator=generator, info=info, sha256=file_sha256(path))
