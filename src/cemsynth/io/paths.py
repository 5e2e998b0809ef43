"""Check output locations before a long run, so a bad ``--out`` fails at once, in one line.

Atomic writes (:mod:`cemsynth.io.atomic`) create their folder themselves, but only when the
first file is written, i.e. after the work; a file standing where a folder must go, or a folder
without write permission, would then surface as a traceback from ``os.mkdir`` or
``tempfile.mkstemp``. These helpers make the same checks up front and raise
:class:`~cemsynth.errors.CemsynthError` with one line: ``cannot write to WHAT PATH: REASON``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cemsynth.errors import CemsynthError
from cemsynth.io.messages import one_line

_PROBE_PREFIX = ".cemsynth-write-test-"


def ensure_writable_dir(path: Path | str, what: str) -> Path:
    """Create folder ``path`` (and its parents) if missing and check that files can be made in it.

    ``what`` names the folder in the message, e.g. ``"cache folder"`` or ``"output folder"``.
    Writability is tested by creating and removing a hidden temporary file, which is what the
    atomic writers will do (permission bits alone mislead for root, ACLs and read-only mounts).
    Returns ``path``. Raises :class:`CemsynthError` (one line) when the folder cannot be used.
    """
    path = Path(path)

    def fail(reason: str) -> CemsynthError:
        return CemsynthError(f"cannot write to {what} {path}: {reason}")

    if path.exists() and not path.is_dir():
        raise fail("it is a file, not a folder")
    for parent in path.parents:  # nearest existing ancestor must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise fail(f"{parent} is a file, not a folder")
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(exc.strerror or one_line(exc)) from None
    try:
        handle, probe = tempfile.mkstemp(prefix=_PROBE_PREFIX, dir=path)
    except OSError as exc:
        raise fail(exc.strerror or one_line(exc)) from None
    os.close(handle)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return path


def ensure_writable_file(path: Path | str, what: str) -> Path:
    """Check that file ``path`` can be written atomically: its folder is writable (created if
    missing) and ``path`` itself is not a folder. ``what`` names the file, e.g. ``"manifest"``.

    Returns ``path``. Raises :class:`CemsynthError` (one line) otherwise.
    """
    path = Path(path)
    if path.is_dir():
        raise CemsynthError(f"cannot write to {what} {path}: it is a folder; name a file")
    ensure_writable_dir(path.parent, f"folder of the {what}")
    return path
