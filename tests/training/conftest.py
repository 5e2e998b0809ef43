"""Tiny caches for the training tests (built once per session) and a tiny training config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from cemsynth.batch import BatchReport
from cemsynth.data.splits import SplitConfig, split_cache
from cemsynth.io.manifest import PairRecord
from cemsynth.models.config import ModelConfig
from cemsynth.preprocess import PreprocessConfig
from cemsynth.preprocess.cache import build_cache
from cemsynth.preprocess.synthetic import smooth_breast_pair
from cemsynth.training.config import TrainConfig

TINY_MODEL = ModelConfig(gen_width=4, gen_residual_blocks=1, disc_width=4)


@pytest.fixture(autouse=True)
def _every_test_one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (tests/conftest.py)."""


def tiny_config(**changes: object) -> TrainConfig:
    """A few-second run: 4-channel networks, 32 x 32 patches, batch 2."""
    settings: dict[str, object] = {
        "preset": "small",
        "model": TINY_MODEL,
        "batch_size": 2,
        "patch_size": 32,
        "max_steps": 4,
        "val_every": 2,
        "val_patches": 4,
        "log_every": 1,
        "checkpoint_every": 2,
        "device": "cpu",
    }
    settings.update(changes)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def make_cache(folder: Path, config: PreprocessConfig, n_patients: int = 4) -> Path:
    """``n_patients`` smooth LE/RC pairs (PNG) preprocessed into ``folder/cache`` with a split."""
    folder.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(n_patients):
        le, rc, _ = smooth_breast_pair((240, 200), noise_std=3.0, seed=i)
        paths = []
        for name, image in (("le", le), ("rc", rc)):
            path = folder / f"{i}_{name}.png"
            PILImage.fromarray(image.array.astype(np.uint16)).save(path)
            paths.append(path)
        pairs.append(PairRecord(f"P{i}", "", "L", "CC", le_path=paths[0], rc_path=paths[1]))
    root = folder / "cache"
    build_cache(pairs, root, config, BatchReport(), workers=1)
    split_cache(root, SplitConfig(val_fraction=0.25, test_fraction=0.0))
    return root


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache of 4 patients (3 train, 1 val) on the paper's preprocessing (60 x 50 pixels)."""
    return make_cache(tmp_path_factory.mktemp("train-cache"), PreprocessConfig())


@pytest.fixture(scope="session")
def other_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same images preprocessed with another LE window (another config hash)."""
    config = PreprocessConfig(le_window=(1700.0, 3000.0))
    return make_cache(tmp_path_factory.mktemp("train-cache-other"), config)
