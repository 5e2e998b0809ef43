"""Training logs on rank 0: CSV files, TensorBoard event files (optional) and a progress bar.

``RUN_DIR/train_log.csv``: one row per ``log_every`` steps (losses averaged over the row's
steps and over DDP ranks); ``RUN_DIR/val_log.csv``: one row per validation. On ``--resume``
rows after the checkpoint's step (written by the interrupted run after its last checkpoint) are
dropped, so each step appears once. TensorBoard files go to ``RUN_DIR/tensorboard`` when the
``tensorboard`` package is installed; otherwise a one-line notice says so and only the CSV
files are written.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from cemsynth.io.atomic import write_text_atomic

TENSORBOARD_MISSING = (
    "tensorboard is not installed: logging to CSV only (pip install tensorboard for event files)"
)


class CsvLog:
    """Append rows to a CSV file with a fixed header; flushed after each row."""

    def __init__(self, path: Path, columns: Sequence[str], keep_through_step: int | None) -> None:
        self.path = path
        self.columns = list(columns)
        if keep_through_step is not None and path.is_file():
            _truncate_after(path, self.columns, keep_through_step)
        fresh = not path.is_file() or path.stat().st_size == 0
        self._handle = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._handle)
        if fresh:
            self._writer.writerow(self.columns)
            self._handle.flush()

    def write(self, row: dict[str, Any]) -> None:
        self._writer.writerow([_format(row.get(column)) for column in self.columns])
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def _format(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _truncate_after(path: Path, columns: list[str], step: int) -> None:
    """Keep the header and the rows with ``step <= step`` (rewritten atomically)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    if header != columns:  # another layout (older run): start the file again
        path.rename(path.with_suffix(".old.csv"))
        return
    kept = [row for row in body if row and int(row[0]) <= step]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(kept)
    write_text_atomic(path, buffer.getvalue())


class TensorBoardLog:
    """Scalars and images to TensorBoard, or nothing when tensorboard is missing."""

    def __init__(self, log_dir: Path, purge_step: int | None) -> None:
        self.available = False
        self._writer: Any = None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        self._writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)
        self.available = True

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self._writer is not None:
            for name, value in values.items():
                self._writer.add_scalar(f"{prefix}/{name}", value, step)

    def image(self, tag: str, image: Any, step: int) -> None:
        """``image``: float ``(1, H, W)`` in [0, 1]."""
        if self._writer is not None:
            self._writer.add_image(tag, image, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class ProgressBar:
    """A rich progress bar with the step, latest losses, speed and ETA (or nothing)."""

    def __init__(self, enabled: bool, total: int, start: int, console: Any = None) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from cemsynth.progress import progress_bar

        # kept on screen when done: its last frame shows the final losses and time
        self._bar = progress_bar(
            "train", console=console, transient=False, fields=("speed", "losses"), elapsed=True
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=start, losses="", speed="")

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, 1)

    def show(self, generator: float, d_le: float, d_rc: float, steps_per_second: float) -> None:
        """Latest mean losses: generator total, the two discriminators; steps per second."""
        if self._bar is not None:
            text = f"G {generator:.3f} D {d_le:.3f}/{d_rc:.3f}"
            self._bar.update(self._task, losses=text, speed=f"{steps_per_second:.2f} it/s")

    def print(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
