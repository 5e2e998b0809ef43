"""Self-describing checkpoints: weights, optimiser and RNG states, and the configs behind them.

A checkpoint is one ``torch.save`` file (a dict of tensors and plain Python values, so it loads
with ``torch.load(weights_only=True)``: no pickled classes, no code runs on load). It holds
the architecture and the preprocessing it was trained with, so a later ``predict`` needs no
architecture flags (:func:`load_generator`), and every random state, so ``--resume`` continues
bit for bit. Keys (format version 1; ``docs/training.md`` describes each):

``format``, ``format_version``, ``step``, ``world_size``, ``networks`` (``g_le_to_rc``,
``g_rc_to_le``, ``d_le``, ``d_rc`` state dicts), ``optimizers`` (``generators``,
``discriminators``), ``rng`` (one dict per rank: ``python``, ``numpy``, ``torch``,
``torch_cuda``, ``sampler``), ``model_config``, ``train_config``, ``preprocess_config``,
``preprocess_config_hash``, ``cache``, ``metrics``, ``replica_sha256``, ``versions``,
``created_utc``; and, only when the run keeps a weight average (``ema_decay`` > 0), ``ema``
(``g_le_to_rc``: the averaged state dict), which :func:`load_generator` prefers.

Files are written atomically (temporary file, then rename), so a crash while saving leaves the
previous ``last.pt`` intact.
"""

from __future__ import annotations

import contextlib
import platform
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from cemsynth.errors import CemsynthError, ConfigError, InputFileError
from cemsynth.models.config import ModelConfig
from cemsynth.models.cyclegan import NETWORK_NAMES, CycleGAN
from cemsynth.models.generator import build_generator
from cemsynth.preprocess.config import PreprocessConfig

CHECKPOINT_FORMAT = "cemsynth-checkpoint"
CHECKPOINT_VERSION = 1
"""Bump when keys change meaning; keep a loader (and a test) for every older version."""
LAST_NAME = "last.pt"
BEST_NAME = "best.pt"


# --- random states ----------------------------------------------------------------------


def capture_rng(sampler_rng: np.random.Generator) -> dict[str, Any]:
    """Every random state a training process uses, as plain values and tensors.

    ``python``: ``random.getstate()``; ``numpy``: the legacy global generator (its key as a
    list); ``torch``: the CPU generator; ``torch_cuda``: one state per visible CUDA device
    (empty on CPU); ``sampler``: the patch sampler's ``bit_generator.state``.
    """
    # the legacy global generator: third-party code may draw from it
    numpy_state = np.random.get_state(legacy=False)  # noqa: NPY002
    assert isinstance(numpy_state, dict)
    numpy_plain = {
        "bit_generator": numpy_state["bit_generator"],
        "key": [int(v) for v in numpy_state["state"]["key"]],
        "pos": int(numpy_state["state"]["pos"]),
        "has_gauss": int(numpy_state["has_gauss"]),
        "gauss": float(numpy_state["gauss"]),
    }
    cuda = list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else []
    return {
        "python": random.getstate(),
        "numpy": numpy_plain,
        "torch": torch.get_rng_state(),
        "torch_cuda": cuda,
        "sampler": dict(sampler_rng.bit_generator.state),
    }


def restore_rng(state: Mapping[str, Any], sampler_rng: np.random.Generator) -> None:
    """Inverse of :func:`capture_rng` (CUDA states only where the same devices exist)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_plain = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": numpy_plain["bit_generator"],
            "state": {
                "key": np.asarray(numpy_plain["key"], dtype=np.uint32),
                "pos": numpy_plain["pos"],
            },
            "has_gauss": numpy_plain["has_gauss"],
            "gauss": numpy_plain["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("torch_cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    sampler_rng.bit_generator.state = dict(state["sampler"])


# --- writing -----------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    """Versions that matter for reproducing a run."""
    from cemsynth import __version__

    # plain str: torch.__version__ is a str subclass that weights-only loading refuses
    return {
        "cemsynth": str(__version__),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "python": platform.python_version(),
        "cuda": str(torch.version.cuda),
    }


def build_checkpoint(
    *,
    step: int,
    world_size: int,
    nets: CycleGAN,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    rng_states: list[dict[str, Any]],
    model_config: ModelConfig,
    train_config: dict[str, Any],
    preprocess_config: PreprocessConfig,
    cache: dict[str, Any],
    metrics: dict[str, Any],
    replica_sha256: list[str],
    ema_generator: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """The checkpoint dict (format version :data:`CHECKPOINT_VERSION`)."""
    data = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "step": int(step),
        "world_size": int(world_size),
        "networks": {name: getattr(nets, name).state_dict() for name in NETWORK_NAMES},
        "optimizers": {"generators": opt_g.state_dict(), "discriminators": opt_d.state_dict()},
        "rng": rng_states,
        "model_config": model_config.to_dict(),
        "train_config": train_config,
        "preprocess_config": preprocess_config.to_dict(),
        "preprocess_config_hash": preprocess_config.config_hash(),
        "cache": cache,
        "metrics": metrics,
        "replica_sha256": list(replica_sha256),
        "versions": package_versions(),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if ema_generator is not None:
        data["ema"] = {"g_le_to_rc": ema_generator.state_dict()}
    return data


def save_checkpoint(checkpoint: dict[str, Any], path: Path) -> None:
    """Write ``checkpoint`` atomically to ``path``."""
    from cemsynth.io.atomic import write_atomic

    def writer(handle: IO[bytes]) -> None:
        torch.save(checkpoint, handle)

    write_atomic(path, writer)


def remove_stale_temporaries(run_dir: Path) -> int:
    """Delete the temporary files of checkpoint writes that a kill interrupted (the atomic
    writer's ``.last.pt.*.tmp``, ``.best.pt.*.tmp``); returns how many. Only this run's
    checkpoint names are touched, and only while no write of this process is in flight."""
    count = 0
    for name in (LAST_NAME, BEST_NAME):
        for stale in Path(run_dir).glob(f".{name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()
                count += 1
    return count


def weights_fingerprint(nets: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer (names and bytes, in name order)."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(nets.state_dict().items()):
        digest.update(name.encode("utf-8"))
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


# --- reading -----------------------------------------------------------------------------


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
            "not a cemsynth checkpoint (no 'format: cemsynth-checkpoint' key); "
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
    return _upgrade(data, version)


def _upgrade(data: dict[str, Any], version: int) -> dict[str, Any]:
    """Bring an older checkpoint dict to the current format (version 1 is current)."""
    return data


@dataclass(frozen=True)
class CheckpointInfo:
    """What a checkpoint says about itself (without building networks)."""

    path: Path
    step: int
    model_config: ModelConfig
    preprocess_config: PreprocessConfig
    preprocess_config_hash: str
    train_config: dict[str, Any]
    versions: dict[str, str]


def checkpoint_info(data: dict[str, Any], path: Path) -> CheckpointInfo:
    """The configs of a checkpoint dict from :func:`read_checkpoint`."""
    try:
        model = ModelConfig.from_dict(data["model_config"], source=f"{path}: model_config")
        preprocess = PreprocessConfig.from_dict(data["preprocess_config"])
        return CheckpointInfo(
            path=path,
            step=int(data["step"]),
            model_config=model,
            preprocess_config=preprocess,
            preprocess_config_hash=str(
                data.get("preprocess_config_hash", preprocess.config_hash())
            ),
            train_config=dict(data.get("train_config") or {}),
            versions=dict(data.get("versions") or {}),
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


def load_generator(
    path_or_run_dir: Path | str,
    device: str | torch.device = "cpu",
    direction: str = "g_le_to_rc",
) -> tuple[nn.Module, ModelConfig, PreprocessConfig]:
    """The trained LE -> RC generator, ready for inference, with the configs it needs.

    Args:
        path_or_run_dir: a checkpoint file or a ``cemsynth train --out`` folder (its
            ``best.pt``, else ``last.pt``).
        device: where to put the network.
        direction: ``"g_le_to_rc"`` (default) or ``"g_rc_to_le"``. For ``g_le_to_rc`` the
            weight average (``ema``) is used when the checkpoint has one: it is what
            validation scored and ``best.pt`` was chosen by.

    Returns:
        The generator in eval mode (float32; input/output ``(N, 1, H, W)`` in [-1, 1]), its
        architecture, and the preprocessing config the training cache was made with (apply
        the same to new LE images, and its inverse to the outputs).
    """
    if direction not in ("g_le_to_rc", "g_rc_to_le"):
        raise ValueError(f"direction must be g_le_to_rc or g_rc_to_le, got {direction!r}")
    path = resolve_checkpoint(path_or_run_dir)
    data = read_checkpoint(path)
    info = checkpoint_info(data, path)
    state = generator_state(data, direction, path)
    generator = build_generator(info.model_config)
    load_state(generator, state, direction, path)
    generator.to(device).eval()
    return generator, info.model_config, info.preprocess_config
