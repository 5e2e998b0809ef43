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
    report.print_summary(stderr_console)
    raise typer.Exit(report.exit_code)

Each failure is one line naming the file and the problem. ``exit_code`` is 0 when nothing
failed and :data:`EXIT_SOME_FAILED` (1) otherwise; with ``strict`` the first failure raises
:class:`InputFileError`, which the CLI turns into one line and exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cemsynth.errors import InputFileError

if TYPE_CHECKING:
    from rich.console import Console

EXIT_OK = 0
EXIT_SOME_FAILED = 1
SUMMARY_MAX_LINES = 50


@dataclass(frozen=True)
class BatchFailure:
    """One file that could not be used, and why (one line)."""

    path: Path
    problem: str

    def line(self) -> str:
        return f"{self.path}: {self.problem}"


class BatchReport:
    """Failures and successes of a batch over files.

    ``strict``: the first failure raises :class:`InputFileError` instead of being recorded.
    ``echo``: if given, each failure is printed there as one line when it is recorded.
    """

    def __init__(self, strict: bool = False, echo: Console | None = None) -> None:
        self.strict = strict
        self.echo = echo
        self.failures: list[BatchFailure] = []
        self.n_ok = 0

    def add_failure(self, path: Path | str, problem: str) -> None:
        """Record that ``path`` failed with a one-line ``problem`` (or raise, if strict)."""
        problem = " ".join(problem.split())
        if self.strict:
            raise InputFileError(path, problem)
        failure = BatchFailure(Path(path), problem)
        self.failures.append(failure)
        if self.echo is not None:
            self.echo.print(
                failure.line(), markup=False, highlight=False, emoji=False, soft_wrap=True
            )

    def add_error(self, error: InputFileError) -> None:
        """Record an :class:`InputFileError` raised while handling one file."""
        self.add_failure(error.path, error.problem)

    def add_success(self, count: int = 1) -> None:
        """Count ``count`` files that were handled without a problem."""
        self.n_ok += count

    @property
    def exit_code(self) -> int:
        """0 if nothing failed, else :data:`EXIT_SOME_FAILED`."""
        return EXIT_SOME_FAILED if self.failures else EXIT_OK

    def summary_line(self, what: str = "files") -> str:
        """E.g. ``"12 files ok, 2 failed"``."""
        return f"{self.n_ok} {what} ok, {len(self.failures)} failed"

    def print_summary(self, console: Console, what: str = "files") -> None:
        """Print the count line, then each failure (at most :data:`SUMMARY_MAX_LINES`)."""
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
