"""``cemsynth reader-study ...``: success paths and one-line errors (exit 2, no traceback)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cemsynth.reader_study.build import BuildResult

from .conftest import Cohort

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


def assert_one_line_error(result: tuple[int, str, str], message: str) -> None:
    code, _, err = result
    assert code == 2, err
    assert err.startswith("cemsynth: error: ") and err.count("\n") == 1, err
    assert message in err and "Traceback" not in err


def test_build_export_stats(cohort: Cohort, tmp_path: Path, run_cli: RunCli) -> None:
    study = tmp_path / "study"
    code, out, _ = run_cli(
        [
            "reader-study",
            "build",
            "--manifest",
            str(cohort.manifest),
            "--synthetic",
            str(cohort.synthetic),
            "--readers",
            "R1,R2",
            "--out",
            str(study),
            "--seed",
            "4",
            "--washout-days",
            "21",
            "--start",
            "2030-01-01T00:00:00Z",
        ]
    )
    assert code == 0 and "credentials (admin only)" in out
    plan = json.loads((study / "study.json").read_text())
    assert plan["sessions"]["R1"][1]["opens_at"] == "2030-01-22T00:00:00Z"
    assert json.loads((study / "key" / "build.json").read_text())["seed"] == 4
    assert_one_line_error(
        run_cli(["reader-study", "export", str(study), "--out", str(tmp_path / "s.csv")]),
        "no answers yet",
    )


def test_build_errors(cohort: Cohort, tmp_path: Path, run_cli: RunCli) -> None:
    base = [
        "reader-study",
        "build",
        "--manifest",
        str(cohort.manifest),
        "--synthetic",
        str(cohort.synthetic),
        "--out",
        str(tmp_path / "study"),
    ]
    assert_one_line_error(run_cli([*base, "--readers", "R1,admin"]), "reserved for the admin")
    assert_one_line_error(
        run_cli([*base, "--readers", "R1", "--start", "next tuesday"]), "not an ISO 8601"
    )
    rows = cohort.rows()
    rows[3]["bpe_grade"] = "x"
    cohort.write_rows(rows)
    assert_one_line_error(
        run_cli([*base, "--readers", "R1"]), "line 5: bpe_grade must be a, b, c or d"
    )
    assert not (tmp_path / "study").exists()


def test_serve_refuses_network_addresses(study_copy: BuildResult, run_cli: RunCli) -> None:
    assert_one_line_error(
        run_cli(["reader-study", "serve", str(study_copy.root), "--host", "0.0.0.0"]),
        "not a loopback address",
    )
    assert_one_line_error(
        run_cli(["reader-study", "serve", str(study_copy.root / "nope")]),
        "study folder not found",
    )


def test_stats_errors_write_nothing(tmp_path: Path, run_cli: RunCli) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_text("patient_id,laterality,bpe,lesion\nP1,L,a,1\n")
    scores = tmp_path / "scores.csv"
    scores.write_text(
        "reader,patient_id,laterality,image_type,bpe,lesion\n"
        "R1,P1,L,clinical,a,1\nR1,P1,L,clinical,b,1\n"
    )
    out = tmp_path / "out"
    argv = [
        "reader-study",
        "stats",
        "--scores",
        str(scores),
        "--truth",
        str(truth),
        "--out",
        str(out),
    ]
    assert_one_line_error(run_cli(argv), "duplicate answer")
    assert not out.exists()
    scores.write_text("reader,patient_id,laterality,image_type,bpe,lesion\nR1,P1,L,clinical,a,1\n")
    assert_one_line_error(run_cli([*argv, "--bpe-unit", "lobe"]), "--bpe-unit")
    assert_one_line_error(run_cli([*argv, "--readers", "R2,R3"]), "line 2: unknown reader 'R1'")
    assert not out.exists()
    code, out_text, _ = run_cli(argv)
    assert code == 0 and "report.html" in out_text
    assert sorted(p.name for p in out.iterdir()) == [
        "bpe.csv",
        "bpe_confusion.csv",
        "lesion.csv",
        "report.html",
        "summary.json",
        "tests.csv",
    ]
