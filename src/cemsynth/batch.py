"""Collect per-file failures in a batch command, so one bad file does not stop the others.

Usage in a command::

    report = BatchReport(strict=strict, echo=stderr_console)
    for path in paths:
        try:
            work(path)
        except InputFileError as exc:
            report.add_error(exc)        # prints "path: problem"; raises at once if strict
        else:
            report.add_success()
    report.write_failures(out_folder / FAILURES_NAME)   # every failure, for the record
    report.print_summary(stderr_console)
    raise typer.Exit(report.exit_code)

Each failure is one line naming the file and the problem. ``exit_code`` is 0 when nothing
failed and :data:`EXIT_SOME_FAILED` (1) otherwise; with ``strict`` the first failure raises
:class:`InputFileError`, which the CLI turns into one line and exit code 2. The console summary
shows at most :data:`SUMMARY_MAX_LINES` failures; :meth:`BatchReport.write_failures` writes all
of them to a CSV file (``path, problem``) and the summary then says where.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cemsynth.errors import InputFileError, display_path
from cemsynth.io.atomic import write_text_atomic
from cemsynth.io.messages import squash

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_SOME_FAILED = 1
SUMMARY_MAX_LINES = 50
FAILURES_NAME = "failures.csv"
"""File name of the complete failure list that batch commands write beside their output."""
FAILURES_COLUMNS = ("path", "problem")


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one (containers, taskset,
    batch schedulers), else ``os.cpu_count()``. What "0 workers = one per core" means."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass(frozen=True)
class BatchFailure:
    """One file that could not be used, and why (one line)."""

    path: Path
    problem: str

    def line(self) -> str:
        return f"{display_path(self.path)}: {self.problem}"


class BatchReport:
    """Failures, warnings and successes of a batch over files.

    ``strict``: the first failure raises :class:`InputFileError` instead of being recorded.
    ``echo``: if given, each failure and warning is printed there as one line when recorded.
    ``failures_path``: where :meth:`write_failures` last wrote the full list (None: not yet).
    """

    def __init__(self, strict: bool = False, echo: Console | None = None) -> None:
        self.strict = strict
        self.echo = echo
        self.failures: list[BatchFailure] = []
        self.warnings: list[str] = []
        self.n_ok = 0
        self.failures_path: Path | None = None

    def add_failure(self, path: Path | str, problem: str) -> None:
        """Record that ``path`` failed with a one-line ``problem`` (or raise, if strict)."""
        problem = squash(problem)
        if self.strict:
            raise InputFileError(path, problem)
        failure = BatchFailure(Path(path), problem)
        self.failures.append(failure)
        self._echo(failure.line())

    def add_error(self, error: InputFileError) -> None:
        """Record an :class:`InputFileError` raised while handling one file."""
        self.add_failure(error.path, error.problem)

    def add_success(self, count: int = 1) -> None:
        """Count ``count`` files that were handled without a problem."""
        self.n_ok += count

    def warn(self, message: str) -> None:
        """Record a one-line warning (the batch goes on; the exit code is unchanged)."""
        message = squash(message)
        self.warnings.append(message)
        self._echo(f"warning: {message}")

    @property
    def exit_code(self) -> int:
        """0 if nothing failed, else :data:`EXIT_SOME_FAILED`."""
        return EXIT_SOME_FAILED if self.failures else EXIT_OK

    def summary_line(self, what: str = "files") -> str:
        """E.g. ``"12 files ok, 2 failed"``."""
        return f"{self.n_ok} {what} ok, {len(self.failures)} failed"

    def write_failures(self, path: Path | str) -> Path:
        """Write every failure to the CSV file ``path`` (columns ``path, problem``; atomic).

        Written even when nothing failed (header only), so no stale list from an earlier run
        remains. Remembered in :attr:`failures_path` for :meth:`print_summary`.
        """
        path = Path(path)
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(FAILURES_COLUMNS)
        for failure in self.failures:
            writer.writerow([display_path(failure.path), failure.problem])
        write_text_atomic(path, buffer.getvalue())
        self.failures_path = path
        return path

    def print_summary(self, console: Console, what: str = "files") -> None:
        """Print the count line, then each failure (at most :data:`SUMMARY_MAX_LINES`), then
        where the complete list is (when :meth:`write_failures` wrote one)."""
        style = "bold red" if self.failures else "bold green"
        console.print(
            self.summary_line(what), style=style, markup=False, highlight=False, emoji=False
        )
        for failure in self.failures[:SUMMARY_MAX_LINES]:
            console.print(
                f"  {failure.line()}", markup=False, highlight=False, emoji=False, soft_wrap=True
            )
        hidden = len(self.failures) - SUMMARY_MAX_LINES
        if hidden > 0:
            console.print(f"  ... and {hidden} more", markup=False, highlight=False, emoji=False)
        if self.failures and self.failures_path is not None:
            console.print(
                f"  all {len(self.failures)} failures are listed in {self.failures_path}",
                markup=False,
                highlight=False,
                emoji=False,
                soft_wrap=True,
            )

    def _echo(self, line: str) -> None:
        if self.echo is not None:
            self.echo.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
