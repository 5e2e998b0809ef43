"""Where a network runs: the device names every command accepts and what ``auto`` means.

Training and inference both take ``--device auto | cpu | cuda`` and resolve it here, so the
two agree on what "auto" picks and on the message when CUDA is asked for but absent. torch is
imported inside :func:`resolve_device` only: the names are read for ``--help``, which must
not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cemsynth.errors import ConfigError

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")
"""``auto``: CUDA when torch sees a GPU, else the CPU."""


def resolve_device(requested: str) -> torch.device:
    """The device for ``requested`` (one of :data:`DEVICES`): ``cpu`` or ``cuda`` (no index;
    a multi-process run picks its GPU itself, see
    :func:`cemsynth.training.distributed.rank_device`).

    Raises ConfigError (one line) for an unknown name, or for ``cuda`` where torch sees no GPU.
    """
    import torch

    if requested not in DEVICES:
        raise ConfigError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if requested == "cuda" and not available:
        raise ConfigError(
            f"--device cuda: no CUDA device is visible to torch (torch {torch.__version__}); "
            "use --device cpu or auto"
        )
    if requested == "cuda" or (requested == "auto" and available):
        return torch.device("cuda")
    return torch.device("cpu")
