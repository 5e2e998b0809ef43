"""The demo's parts that need no training: settings, the output folder, its targets,
interrupts. The whole demo runs in tests/test_golden_run.py."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from cemsynth.demo import (
    DEMO_TARGETS,
    MARKER_NAME,
    STAMP_NAME,
    DemoInterrupted,
    DemoSettings,
    prepare_out,
    run_demo,
)
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.case import CaseResult
from cemsynth.evaluation.criteria import judge
from cemsynth.evaluation.run import lesion_contrast_summary
from cemsynth.io.manifest import PairRecord

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


@pytest.fixture(autouse=True)
def restore_omp_wait_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cemsynth demo`` sets OMP_WAIT_POLICY; keep it out of later tests' subprocesses."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


# --- settings and the output folder --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"patients": 2}, "at least 3"),
        ({"minutes": 0.0}, "--minutes must be a positive number"),
        ({"minutes": math.nan}, "--minutes must be a positive number"),
        ({"stride": 0}, "stride"),
    ],
)
def test_bad_settings_are_one_line_errors(changes: dict[str, float], message: str) -> None:
    with pytest.raises(CemsynthError, match=message):
        DemoSettings(**changes)  # type: ignore[arg-type]


def test_non_empty_out_is_refused_without_force(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, _, err = run_cli(["demo", "--out", str(tmp_path)])
    assert code == 2
    assert err.count("\n") == 1 and "not empty; add --force" in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_force_never_deletes_a_folder_the_demo_did_not_make(
    tmp_path: Path, run_cli: RunCli
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, _, err = run_cli(["demo", "--out", str(tmp_path), "--force"])
    assert code == 2 and f"no {STAMP_NAME}" in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_force_empties_an_earlier_demo_folder(tmp_path: Path) -> None:
    (tmp_path / STAMP_NAME).write_text("{}")
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.json").write_text("{}")
    assert prepare_out(tmp_path, force=True) is True
    assert list(tmp_path.iterdir()) == []
    assert prepare_out(tmp_path, force=False) is False  # empty: fine


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CemsynthError, match="is a file"):
        prepare_out(target, force=True)


def test_interrupt_leaves_the_marker_and_no_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: RunCli
) -> None:
    from cemsynth.phantom import cohort

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cohort, "write_cohort", interrupted)
    out = tmp_path / "demo"
    with pytest.raises(DemoInterrupted, match="interrupted during phantom"):
        run_demo(out, DemoSettings(patients=3))
    assert (out / MARKER_NAME).is_file() and not (out / "report").exists()
    # the CLI: exit 130 and a line that says what is left
    code, _, err = run_cli(["demo", "--out", str(out), "--force"])
    assert code == 130
    assert f"{MARKER_NAME} marks it" in err and "rerun with --force" in err


# --- the learning criteria -----------------------------------------------------------------


def _case(enhancing: bool | None, lesion_cnr: tuple[float, float]) -> CaseResult:
    """One evaluated image with the given (synthetic, clinical) lesion CNR."""
    record = PairRecord(
        "P1", "", "L", "CC", le_path=Path("le.dcm"), rc_path=Path("rc.dcm"),
        lesion_present=enhancing is not None, lesion_enhancing=enhancing,
    )  # fmt: skip
    values = {"synthetic_lesion_cnr": lesion_cnr[0], "clinical_lesion_cnr": lesion_cnr[1]}
    return CaseResult(record, Path("p.dcm"), values, [])


def test_lesion_contrast_by_hand() -> None:
    """Means over images of enhancing lesions only, where both CNRs are finite."""
    summary = lesion_contrast_summary(
        [
            _case(True, (0.5, 1.0)),
            _case(True, (0.3, 1.2)),
            _case(False, (-2.0, 0.0)),  # a non-enhancing lesion: left out
            _case(True, (-0.2, 1.1)),
            _case(True, (math.nan, 1.0)),  # no synthetic CNR: left out
            _case(None, (1.0, 1.0)),  # no lesion
        ]
    )
    assert summary == pytest.approx(
        {"n_images": 3, "synthetic": 0.2, "clinical": 1.1, "share_brighter": 2 / 3}
    )


def test_demo_targets_are_the_issues_and_judged_by_the_evaluation() -> None:
    """The demo does not judge on its own: it hands its thresholds to the evaluation's
    criteria, so report, summary.json and console show one verdict."""
    assert DEMO_TARGETS.baselines == ()
    assert DEMO_TARGETS.dprime_ratio_min == 0.3
    assert DEMO_TARGETS.tissue_cnr_tolerance == 0.3
    assert DEMO_TARGETS.seam_tolerance == DEMO_TARGETS.checkerboard_tolerance == 0.05
    summary = {
        "metrics": {
            "synthetic_cnr": {"mean": 0.1},
            "clinical_cnr": {"mean": -0.1},
            "synthetic_seam_index": {"mean": 1.0},
            "clinical_seam_index": {"mean": 1.0},
            "synthetic_checkerboard_index": {"mean": 1.0},
            "clinical_checkerboard_index": {"mean": 1.0},
        },
        "detectability": {"ratio_synthetic_to_clinical": {"value": 0.31}},
    }
    verdict = judge(summary, DEMO_TARGETS)
    assert verdict.passed
    assert [c.name for c in verdict.criteria] == [
        "dprime ratio", "tissue cancels", "no window seams", "no checkerboard",
    ]  # fmt: skip
    summary["detectability"]["ratio_synthetic_to_clinical"]["value"] = 0.29
    assert judge(summary, DEMO_TARGETS).failed() == ["dprime ratio"]
