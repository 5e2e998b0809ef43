"""The demo runs every built stage on a small phantom cohort."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from cemsynth.demo import run_demo
from cemsynth.errors import CemsynthError


@pytest.mark.slow
def test_demo_runs_the_built_stages(tmp_path: Path) -> None:
    run_demo(
        tmp_path,
        n_patients=3,
        seed=1,
        console=Console(
            file=open(  # noqa: SIM115
                tmp_path / "log.txt", "w"
            )
        ),
    )
    assert (tmp_path / "phantom" / "manifest.csv").is_file()
    assert (tmp_path / "manifest.csv").is_file()
    index = json.loads((tmp_path / "cache" / "index.json").read_text())
    assert len(index["entries"]) == 12
    splits = json.loads((tmp_path / "cache" / "splits.json").read_text())
    patients = [set(p) for p in splits["patients"].values()]
    assert sum(len(p) for p in patients) == 3 and not (patients[0] & patients[-1])
    log = (tmp_path / "log.txt").read_text()
    assert "pipeline stages" in log


def test_demo_needs_a_few_patients(tmp_path: Path) -> None:
    with pytest.raises(CemsynthError, match="at least 3"):
        run_demo(tmp_path, n_patients=1, seed=0)
