"""The node's status: counters kept while it runs, ``status.json``, and ``cemsynth node-status``.

``STATE_DIR/status.json`` is rewritten (atomically) on every event, so a reader sees the
running node's counters; the queue lengths come from the folders themselves, which are the
truth even when the node is not running.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cemsynth.errors import CemsynthError
from cemsynth.io.json_files import write_json
from cemsynth.node.queue import LOCK_NAME, LOG_NAME, STATUS_NAME, NodeQueue

#: Images per minute are counted over the deliveries of this many last seconds.
RATE_WINDOW_S = 600.0
#: Latency statistics cover this many last deliveries.
LATENCY_SAMPLES = 200

COUNTERS = (
    "received",
    "ignored",
    "duplicates",
    "quarantined",
    "synthesized",
    "delivered",
    "failed",
    "delivery_retries",
)


@dataclass
class StatusBoard:
    """Counters of one node process, written to ``status.json`` and logged to ``node.log``.

    ``describe``: what the node is (listening address, destination, model) for the file.
    ``echo``: called with each log line (the console), or None.
    """

    queue: NodeQueue
    describe: dict[str, Any]
    echo: Any = None
    started_at: float = field(default_factory=time.time)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    last_error: dict[str, Any] | None = None
    destination_down_since: float | None = None
    next_retry_at: float | None = None
    _deliveries: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=LATENCY_SAMPLES)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def event(self, counter: str | None, message: str, error: bool = False) -> None:
        """Count one event, append its line to ``node.log`` and rewrite ``status.json``."""
        now = time.time()
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(now))} {message}"
        with self._lock:
            if counter is not None:
                self.counters[counter] += 1
            if error:
                self.last_error = {"time": now, "message": message}
            with open(self.queue.state_dir / LOG_NAME, "a", encoding="utf-8") as log:
                log.write(line + "\n")
            self._write(now)
        if self.echo is not None:
            self.echo(line)

    def delivered(self, received_at: float, delivered_at: float) -> None:
        with self._lock:
            self._deliveries.append((delivered_at, delivered_at - received_at))

    def destination(self, down_since: float | None, next_retry_at: float | None) -> None:
        with self._lock:
            self.destination_down_since = down_since
            self.next_retry_at = next_retry_at
            self._write(time.time())

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The status as a JSON-ready dict."""
        now = time.time() if now is None else now
        recent = [(t, lat) for t, lat in self._deliveries if now - t <= RATE_WINDOW_S]
        span_min = min(RATE_WINDOW_S, max(now - self.started_at, 1.0)) / 60.0
        latencies = [lat for _, lat in self._deliveries]
        return {
            **self.describe,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "updated_at": now,
            "queue": queue_fields(self.queue),
            "counters": dict(self.counters),
            "images_per_minute": len(recent) / span_min,
            "latency_s": None
            if not latencies
            else {
                "median": statistics.median(latencies),
                "mean": statistics.fmean(latencies),
                "max": max(latencies),
                "samples": len(latencies),
            },
            "destination_down_since": self.destination_down_since,
            "next_retry_at": self.next_retry_at,
            "last_error": self.last_error,
        }

    def write(self) -> None:
        with self._lock:
            self._write(time.time())

    def _write(self, now: float) -> None:
        write_json(self.queue.state_dir / STATUS_NAME, self.snapshot(now))


def queue_fields(queue: NodeQueue) -> dict[str, int]:
    """The queue's lengths as ``status.json`` names them."""
    counts = queue.counts()
    return {
        "waiting_for_synthesis": counts.incoming,
        "waiting_for_delivery": counts.outgoing,
        "done": counts.done,
        "failed": counts.failed,
        "quarantined": counts.quarantined,
    }


def _running_pid(state_dir: Path) -> int | None:
    """The pid holding ``node.lock``, if that process is alive."""
    import fcntl

    lock = state_dir / LOCK_NAME
    if not lock.exists():
        return None
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            text = handle.read().strip()
            return int(text) if text.isdigit() else 0  # held, pid not yet written
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def read_status(state_dir: Path) -> dict[str, Any]:
    """Status of the node using ``state_dir``, whether it runs or not.

    Raises :class:`CemsynthError` if ``state_dir`` is not a node's state folder.
    """
    state_dir = Path(state_dir)
    if not (state_dir / LOCK_NAME).exists():
        raise CemsynthError(f"{state_dir}: not a node's state folder (no {LOCK_NAME})")
    status: dict[str, Any] = {}
    try:
        status = json.loads((state_dir / STATUS_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        status = {}
    status["queue"] = queue_fields(NodeQueue(state_dir))  # reading folders needs no lock
    status["running_pid"] = _running_pid(state_dir)
    return status


def status_lines(status: dict[str, Any], now: float | None = None) -> list[str]:
    """``read_status``'s dict in a few human lines."""
    now = time.time() if now is None else now
    queue = status["queue"]
    pid = status.get("running_pid")
    running = pid is not None
    where = status.get("listening") or (
        f"watching {status['watching']}" if status.get("watching") else ""
    )
    if running:
        state = (f"running, pid {pid}" if pid else "running") + (f"; {where}" if where else "")
    else:
        state = "not running" + (f" (last run: {where})" if where else "")
    lines = [
        f"node: {state}",
        f"queue: {queue['waiting_for_synthesis']} waiting for synthesis, "
        f"{queue['waiting_for_delivery']} waiting for delivery",
        f"done: {queue['done']}; failed: {queue['failed']}; quarantined: {queue['quarantined']}",
    ]
    if running and "images_per_minute" in status:
        latency = status.get("latency_s")
        latency_text = (
            f"; latency median {latency['median']:.1f} s, max {latency['max']:.1f} s"
            if latency
            else ""
        )
        lines.append(f"rate: {status['images_per_minute']:.1f} images per minute{latency_text}")
    if status.get("destination"):
        down = status.get("destination_down_since")
        if running and down:
            retry = status.get("next_retry_at")
            retry_text = f", next try in {max(retry - now, 0):.0f} s" if retry else ""
            lines.append(
                f"destination {status['destination']}: down for {now - down:.0f} s{retry_text}"
            )
        else:
            lines.append(f"destination {status['destination']}")
    error = status.get("last_error")
    lines.append(
        "last error: "
        + (
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(error['time']))} "
            f"{error['message']}"
            if error
            else "none"
        )
    )
    return lines
