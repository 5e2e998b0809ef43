"""A small phantom cohort shared by the phantom tests (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cemsynth.phantom.cohort import CohortResult, write_cohort
from cemsynth.phantom.config import PhantomConfig

COHORT_SEED = 7
COHORT_PATIENTS = 6


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CohortResult]:
    out = tmp_path_factory.mktemp("phantom")
    result = write_cohort(
        out,
        n_patients=COHORT_PATIENTS,
        seed=COHORT_SEED,
        pixel_mm=0.1,
        size="small",
        config=PhantomConfig(),
        workers=2,
    )
    return out, result
