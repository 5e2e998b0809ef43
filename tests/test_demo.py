"""The demo's parts that need no training: settings, the output folder, the learning criteria,
interrupts. The whole demo runs in tests/test_golden_run.py."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cemsynth.cli import main
from cemsynth.demo import (
    LESION_CNR_MIN,
    MAE_MARGIN,
    MARKER_NAME,
    SSIM_MARGIN,
    STAMP_NAME,
    DemoInterrupted,
    DemoSettings,
    LearningCheck,
    check_learning,
    is_halo_free,
    prepare_out,
    run_demo,
)
from cemsynth.errors import CemsynthError
from cemsynth.evaluation.case import CaseResult
from cemsynth.evaluation.run import EvaluationResult
from cemsynth.io.manifest import PairRecord


@pytest.fixture(autouse=True)
def restore_omp_wait_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """``cemsynth demo`` sets OMP_WAIT_POLICY; keep it out of later tests' subprocesses."""
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
        raise SystemExit(0)
    captured = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


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


def test_non_empty_out_is_refused_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, _, err = run_cli(["demo", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "not empty; add --force" in err
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_force_never_deletes_a_folder_the_demo_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    code, _, err = run_cli(["demo", "--out", str(tmp_path), "--force"], capsys)
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
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
    code, _, err = run_cli(["demo", "--out", str(out), "--force"], capsys)
    assert code == 130
    assert f"{MARKER_NAME} marks it" in err and "rerun with --force" in err


# --- the learning criteria -----------------------------------------------------------------

BASELINES = {
    "baseline_le": (0.40, 0.05),
    "baseline_flat_train": (0.25, 0.10),
    "baseline_flat_own": (0.15, 0.20),  # the oracle: reported, not a criterion
}


def _case(
    synthetic: tuple[float, float],
    halo: bool | None = False,
    halo_case: bool | None = None,
    enhancing: bool | None = None,
    lesion_cnr: tuple[float, float] = (math.nan, math.nan),
) -> CaseResult:
    """One evaluated image: (MAE, SSIM) of the synthetic image, the baselines above."""
    record = PairRecord(
        "P1",
        "",
        "L",
        "CC",
        le_path=Path("le.dcm"),
        rc_path=Path("rc.dcm"),
        halo=halo,
        lesion_present=enhancing is not None,
        lesion_enhancing=enhancing,
    )
    values = {"synthetic_lesion_cnr": lesion_cnr[0], "clinical_lesion_cnr": lesion_cnr[1]}
    for source, (mae, ssim) in {"synthetic": synthetic, **BASELINES}.items():
        values[f"{source}_mae_breast"] = mae
        values[f"{source}_ssim_breast"] = ssim
    return CaseResult(record, Path("p.dcm"), values, [], halo_case=halo_case)


def _check(cases: list[CaseResult]) -> LearningCheck:
    return check_learning(EvaluationResult(cases=cases, skipped=[], summary={}, out=Path()))


def test_criteria_by_hand() -> None:
    check = _check(
        [
            _case((0.20, 0.12), enhancing=True, lesion_cnr=(0.5, 1.0)),
            _case((0.10, 0.14), enhancing=True, lesion_cnr=(0.3, 1.2)),
            _case((0.30, 0.02), enhancing=False, lesion_cnr=(-2.0, 0.0)),
            # a halo image: left out of the pixel criteria, counted for lesions and "all"
            _case((0.90, 0.00), halo=True, enhancing=True, lesion_cnr=(-0.2, 1.1)),
        ]
    )
    mae, ssim, lesion = check.criteria
    assert check.n_images == {"all": 4, "halo_free": 3}
    assert check.scores["halo_free"]["synthetic"]["mae_breast"] == pytest.approx(0.2)
    assert check.scores["all"]["synthetic"]["mae_breast"] == pytest.approx(0.375)
    assert mae.value == pytest.approx(0.2) and mae.threshold == pytest.approx(
        (1 - MAE_MARGIN) * 0.25
    )
    assert ssim.value == pytest.approx(0.0933333) and ssim.threshold == pytest.approx(
        0.10 + SSIM_MARGIN
    )
    # the three images of enhancing lesions, halo or not: mean 0.2, clinical 1.1
    assert lesion.value == pytest.approx(0.2) and lesion.threshold == LESION_CNR_MIN
    assert check.lesion == pytest.approx(
        {"n": 3.0, "synthetic": 0.2, "clinical": 1.1, "share_brighter": 2 / 3}
    )
    assert mae.passed and not ssim.passed and lesion.passed
    assert check.failed() == ["ssim"] and not check.passed


@pytest.mark.parametrize(
    ("synthetic", "lesion_cnr", "failed"),
    [
        ((0.15, 0.15), 0.5, []),
        ((0.22, 0.15), 0.5, ["mae"]),  # better than flat (0.25), but not by the margin
        ((0.15, 0.105), 0.5, ["ssim"]),  # better than flat (0.10), but not by the margin
        ((0.15, 0.15), -0.3, ["lesion"]),  # lesions darker than their surroundings
        ((0.50, 0.01), 0.05, ["mae", "ssim", "lesion"]),
        ((math.nan, math.nan), 0.5, ["mae", "ssim"]),
    ],
)
def test_each_criterion_can_fail(
    synthetic: tuple[float, float], lesion_cnr: float, failed: list[str]
) -> None:
    check = _check([_case(synthetic, enhancing=True, lesion_cnr=(lesion_cnr, 1.0))])
    assert check.failed() == failed and check.passed is (not failed)


def test_halo_free_comes_from_the_truth_else_the_clinical_halo_index() -> None:
    assert is_halo_free(_case((0, 0), halo=False, halo_case=True))
    assert not is_halo_free(_case((0, 0), halo=True, halo_case=False))
    assert is_halo_free(_case((0, 0), halo=None, halo_case=False))
    assert not is_halo_free(_case((0, 0), halo=None, halo_case=None))


def test_nothing_to_score_is_not_assessable_and_does_not_pass() -> None:
    check = _check([_case((0.1, 0.3), halo=True, enhancing=False, lesion_cnr=(2.0, 0.0))])
    assert [c.passed for c in check.criteria] == [None, None, None] and not check.passed
    assert "not assessable" in check.criteria[2].text
