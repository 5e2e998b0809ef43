"""Writing checkpoints: build the dict, save it atomically, capture and restore RNG states.

The format (its keys, version and file names) and the one reader live in
:mod:`cemsynth.checkpoint`, which training, inference and export share; this module is the
writing side. Files are written atomically (temporary file, then rename), so a crash while
saving leaves the previous ``last.pt`` intact; :func:`remove_stale_temporaries` clears the
temporaries a kill leaves behind.
"""

from __future__ import annotations

import contextlib
import platform
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from cemsynth.checkpoint import BEST_NAME, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, LAST_NAME
from cemsynth.models.config import ModelConfig
from cemsynth.models.cyclegan import NETWORK_NAMES, CycleGAN
from cemsynth.preprocess.config import PreprocessConfig

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
