"""The training data of one run: the cache, its split, the patch sampler and validation patches.

Training patches come straight from :class:`cemsynth.data.patches.PatchSampler` in the training
process, drawn with a ``numpy.random.Generator`` that the trainer owns (one stream per DDP
rank), so the generator's state can be saved in a checkpoint and a resumed run draws exactly
the patches the uninterrupted run would have drawn. Validation uses a fixed set of patches from
the images of the split's validation patients, drawn once, without flips, with a seed of its
own, together with the breast mask of each patch (metrics are scored inside the breast).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cemsynth.data.patches import PatchPair, PatchSampler, PatchSource
from cemsynth.errors import CemsynthError, InputFileError
from cemsynth.preprocess.cache import INDEX_NAME, Cache, open_cache

TRAIN_STREAM = 0
VAL_STREAM = 1
GLOBAL_STREAM = 2
"""Spawn keys that keep the training, validation and global random streams apart."""


def train_rng(seed: int, rank: int) -> np.random.Generator:
    """The patch stream of one DDP rank (independent of every other rank's)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(TRAIN_STREAM, rank)))


def seed_global_generators(seed: int, rank: int) -> None:
    """Seed Python's ``random`` and NumPy's legacy global generator for one DDP rank.

    cemsynth never draws from them, but third-party code may; unseeded they start from OS
    entropy, and two runs of one seed (or a run and its resume) would record different states.
    """
    sequence = np.random.SeedSequence(seed, spawn_key=(GLOBAL_STREAM, rank))
    value = int(sequence.generate_state(1)[0])
    random.seed(value)
    np.random.seed(value)  # noqa: NPY002


@dataclass(frozen=True)
class ValPatches:
    """Fixed validation patches: float32 ``(n, 1, p, p)`` LE/RC in [-1, 1], bool breast mask."""

    le: torch.Tensor
    rc: torch.Tensor
    mask: torch.Tensor


@dataclass
class TrainingData:
    """What the trainer reads: the opened cache, the split's keys, sampler and val patches."""

    cache: Cache
    train_keys: list[str]
    val_keys: list[str]
    train_patients: int
    val_patients: int
    sampler: PatchSampler
    val: ValPatches | None


def open_cache_for_training(cache_root: Path) -> Cache:
    """Open the cache with errors that say how to make one."""
    cache_root = Path(cache_root)
    if not cache_root.exists():
        raise InputFileError(
            cache_root,
            f"no such cache folder; make one with: cemsynth preprocess MANIFEST --out {cache_root}",
        )
    if not (cache_root / INDEX_NAME).is_file():
        raise InputFileError(
            cache_root,
            f"not a cemsynth cache (no {INDEX_NAME}); make one with: "
            f"cemsynth preprocess MANIFEST --out {cache_root}",
        )
    cache = open_cache(cache_root)
    if not cache.entries:
        raise InputFileError(
            cache_root,
            "the cache holds no preprocessed pairs (all failed or the manifest was empty); "
            "check its index.json failures and rerun cemsynth preprocess",
        )
    return cache


def load_training_data(
    cache_root: Path,
    patch_size: int,
    padding: str,
    flip_lr: bool,
    flip_ud: bool,
    val_patches: int,
    seed: int,
    sampling: str,
    sampling_boost: float,
) -> TrainingData:
    """Open the cache and its ``splits.json``, build the sampler, draw the validation patches.

    ``sampling``/``sampling_boost`` choose the training patch centres (see
    :class:`~cemsynth.data.patches.PatchSampler`); validation patches are always uniform, so
    validation losses of runs with different sampling compare.

    Raises InputFileError / CemsynthError (one line each) for a missing or empty cache, a
    missing split, a split naming entries the cache lacks, or no training images.
    """
    from cemsynth.data.splits import SPLITS_NAME, read_splits

    cache = open_cache_for_training(cache_root)
    splits_path = Path(cache_root) / SPLITS_NAME
    if not splits_path.is_file():
        raise InputFileError(
            splits_path, f"no patient split; make one with: cemsynth split {cache_root}"
        )
    splits = read_splits(splits_path)
    known = {entry.key for entry in cache.entries}
    for name in ("train", "val"):
        missing = [key for key in splits.entries[name] if key not in known]
        if missing:
            raise InputFileError(
                splits_path,
                f"the {name} split names {len(missing)} entries the cache lacks (e.g. "
                f"{missing[0]!r}); remake it with: cemsynth split {cache_root}",
            )
    train_keys = list(splits.entries["train"])
    if not train_keys:
        raise CemsynthError(
            f"{splits_path}: the train split is empty; give training more patients with "
            f"cemsynth split {cache_root} --val 0.1 --test 0.2 (or smaller shares)"
        )
    sources: list[PatchSource] = [cache.load(key, mmap=True) for key in train_keys]
    sampler = PatchSampler(
        sources,
        patch_size=patch_size,
        padding=padding,
        flip_lr=flip_lr,
        flip_ud=flip_ud,
        sampling=sampling,
        boost=sampling_boost,
    )
    val_keys = list(splits.entries["val"])
    val = (
        draw_val_patches(cache, val_keys, patch_size, padding, val_patches, seed)
        if val_keys and val_patches > 0
        else None
    )
    return TrainingData(
        cache=cache,
        train_keys=train_keys,
        val_keys=val_keys,
        train_patients=len(splits.patients["train"]),
        val_patients=len(splits.patients["val"]),
        sampler=sampler,
        val=val,
    )


def draw_val_patches(
    cache: Cache, keys: list[str], patch_size: int, padding: str, count: int, seed: int
) -> ValPatches:
    """``count`` patches (and their breast masks) from the images ``keys``, without flips.

    The mask patches come from a second sampler over the masks driven by an identical random
    stream: the centres depend only on the masks and the stream, so both samplers cut the
    same windows (checked).
    """
    pairs = [cache.load(key, mmap=True) for key in keys]
    images = PatchSampler(
        pairs, patch_size=patch_size, padding=padding, flip_lr=False, flip_ud=False
    )
    masks = PatchSampler(
        [_mask_source(np.asarray(p.mask)) for p in pairs],
        patch_size=patch_size,
        padding=padding,
        flip_lr=False,
        flip_ud=False,
    )
    stream = np.random.SeedSequence(seed, spawn_key=(VAL_STREAM,))
    batch = images.sample(count, np.random.default_rng(stream))
    mask_batch = masks.sample(count, np.random.default_rng(stream))
    if not np.array_equal(batch.centres, mask_batch.centres):  # pragma: no cover - invariant
        raise AssertionError("validation mask patches do not line up with the image patches")
    return ValPatches(
        le=torch.from_numpy(batch.le),
        rc=torch.from_numpy(batch.rc),
        mask=torch.from_numpy(mask_batch.le > 0.5),
    )


def _mask_source(mask: np.ndarray) -> PatchPair:
    """A sampler source whose "images" are the mask itself (1 inside, 0 outside)."""
    as_float = mask.astype(np.float32)
    return PatchPair(le=as_float, rc=as_float, mask=mask)
