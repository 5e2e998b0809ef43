"""A torch ``IterableDataset`` of random paired patches from the cache.

Each (DDP rank, DataLoader worker) pair draws from its own random stream, seeded from
``(seed, epoch, rank, worker_id)`` with ``numpy.random.SeedSequence``; the epoch's
``samples_per_epoch`` patches are shared out among all ``world_size x num_workers`` streams.
The same settings give the same patches on every run; :meth:`PatchDataset.set_epoch` moves
to fresh patches, like ``DistributedSampler.set_epoch``. The cache arrays are opened as
memory maps lazily inside each worker process, so nothing large is pickled to the workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from cemsynth.data.patches import PATCH_SIZE, PatchSampler, PatchSource


class PatchDataset(IterableDataset[tuple[torch.Tensor, torch.Tensor]]):
    """Yields ``(le, rc)`` float32 tensors of shape ``(1, size, size)`` in [-1, 1].

    Args:
        cache_root: a cache made by ``cemsynth preprocess``.
        keys: the cache entries to draw from (e.g. ``read_splits(...).entries["train"]``).
        samples_per_epoch: patches per epoch over all ranks and workers together.
        seed: base seed.
        patch_size, padding, flip_lr, flip_ud: see :class:`PatchSampler`.
        rank, world_size: this process's DDP rank and the number of ranks.
        chunk_size: patches drawn per sampler call (amortises the Python overhead).
    """

    def __init__(
        self,
        cache_root: Path,
        keys: Sequence[str],
        samples_per_epoch: int,
        seed: int = 0,
        patch_size: int = PATCH_SIZE,
        padding: str = "reflect",
        flip_lr: bool = True,
        flip_ud: bool = True,
        rank: int = 0,
        world_size: int = 1,
        chunk_size: int = 64,
    ) -> None:
        super().__init__()
        if not keys:
            raise ValueError("PatchDataset needs at least one cache entry")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got {rank} of {world_size}")
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        self.cache_root = Path(cache_root)
        self.keys = list(keys)
        self.samples_per_epoch = samples_per_epoch
        self.seed = seed
        self.patch_size = patch_size
        self.padding = padding
        self.flip_lr = flip_lr
        self.flip_ud = flip_ud
        self.rank = rank
        self.world_size = world_size
        self.chunk_size = chunk_size
        self.epoch = 0
        self._sampler: PatchSampler | None = None

    def set_epoch(self, epoch: int) -> None:
        """Draw different patches in the next iteration (call once per epoch, every rank)."""
        self.epoch = epoch

    def shard_size(self, worker_id: int = 0, num_workers: int = 1) -> int:
        """Number of patches the stream of (this rank, ``worker_id``) yields per epoch."""
        streams = self.world_size * num_workers
        stream = self.rank * num_workers + worker_id
        base, extra = divmod(self.samples_per_epoch, streams)
        return base + (1 if stream < extra else 0)

    def _get_sampler(self) -> PatchSampler:
        if self._sampler is None:
            from cemsynth.preprocess.cache import open_cache

            cache = open_cache(self.cache_root)
            sources: list[PatchSource] = [cache.load(key, mmap=True) for key in self.keys]
            self._sampler = PatchSampler(
                sources,
                patch_size=self.patch_size,
                padding=self.padding,
                flip_lr=self.flip_lr,
                flip_ud=self.flip_ud,
            )
        return self._sampler

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_sampler"] = None  # workers open their own memory maps
        return state

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker_id, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        remaining = self.shard_size(worker_id, num_workers)
        rng = np.random.default_rng(
            np.random.SeedSequence([self.seed, self.epoch, self.rank, worker_id])
        )
        sampler = self._get_sampler()
        while remaining > 0:
            batch = sampler.sample(min(self.chunk_size, remaining), rng)
            remaining -= batch.le.shape[0]
            le = torch.from_numpy(batch.le)
            rc = torch.from_numpy(batch.rc)
            for i in range(le.shape[0]):
                yield le[i], rc[i]
