"""One-line problem texts: what the CLI prints for a bad file, a failed pair or a bug.

Exceptions from libraries (pydicom, Pillow, tifffile, YAML, the OS) often carry newlines or
nothing at all; :func:`one_line` turns any of them into a single line that can follow
``PATH: ``. Every module of the data pipeline uses these helpers instead of its own copy.
"""

from __future__ import annotations


def squash(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) replaced by one space."""
    return " ".join(text.split())


def counted(count: int, noun: str) -> str:
    """``"1 patient"``, ``"3 patients"``: ``count`` and ``noun``, plural with an ``s``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def one_line(exc: BaseException) -> str:
    """The exception's message on one line; its type name when the message is empty."""
    return squash(str(exc)) or type(exc).__name__


def internal_error(exc: BaseException) -> str:
    """The problem text for an unexpected exception (a bug) met while handling one file."""
    return (
        f"internal error ({type(exc).__name__}: {one_line(exc)}); rerun with --debug for the "
        "traceback and please report it"
    )
