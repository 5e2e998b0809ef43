"""Errors that the command line reports as one line, without a traceback.

Library code raises these for problems the user can fix (bad arguments, bad input files).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class CemsynthError(Exception):
    """A problem the user can fix; the message is one line and says what to do."""


class InputFileError(CemsynthError):
    """A specific input file cannot be used. The message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class ConfigError(CemsynthError):
    """A configuration file or argument is invalid."""
