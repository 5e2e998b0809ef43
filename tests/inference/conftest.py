"""Shared fixtures for the inference tests: a tiny phantom exam and hand-made checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.models.config import ModelConfig
from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.preprocess.config import PreprocessConfig
from cemsynth.testing.checkpoints import TINY_MODEL, random_checkpoint
from cemsynth.vocabulary import PATCH_SIZE

CHECKPOINT_STEP = 4500


@pytest.fixture(autouse=True)
def _every_test_one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (tests/conftest.py)."""


def make_checkpoint(
    path: Path,
    model: ModelConfig = TINY_MODEL,
    preprocess: PreprocessConfig | None = None,
    step: int = CHECKPOINT_STEP,
    seed: int = 0,
    patch_size: int | None = PATCH_SIZE,
) -> Path:
    """A hand-made checkpoint with a randomly initialised LE -> RC generator, trained (it says)
    on ``patch_size`` patches (None: it does not say)."""
    return random_checkpoint(path, model, preprocess, step, seed, patch_size)


@pytest.fixture(scope="session")
def phantom_exam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One phantom patient, small size (712 x 598 at 0.4 mm): LE/RC DICOM and manifest.csv."""
    out = tmp_path_factory.mktemp("phantom")
    write_cohort(
        out, n_patients=1, seed=0, pixel_mm=0.1, size="small", config=PhantomConfig(), workers=1
    )
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder whose best.pt holds a tiny generator with the phantom preprocessing."""
    run = tmp_path_factory.mktemp("run")
    make_checkpoint(run / "best.pt")
    return run
