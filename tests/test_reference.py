"""Resuming the reference run keeps the points it recorded and refuses what does not fit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cemsynth.errors import CemsynthError
from cemsynth.reference import ReferenceSettings, recorded_points


def record(out: Path, minutes: list[float], steps: list[int], patients: int = 60) -> None:
    points = [
        {"minutes": m, "steps": s, "train_seconds": m * 60.0}
        for m, s in zip(minutes, steps, strict=True)
    ]
    document = {"settings": {"patients": patients, "seed": 1}, "curve": points}
    (out / "reference.json").write_text(json.dumps(document))


def test_the_recorded_points_are_kept(tmp_path: Path) -> None:
    record(tmp_path, [10, 20, 30], [700, 1700, 2788])
    settings = ReferenceSettings(curve_minutes=(10, 20, 30, 40, 60))
    points = recorded_points(tmp_path, settings, steps_in_last=2788)
    assert [p["steps"] for p in points] == [700, 1700, 2788]


@pytest.mark.parametrize(
    ("minutes", "patients", "steps_in_last", "message"),
    [
        ((10, 20, 30, 40), 61, 2788, "made with patients 60, requested 61"),
        ((10, 30, 40), 60, 2788, "must add later points"),
        ((10, 20, 30), 60, 2788, "must add later points"),
        ((10, 20, 30, 40), 60, 3000, "run/last.pt holds step 3000"),
    ],
)
def test_a_run_that_does_not_fit_is_refused(
    tmp_path: Path,
    minutes: tuple[float, ...],
    patients: int,
    steps_in_last: int,
    message: str,
) -> None:
    record(tmp_path, [10, 20, 30], [700, 1700, 2788])
    settings = ReferenceSettings(patients=patients, curve_minutes=minutes)
    with pytest.raises(CemsynthError, match=message):
        recorded_points(tmp_path, settings, steps_in_last=steps_in_last)


def test_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(CemsynthError, match="nothing to resume"):
        recorded_points(tmp_path, ReferenceSettings(), steps_in_last=None)
