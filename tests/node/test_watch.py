"""``cemsynth watch``: files that appear in a folder are copied into the queue once settled,
synthesized once, and the folder itself is never written."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cemsynth.errors import CemsynthError
from cemsynth.inference.config import RuntimeConfig
from cemsynth.node.intake import Intake
from cemsynth.node.queue import NodeQueue
from cemsynth.node.run import watch_folder
from cemsynth.node.status import StatusBoard
from cemsynth.node.watch import FolderWatcher

if TYPE_CHECKING:
    from conftest import RunCli  # the run_cli fixture's type


def _watch(folder: Path, out: Path, model: Path, until: Any, timeout: float = 60.0) -> StatusBoard:
    """Run watch_folder in a thread until ``until(out)`` holds; returns its board."""
    stop = threading.Event()
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["board"] = watch_folder(
                folder=folder,
                model=model,
                out=out,
                destination=None,
                interval_s=0.2,
                vendor_keywords=None,
                runtime=RuntimeConfig(backend="torch", threads=1),
                stop=stop,
            )
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not until(out) and thread.is_alive():
        time.sleep(0.1)
    stop.set()
    thread.join(60)
    if "error" in result:
        raise result["error"]
    assert until(out), "timed out"
    board: StatusBoard = result["board"]
    return board


def _done(n: int) -> Any:
    return lambda out: len(list((out / "done").glob("*.json"))) >= n


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


def test_new_files_get_one_synthetic_image_each_and_a_restart_takes_none_twice(
    cem_exam: Path, node_model: Path, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(cem_exam, inbox / "exam", ignore=shutil.ignore_patterns("truth"))  # 4 LE, 4 RC
    (inbox / "notes.txt").write_text("not an image")
    before = _snapshot(inbox)
    board = _watch(inbox, tmp_path / "out", node_model, _done(4))
    assert board.counters["received"] == 4
    assert board.counters["ignored"] == 5  # 4 RC images and the text file
    written = sorted(p.name for p in (tmp_path / "out" / "synthetic").glob("*.dcm"))
    assert [name.split("_2.25")[0] for name in written] == [
        "P0001_L_CC", "P0001_L_MLO", "P0001_R_CC", "P0001_R_MLO"
    ]  # fmt: skip
    assert _snapshot(inbox) == before  # read, never written
    with NodeQueue(tmp_path / "out") as queue:  # a restart: a new watcher reads the ledger
        again = FolderWatcher(inbox, Intake(queue), StatusBoard(queue, {}))
        assert again.look() == 0
    assert len(list((tmp_path / "out" / "done").glob("*.json"))) == 4


def test_a_file_still_being_written_is_not_taken_until_it_settles(
    cem_exam: Path, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with NodeQueue(tmp_path / "out") as queue:
        board = StatusBoard(queue, {})
        watcher = FolderWatcher(inbox, Intake(queue), board, interval_s=1.0, settle_s=5.0)
        growing = inbox / "L_CC_LE.dcm"
        data = (cem_exam / "L_CC_LE.dcm").read_bytes()
        growing.write_bytes(data[: len(data) // 2])
        now = time.time()
        assert watcher.look(now) == 0  # new and recent: wait
        growing.write_bytes(data)
        assert watcher.look(now + 1) == 0  # changed since the last look: wait again
        assert watcher.look(now + 2) == 1  # unchanged between two looks: taken
        assert board.counters["received"] == 1
        assert watcher.look(now + 3) == 0  # taken once
        old = inbox / "R_CC_LE.dcm"
        shutil.copyfile(cem_exam / "R_CC_LE.dcm", old)
        os.utime(old, (now - 60, now - 60))
        fresh = FolderWatcher(inbox, Intake(queue), board, interval_s=1.0, settle_s=5.0)
        assert fresh.look(now + 4) == 1  # the ledger remembers the first; the old one settled


def test_watch_refuses_an_output_folder_inside_the_watched_one(
    run_cli: RunCli, node_model: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        ["watch", str(tmp_path), "--model", str(node_model), "--out", str(tmp_path / "out")]
    )
    assert code == 2
    assert err.strip() == (
        f"cemsynth: error: {tmp_path / 'out'}: the output folder and the watched folder "
        f"{tmp_path} must not contain each other (the node would take its own files)"
    )
    with pytest.raises(CemsynthError, match="not a folder"):
        watch_folder(
            folder=tmp_path / "missing",
            model=node_model,
            out=tmp_path / "o",
            destination=None,
            vendor_keywords=None,
            runtime=RuntimeConfig(),
            stop=threading.Event(),
        )
