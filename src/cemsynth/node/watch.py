"""``cemsynth watch``'s way in: DICOM files that appear in a folder, for sites without a router.

The folder is read, never written: each new file is *copied* into the queue once it has
settled (size and modification time unchanged between two looks, or last modified at least
``settle_s`` ago), so a file still being copied in is not taken half written. Files already taken
are remembered in ``STATE_DIR/watched.tsv`` (path, size, modification time), so a restart does
not take them again; a file that changes later is taken again, and the queue's one-job-per-
SOP-Instance-UID rule decides whether it is new.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cemsynth.node.config import DEFAULT_INTERVAL_S
from cemsynth.node.intake import Intake
from cemsynth.node.status import StatusBoard

LEDGER_NAME = "watched.tsv"

Signature = tuple[int, int]  # (size in bytes, mtime in ns)


@dataclass
class FolderWatcher:
    """Polls ``folder`` (recursively) every ``interval_s`` seconds and feeds the intake."""

    folder: Path
    intake: Intake
    board: StatusBoard
    interval_s: float = DEFAULT_INTERVAL_S
    settle_s: float = DEFAULT_INTERVAL_S
    _taken: dict[str, Signature] = field(default_factory=dict, init=False)
    _last_look: dict[str, Signature] = field(default_factory=dict, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.folder = Path(self.folder)
        ledger = self.intake.queue.state_dir / LEDGER_NAME
        with contextlib.suppress(FileNotFoundError):
            for line in ledger.read_text(encoding="utf-8").splitlines():
                parts = line.rsplit("\t", 2)
                if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                    self._taken[parts[0]] = (int(parts[1]), int(parts[2]))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="cemsynth-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.look()
            self._stop.wait(self.interval_s)

    def _files(self) -> dict[str, Signature]:
        found: dict[str, Signature] = {}
        for root, folders, files in os.walk(self.folder):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            for name in sorted(files):
                if name.startswith("."):  # hidden and temporary files of copying tools
                    continue
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    stat = os.stat(path)
                    found[path] = (stat.st_size, stat.st_mtime_ns)
        return found

    def look(self, now: float | None = None) -> int:
        """Take every settled new file once; returns how many were taken."""
        from cemsynth.errors import InputFileError
        from cemsynth.io.reader import detect_format

        now = time.time() if now is None else now
        files = self._files()
        taken = 0
        for path, signature in files.items():
            if self._stop.is_set():
                break
            if self._taken.get(path) == signature:
                continue
            settled = (
                self._last_look.get(path) == signature or now - signature[1] / 1e9 >= self.settle_s
            )
            if not settled:
                continue
            name = os.path.relpath(path, self.folder)
            try:
                is_dicom = detect_format(Path(path)) == "dicom"
            except InputFileError:
                is_dicom = False
            if not is_dicom:
                self._remember(path, signature)
                self.board.event("ignored", f"{name}: not a DICOM file; not queued")
                continue
            received = self.intake.queue.receiving_path()
            try:
                shutil.copyfile(path, received)
                with open(received, "rb+") as handle:
                    os.fsync(handle.fileno())
            except OSError as exc:
                received.unlink(missing_ok=True)
                self.board.event(None, f"{name}: cannot copy: {exc.strerror or exc}", error=True)
                continue
            result = self.intake.take(received, f"watch:{path}", name)
            # remembered once sorted: a crash before this takes it again, which the queue's
            # one job per SOP Instance UID makes harmless
            self._remember(path, signature)
            taken += 1
            self.board.event(result.counter, result.message, error=result.outcome == "quarantined")
        self._last_look = files
        return taken

    def _remember(self, path: str, signature: Signature) -> None:
        self._taken[path] = signature
        ledger = self.intake.queue.state_dir / LEDGER_NAME
        with open(ledger, "a", encoding="utf-8") as handle:
            handle.write(f"{path}\t{signature[0]}\t{signature[1]}\n")
