"""Output locations are checked up front: one line naming the location and the problem."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cemsynth.errors import CemsynthError
from cemsynth.io.paths import ensure_writable_dir, ensure_writable_file


def test_missing_folder_is_created_and_left_clean(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    assert ensure_writable_dir(target, "cache folder") == target
    assert target.is_dir()
    assert list(target.iterdir()) == []  # the write probe is removed


def test_a_file_where_the_folder_goes(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(CemsynthError) as exc:
        ensure_writable_dir(blocker, "cache folder")
    assert str(exc.value) == f"cannot write to cache folder {blocker}: it is a file, not a folder"


def test_a_file_among_the_parents(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(CemsynthError) as exc:
        ensure_writable_dir(blocker / "sub" / "cache", "cache folder")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write to cache folder {blocker / 'sub' / 'cache'}: ")
    assert message.endswith(f"{blocker} is a file, not a folder")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(CemsynthError, match=r"cannot write to output folder .*: Permission"):
            ensure_writable_dir(locked, "output folder")
    finally:
        locked.chmod(0o700)


def test_file_target_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(CemsynthError, match="it is a folder; name a file"):
        ensure_writable_file(tmp_path, "manifest")
    target = tmp_path / "new" / "manifest.csv"
    assert ensure_writable_file(target, "manifest") == target
    assert target.parent.is_dir() and not target.exists()


def test_file_target_below_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    with pytest.raises(CemsynthError, match="cannot write to folder of the manifest"):
        ensure_writable_file(blocker / "manifest.csv", "manifest")
