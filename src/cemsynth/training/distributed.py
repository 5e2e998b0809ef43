"""Single process or DDP: detect torchrun's environment, pick devices, set up the group.

``torchrun --nproc_per_node=K -m cemsynth train ...`` starts K processes with ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Each process then
joins one process group: NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU.
Without those variables training runs in one process and no group is created.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cemsynth.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the run: ``rank`` of ``world_size``, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 writes logs and checkpoints; the others only train."""
        return self.rank == 0


def detect_distributed() -> DistInfo:
    """Read ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (torchrun's variables); default: one process."""
    try:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ConfigError(
            "RANK, WORLD_SIZE and LOCAL_RANK must be integers (are they set by torchrun?)"
        ) from None
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"RANK {rank} is not in [0, WORLD_SIZE={world_size})")
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """This process's device: ``device`` (from :func:`cemsynth.devices.resolve_device`) as is
    on the CPU; on CUDA ``cuda:LOCAL_RANK`` under DDP, else ``cuda:0``, made torch's current
    device. Raises ConfigError when LOCAL_RANK has no GPU."""
    if device.type != "cuda":
        return device
    index = info.local_rank if info.enabled else 0
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK {index} has no GPU ({torch.cuda.device_count()} visible); "
            "start at most one process per GPU"
        )
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def init_process_group(info: DistInfo, device: torch.device) -> None:
    """Join the process group (no-op for one process or when already joined)."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(
            backend=backend,
            rank=info.rank,
            world_size=info.world_size,
            device_id=device if device.type == "cuda" else None,
        )
    except ValueError as exc:  # e.g. MASTER_ADDR missing when not started by torchrun
        raise ConfigError(
            f"cannot join the process group ({exc}); start multi-process training with "
            "torchrun --nproc_per_node=K -m cemsynth train ..."
        ) from None


def destroy_process_group(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()
