"""The batch-failure collector shared by the batch commands."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from cemsynth.batch import EXIT_OK, EXIT_SOME_FAILED, BatchReport
from cemsynth.errors import InputFileError


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=40, color_system=None), buffer


def test_failures_are_recorded_echoed_and_summarised() -> None:
    echo, echoed = _console()
    report = BatchReport(echo=echo)
    report.add_success(3)
    long_path = Path("/data/" + "x" * 60 + "[bold].dcm")  # longer than the console; markup-like
    report.add_failure(long_path, "corrupt\nfile")
    report.add_error(InputFileError("b.png", "blank image"))
    assert [(f.path.name, f.problem) for f in report.failures] == [
        (long_path.name, "corrupt file"),
        ("b.png", "blank image"),
    ]
    assert echoed.getvalue().splitlines() == [f"{long_path}: corrupt file", "b.png: blank image"]
    assert report.exit_code == EXIT_SOME_FAILED
    summary, text = _console()
    report.print_summary(summary, what="images")
    assert text.getvalue().splitlines() == [
        "3 images ok, 2 failed",
        f"  {long_path}: corrupt file",
        "  b.png: blank image",
    ]


def test_no_failure_exits_zero() -> None:
    report = BatchReport()
    report.add_success()
    assert (report.exit_code, report.summary_line()) == (EXIT_OK, "1 files ok, 0 failed")


def test_strict_raises_at_the_first_failure() -> None:
    report = BatchReport(strict=True)
    with pytest.raises(InputFileError) as exc:
        report.add_failure("a.dcm", "not a DICOM file")
    assert str(exc.value) == "a.dcm: not a DICOM file"
    assert report.failures == []


def test_console_summary_is_capped_but_the_file_lists_every_failure(tmp_path: Path) -> None:
    import csv

    from cemsynth.batch import SUMMARY_MAX_LINES

    report = BatchReport()
    n = SUMMARY_MAX_LINES + 7
    for i in range(n):
        report.add_failure(f"img{i:03d}.dcm", f"problem, with a comma\nand a newline {i}")
    path = report.write_failures(tmp_path / "out" / "failures.csv")
    assert report.failures_path == path
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == n
    assert rows[-1] == {
        "path": f"img{n - 1:03d}.dcm",
        "problem": f"problem, with a comma and a newline {n - 1}",
    }

    console, text = _console()
    report.print_summary(console)
    lines = text.getvalue().splitlines()
    assert len(lines) == 1 + SUMMARY_MAX_LINES + 2
    assert lines[-2] == "  ... and 7 more"
    assert lines[-1].startswith(f"  all {n} failures are listed in")
    assert "failures.csv" in text.getvalue().replace("\n", "")


def test_without_a_failures_file_the_summary_names_none() -> None:
    report = BatchReport()
    report.add_failure("a.dcm", "bad")
    console, text = _console()
    report.print_summary(console)
    assert "listed in" not in text.getvalue()


def test_warnings_are_one_line_and_do_not_fail() -> None:
    echo, echoed = _console()
    report = BatchReport(echo=echo)
    report.warn("images are\nsmall")
    assert report.warnings == ["images are small"]
    assert echoed.getvalue() == "warning: images are small\n"
    assert report.exit_code == EXIT_OK


def test_available_cpus_follows_the_affinity_mask() -> None:
    import os

    from cemsynth.batch import available_cpus

    if hasattr(os, "sched_getaffinity"):
        assert available_cpus() == len(os.sched_getaffinity(0))
    else:
        assert available_cpus() == (os.cpu_count() or 1)
