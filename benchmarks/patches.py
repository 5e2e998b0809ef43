"""Benchmark: random 128 x 128 paired patches per second from a memory-mapped cache.

Builds a cache of ``--pairs`` full-size (2850 x 2394 at 0.1 mm) synthetic pairs, then
times, in the same run, drawing batches of 20 patches (the paper's batch size):

- **baseline**: load each chosen entry's arrays fully from disk (``np.load`` without
  memory mapping) for every batch, as a naive map-style dataset would;
- **PatchSampler** on memory-mapped arrays (opened once);
- **PatchDataset + DataLoader** with 0 and 2 worker processes (tensors, collated).

    .venv/bin/python benchmarks/patches.py --pairs 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from cemsynth.batch import BatchReport
from cemsynth.data.patches import PatchPair, PatchSampler
from cemsynth.io.manifest import PairRecord
from cemsynth.preprocess import PreprocessConfig
from cemsynth.preprocess.cache import build_cache, open_cache
from cemsynth.preprocess.synthetic import smooth_breast_pair

BATCH = 20


def build(folder: Path, n_pairs: int) -> Path:
    pairs = []
    for i in range(n_pairs):
        le, rc, _ = smooth_breast_pair((2850, 2394), noise_std=20.0, seed=i)
        paths = []
        for name, image in (("le", le), ("rc", rc)):
            path = folder / f"{i}_{name}.png"
            PILImage.fromarray(image.array.astype(np.uint16)).save(path)
            paths.append(path)
        pairs.append(PairRecord(f"P{i}", "", "L", "CC", le_path=paths[0], rc_path=paths[1]))
    build_cache(pairs, folder / "cache", PreprocessConfig(), BatchReport(strict=True), workers=2)
    return folder / "cache"


def rate(run: object, batches: int) -> float:
    assert callable(run)
    run()  # warm up
    start = time.perf_counter()
    for _ in range(batches):
        run()
    return batches * BATCH / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--batches", type=int, default=200)
    args = parser.parse_args()
    import torch
    from torch.utils.data import DataLoader

    from cemsynth.data.torch_dataset import PatchDataset

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="cemsynth-patches-") as tmp:
        root = build(Path(tmp), args.pairs)
        cache = open_cache(root)
        keys = [entry.key for entry in cache.entries]
        shape = cache.entries[0].shape
        rng = np.random.default_rng(0)

        def naive() -> None:
            key = keys[int(rng.integers(len(keys)))]
            loaded = cache.load(key, mmap=False)
            PatchSampler([PatchPair(loaded.le, loaded.rc, loaded.mask)]).sample(BATCH, rng)

        sampler = PatchSampler([cache.load(key) for key in keys])
        results = {
            "baseline: np.load per batch": rate(naive, max(20, args.batches // 10)),
            "PatchSampler (memory-mapped)": rate(lambda: sampler.sample(BATCH, rng), args.batches),
        }
        for workers in (0, 2):
            dataset = PatchDataset(root, keys, samples_per_epoch=args.batches * BATCH)
            loader = DataLoader(dataset, batch_size=BATCH, num_workers=workers)
            start = time.perf_counter()
            n = sum(le.shape[0] for le, _ in loader)
            results[f"PatchDataset, DataLoader {workers} workers"] = n / (
                time.perf_counter() - start
            )

    print(f"{args.pairs} cached pairs of {shape[0]} x {shape[1]} (0.4 mm), batch {BATCH}")
    base = results["baseline: np.load per batch"]
    for name, value in results.items():
        print(f"{name:<40}{value:>10.0f} patches/s{value / base:>8.1f}x")


if __name__ == "__main__":
    main()
