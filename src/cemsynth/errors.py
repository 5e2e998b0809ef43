"""Errors that the command line reports as one line, without a traceback.

Library code raises these for problems the user can fix (bad arguments, bad input files).
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
from pathlib import Path


def display_path(path: Path | str) -> str:
    """``path`` as text that any terminal or UTF-8 file can take.

    A file name that is not valid UTF-8 (Python keeps its bytes as surrogates) shows them as
    ``\\xNN`` escapes instead of failing to print or to be written.
    """
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")


def is_printable_path(path: Path | str) -> bool:
    """Whether ``path`` is valid UTF-8 text (no undecodable bytes in its name)."""
    return display_path(path) == os.fspath(path)


class CemsynthError(Exception):
    """A problem the user can fix; the message is one line and says what to do."""


class InputFileError(CemsynthError):
    """A specific input file cannot be used. The message names the file and the problem."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{display_path(self.path)}: {problem}")


class ConfigError(CemsynthError):
    """A configuration file or argument is invalid."""
