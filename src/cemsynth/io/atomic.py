"""Atomic file writes: a reader sees the old file, the complete new one, or nothing.

Each writer writes to a hidden temporary file in the destination folder and renames it into
place (``os.replace`` is atomic on POSIX and Windows within one file system). An interrupted
run therefore never leaves a truncated file under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


def _default_file_mode() -> int:
    """The mode a plain ``open(..., "w")`` would give: 0666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


# Read once: os.umask can only be read by setting it, which is not thread-safe.
_FILE_MODE = _default_file_mode()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The temporary file is removed if the block raises (including KeyboardInterrupt).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    # mkstemp creates the file 0600; outputs are meant to be shared like any other file.
    os.fchmod(fd, _FILE_MODE)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_atomic(path: Path | str, writer: Callable[[IO[bytes]], object]) -> None:
    """Open a temporary binary file, let ``writer`` fill it, flush to disk, rename into place."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        writer(handle)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: Path | str, text: str) -> None:
    """Write a UTF-8 text file atomically."""
    write_atomic(path, lambda handle: handle.write(text.encode("utf-8")))
