"""The node's durable on-disk queue: every received LE image, from arrival to delivery.

A job's state is the folder its files are in, so a crash (even ``kill -9``) between any two
steps leaves a state the next start can read. Every move is an atomic rename within
``STATE_DIR`` (one file system), and every file is complete before it is renamed in::

    STATE_DIR/
      node.lock              held (flock) by the running node: one node per state folder
      node.log               one line per event (received, ignored, synthesized, sent, ...)
      status.json            counters for ``cemsynth node-status`` (rewritten on each event)
      queue/receiving/       partial arrivals (temporary; removed at start)
      queue/incoming/K.dcm   received LE image, waiting for synthesis   + K.json (job record)
      queue/outgoing/K.dcm   its synthetic image, waiting for delivery  + K.json
      done/K.json            delivered: the job record with its times
      failed/K.dcm, K.json   an LE image that could not be synthesized, and why
      quarantine/            received data that is not a usable image, and why (.txt)

``K`` is the LE image's SOP Instance UID. One key per LE image is what makes "exactly one
synthetic image per LE image" hold: an LE image that arrives again while its key is anywhere
in the queue, done or failed, is acknowledged and not queued twice. The synthetic image's UIDs
are a pure function of the LE image and the model
(:func:`~cemsynth.inference.dicom_out.build_synthetic_dataset`), so a resend after a crash in
the instant between the destination's success and the ``done`` record is the same instance,
which a PACS stores once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cemsynth.errors import CemsynthError
from cemsynth.inference.outputs import safe_name
from cemsynth.io.atomic import write_text_atomic

LOCK_NAME = "node.lock"
LOG_NAME = "node.log"
STATUS_NAME = "status.json"

RECEIVING = "queue/receiving"
INCOMING = "queue/incoming"
OUTGOING = "queue/outgoing"
DONE = "done"
FAILED = "failed"
QUARANTINE = "quarantine"
FOLDERS = (RECEIVING, INCOMING, OUTGOING, DONE, FAILED, QUARANTINE)


def job_key(sop_instance_uid: str) -> str:
    """The file-name key of an LE image (a UID is digits and dots already)."""
    if not sop_instance_uid.strip():
        raise ValueError("an empty SOP Instance UID has no key")
    return safe_name(sop_instance_uid.strip())


@dataclass
class Job:
    """One LE image's record, kept beside its file as ``K.json``.

    Times are seconds since the epoch (``time.time()``).
    """

    key: str
    sop_instance_uid: str
    received_at: float
    origin: str
    patient_id: str = ""
    study_instance_uid: str = ""
    laterality: str = ""
    view: str = ""
    synthesized_at: float | None = None
    synthetic_sop_instance_uid: str = ""
    delivered_at: float | None = None
    delivered_to: str = ""
    attempts: int = 0
    error: str = ""

    def label(self) -> str:
        """How log lines name the job: patient, laterality, view, and the LE image's UID."""
        view = " ".join(part for part in (self.patient_id, self.laterality, self.view) if part)
        return f"{view} ({self.sop_instance_uid})" if view else self.sop_instance_uid

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Job:
        data = json.loads(text)
        known = {name for name in cls.__dataclass_fields__}
        return cls(**{name: value for name, value in data.items() if name in known})


@dataclass
class QueueCounts:
    """How many jobs are in each state."""

    incoming: int = 0
    outgoing: int = 0
    done: int = 0
    failed: int = 0
    quarantined: int = 0

    @property
    def waiting(self) -> int:
        """Jobs not yet delivered (received or synthesized)."""
        return self.incoming + self.outgoing


@dataclass
class NodeQueue:
    """The queue under ``state_dir``; one process at a time (``node.lock``).

    Methods are thread-safe: the DICOM server's association threads admit jobs while the
    synthesis and delivery threads take them.
    """

    state_dir: Path
    changed: threading.Condition = field(default_factory=threading.Condition, init=False)
    _lock_handle: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)

    # --- lifetime ---------------------------------------------------------------------

    def open(self) -> NodeQueue:
        """Create the folders, take the lock, and finish what a crash left half done.

        Raises :class:`CemsynthError` when another process holds the lock or the folder
        cannot be written.
        """
        try:
            for name in FOLDERS:
                (self.state_dir / name).mkdir(parents=True, exist_ok=True)
            handle = open(self.state_dir / LOCK_NAME, "a+")  # noqa: SIM115 (held while open)
        except OSError as exc:
            raise CemsynthError(
                f"{self.state_dir}: cannot use as the node's state folder: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise CemsynthError(
                f"{self.state_dir}: already in use by a running node (pid {holder}); one node "
                "per state folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_handle = handle
        self.recover()
        return self

    def close(self) -> None:
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> NodeQueue:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def recover(self) -> list[str]:
        """Make the folders consistent after a crash; returns what was done, one line each.

        - partial arrivals and temporary files are removed (their sender got no success);
        - a record without its image, or an image without its record, is an unfinished
          rename: the orphan is removed, except an ``incoming`` image, which is kept by
          writing its record again (it was received and acknowledged);
        - a job both ``incoming`` and ``outgoing`` was synthesized: the LE copy goes;
        - a job ``done`` and still queued was delivered: the queued copies go;
        - a job with a ``failed`` record and still incoming failed: its image joins the record.
        """
        notes: list[str] = []
        with self.changed:
            for path in (self.state_dir / RECEIVING).iterdir():
                _unlink(path)
                notes.append(f"removed partial arrival {path.name}")
            for folder in (INCOMING, OUTGOING, DONE, FAILED):
                for path in (self.state_dir / folder).glob(".*.tmp"):
                    _unlink(path)
            done = {path.stem for path in (self.state_dir / DONE).glob("*.json")}
            # a job failed after its record was written: the image may still be incoming
            for record in (self.state_dir / FAILED).glob("*.json"):
                image = self.state_dir / INCOMING / f"{record.stem}.dcm"
                if image.exists():
                    os.replace(image, self.state_dir / FAILED / image.name)
                _unlink(self.state_dir / INCOMING / f"{record.stem}.json")
            for folder in (INCOMING, OUTGOING):
                for path in sorted((self.state_dir / folder).iterdir()):
                    if path.suffix not in (".dcm", ".json"):
                        continue
                    key = path.stem
                    image, record = path.with_suffix(".dcm"), path.with_suffix(".json")
                    synthesized = (self.state_dir / OUTGOING / f"{key}.dcm").exists() and (
                        self.state_dir / OUTGOING / f"{key}.json"
                    ).exists()
                    if key in done or (folder == INCOMING and synthesized):
                        _unlink(path)
                        notes.append(
                            f"{key}: already {'delivered' if key in done else 'synthesized'}"
                        )
                    elif path.suffix == ".json" and not image.exists():
                        _unlink(path)
                    elif path.suffix == ".dcm" and not record.exists():
                        if folder == OUTGOING:  # synthesized again from nothing: drop
                            _unlink(path)
                        else:
                            job = Job(key, key, path.stat().st_mtime, origin="recovered")
                            write_text_atomic(record, job.to_json())
                            notes.append(f"{key}: record rewritten")
        return notes

    # --- paths and states --------------------------------------------------------------

    def folder(self, name: str) -> Path:
        return self.state_dir / name

    def receiving_path(self) -> Path:
        """A fresh temporary path for an arriving file (inside the state folder)."""
        stamp = f"{time.time_ns()}-{threading.get_ident()}"
        return self.state_dir / RECEIVING / f"{stamp}.part"

    def state_of(self, key: str) -> str | None:
        """Where a job is (``incoming``, ``outgoing``, ``done``, ``failed``), or None."""
        for name, folder, suffix in (
            ("done", DONE, ".json"),
            ("outgoing", OUTGOING, ".dcm"),
            ("incoming", INCOMING, ".dcm"),
            ("failed", FAILED, ".json"),
        ):
            if (self.state_dir / folder / f"{key}{suffix}").exists():
                return name
        return None

    # --- transitions -------------------------------------------------------------------

    def admit(self, received: Path, job: Job) -> str | None:
        """Queue a received LE image (a complete file at ``received``, inside the state folder).

        Returns None when queued, else the state the same LE image is already in (the file
        is then removed: the image is not queued twice). Durable when it returns: the DICOM
        server answers success only after this.
        """
        with self.changed:
            state = self.state_of(job.key)
            if state is not None:
                _unlink(received)
                return state
            write_text_atomic(self.state_dir / INCOMING / f"{job.key}.json", job.to_json())
            os.replace(received, self.state_dir / INCOMING / f"{job.key}.dcm")
            _fsync_dir(self.state_dir / INCOMING)
            self.changed.notify_all()
        return None

    def pending(self, folder: str) -> list[Job]:
        """Jobs in ``INCOMING`` or ``OUTGOING``, oldest arrival first."""
        jobs = []
        with self.changed:
            for record in (self.state_dir / folder).glob("*.json"):
                if not record.with_suffix(".dcm").exists():
                    continue
                with contextlib.suppress(OSError, ValueError, TypeError):
                    jobs.append(Job.from_json(record.read_text(encoding="utf-8")))
        return sorted(jobs, key=lambda job: (job.received_at, job.key))

    def image_path(self, folder: str, job: Job) -> Path:
        return self.state_dir / folder / f"{job.key}.dcm"

    def synthesized(self, job: Job, synthetic: Path) -> None:
        """Move a job from incoming to outgoing; ``synthetic`` is its complete image file."""
        with self.changed:
            write_text_atomic(self.state_dir / OUTGOING / f"{job.key}.json", job.to_json())
            os.replace(synthetic, self.state_dir / OUTGOING / f"{job.key}.dcm")
            _fsync_dir(self.state_dir / OUTGOING)
            _unlink(self.state_dir / INCOMING / f"{job.key}.dcm")
            _unlink(self.state_dir / INCOMING / f"{job.key}.json")
            self.changed.notify_all()

    def delivered(self, job: Job) -> None:
        """Record a delivered job and drop its queued image."""
        with self.changed:
            write_text_atomic(self.state_dir / DONE / f"{job.key}.json", job.to_json())
            _fsync_dir(self.state_dir / DONE)
            _unlink(self.state_dir / OUTGOING / f"{job.key}.dcm")
            _unlink(self.state_dir / OUTGOING / f"{job.key}.json")
            self.changed.notify_all()

    def update(self, folder: str, job: Job) -> None:
        """Rewrite a queued job's record (attempt counts, last error)."""
        with self.changed:
            if self.image_path(folder, job).exists():
                write_text_atomic(self.state_dir / folder / f"{job.key}.json", job.to_json())

    def failed(self, job: Job, reason: str) -> None:
        """Move an LE image that cannot be synthesized to ``failed/``, with the reason."""
        job.error = reason
        with self.changed:
            # the record first: from then on the job is "failed", whatever else a crash leaves
            write_text_atomic(self.state_dir / FAILED / f"{job.key}.json", job.to_json())
            image = self.state_dir / INCOMING / f"{job.key}.dcm"
            if image.exists():
                os.replace(image, self.state_dir / FAILED / f"{job.key}.dcm")
            _fsync_dir(self.state_dir / FAILED)
            _unlink(self.state_dir / INCOMING / f"{job.key}.json")
            self.changed.notify_all()

    def quarantine(self, received: Path, reason: str) -> Path:
        """Keep data that is not a usable image, with a one-line reason beside it."""
        with self.changed:
            stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}"
            target = self.state_dir / QUARANTINE / f"{stem}.dcm"
            if received.exists():
                os.replace(received, target)
            write_text_atomic(target.with_suffix(".txt"), reason + "\n")
            _fsync_dir(target.parent)
        return target

    def wait(self, timeout: float) -> None:
        """Sleep until a job changes state or ``timeout`` seconds pass."""
        with self.changed:
            self.changed.wait(timeout)

    def wake(self) -> None:
        with self.changed:
            self.changed.notify_all()

    # --- reading -----------------------------------------------------------------------

    def counts(self) -> QueueCounts:
        def count(folder: str, suffix: str) -> int:
            return sum(1 for _ in (self.state_dir / folder).glob(f"*{suffix}"))

        return QueueCounts(
            incoming=count(INCOMING, ".dcm"),
            outgoing=count(OUTGOING, ".dcm"),
            done=count(DONE, ".json"),
            failed=count(FAILED, ".json"),
            quarantined=count(QUARANTINE, ".txt"),
        )

    def done_jobs(self) -> Iterator[Job]:
        for record in sorted((self.state_dir / DONE).glob("*.json")):
            with contextlib.suppress(OSError, ValueError, TypeError):
                yield Job.from_json(record.read_text(encoding="utf-8"))


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make a rename into ``folder`` durable (the directory entry itself is flushed)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
