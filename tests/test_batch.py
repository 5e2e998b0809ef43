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
