"""The node's two workers over the queue: synthesis and delivery.

- **Synthesis** takes the oldest received LE image, makes its synthetic image with the model
  loaded once (the same :class:`~cemsynth.inference.predictor.Predictor` and derived, labelled
  DICOM as ``cemsynth predict``), and moves the job to ``outgoing``. An LE image the model
  cannot use (no breast found, values outside the model's window) goes to ``failed/`` with
  its one-line reason; the node goes on.
- **Delivery** sends waiting synthetic images, oldest first, to the destination. When the
  destination fails it waits (1 s, doubling to 60 s) and tries again; nothing is dropped.

Both run as threads; :meth:`NodeService.stop` asks them to finish the image in hand.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cemsynth.errors import InputFileError
from cemsynth.inference.predictor import Predictor
from cemsynth.io.messages import internal_error
from cemsynth.node.delivery import Backoff, DeliveryError, Destination
from cemsynth.node.queue import INCOMING, OUTGOING, Job, NodeQueue
from cemsynth.node.status import StatusBoard

#: Longest sleep of an idle worker between looks at the queue (a missed wake-up costs this).
IDLE_POLL_S = 1.0
#: Wait before trying again after a problem of this machine (cannot write, queue unreadable).
SYNTHESIS_RETRY_S = 5.0


@dataclass
class NodeService:
    """Synthesis and delivery threads over an opened :class:`NodeQueue`."""

    queue: NodeQueue
    predictor: Predictor
    destination: Destination
    board: StatusBoard
    backoff: Backoff = field(default_factory=Backoff)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _threads: list[threading.Thread] = field(default_factory=list, init=False)

    def start(self) -> None:
        for name, target in (
            ("synthesis", self._synthesis_loop),
            ("delivery", self._delivery_loop),
        ):
            thread = threading.Thread(target=target, name=f"cemsynth-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 60.0) -> None:
        """Ask both workers to stop after the image in hand, and wait for them."""
        self._stop.set()
        self.queue.wake()
        for thread in self._threads:
            thread.join(timeout)
        self.destination.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- synthesis ---------------------------------------------------------------------

    def synthesize_one(self, job: Job) -> bool:
        """Make ``job``'s synthetic image and move it to ``outgoing``.

        An LE image the model cannot use goes to ``failed/`` (permanent: a resend is refused
        as a duplicate until its ``failed/`` files are removed), as does one that meets a
        bug (it would otherwise block the queue). A problem of this machine (the synthetic
        image cannot be written: a full disk) leaves the job queued and returns False, so
        the caller waits before trying again.
        """
        from cemsynth.inference.dicom_out import write_synthetic_dicom
        from cemsynth.inference.run import settings_text
        from cemsynth.io.reader import read_image

        source = self.queue.image_path(INCOMING, job)
        target = self.queue.receiving_path().with_suffix(".synthetic")
        try:
            image = read_image(source)
            prediction = self.predictor.predict(image)
            written = write_synthetic_dicom(
                target,
                prediction.image,
                source,
                self.predictor.identity,
                self.predictor.preprocess_config.rc_window,
                settings_text(self.predictor),
            )
        except (InputFileError, OSError) as exc:
            target.unlink(missing_ok=True)
            if isinstance(exc, InputFileError) and exc.path == source:
                self.queue.failed(job, exc.problem)
                self.board.event("failed", f"{job.label()}: {exc.problem}", error=True)
                return True
            problem = exc.problem if isinstance(exc, InputFileError) else str(exc)
            self.board.event(
                None,
                f"{job.label()}: cannot write its synthetic image ({problem}); it stays "
                f"queued, next try in {SYNTHESIS_RETRY_S:g} s",
                error=True,
            )
            return False
        except Exception as exc:  # a bug met on one image must not stop the node
            target.unlink(missing_ok=True)
            reason = internal_error(exc)
            self.queue.failed(job, reason)
            self.board.event("failed", f"{job.label()}: {reason}", error=True)
            return True
        job.synthesized_at = time.time()
        job.synthetic_sop_instance_uid = str(written.SOPInstanceUID)
        self.queue.synthesized(job, target)
        seconds = job.synthesized_at - job.received_at
        self.board.event(
            "synthesized",
            f"{job.label()}: synthesized as {job.synthetic_sop_instance_uid} "
            f"({sum(prediction.seconds.values()):.1f} s; {seconds:.1f} s after arrival)",
        )
        return True

    def _synthesis_loop(self) -> None:
        while not self._stop.is_set():
            try:
                waiting = self.queue.pending(INCOMING)
                if not waiting:
                    self.queue.wait(IDLE_POLL_S)
                elif not self.synthesize_one(waiting[0]):
                    self._stop.wait(SYNTHESIS_RETRY_S)
            except Exception as exc:  # the queue itself failed (disk): say so, go on
                self._worker_error("synthesis", exc)

    def _worker_error(self, worker: str, exc: Exception) -> None:
        # if the log itself cannot be written, there is nothing left to tell
        with contextlib.suppress(Exception):
            self.board.event(None, f"{worker}: {internal_error(exc)}", error=True)
        self._stop.wait(SYNTHESIS_RETRY_S)

    # --- delivery ----------------------------------------------------------------------

    def deliver_waiting(self) -> bool:
        """Send every waiting synthetic image, oldest first; False when any failed.

        A connection failure ends the round (every image would fail alike); an image the
        destination refuses (a failure status) stays queued and the others go on.
        """
        refused = 0
        for job in self.queue.pending(OUTGOING):
            if self._stop.is_set():
                return True
            job.attempts += 1
            try:
                self.destination.deliver(self.queue.image_path(OUTGOING, job), job)
            except DeliveryError as exc:
                job.error = str(exc)
                self.queue.update(OUTGOING, job)
                if not exc.connection:
                    refused += 1
                    self.board.event("delivery_retries", f"{exc}; it stays queued", error=True)
                    continue
                self.destination.close()
                self._delivery_failed(str(exc))
                return False
            job.delivered_at = time.time()
            job.delivered_to = self.destination.label()
            job.error = ""
            self.queue.delivered(job)
            if self.board.destination_down_since is not None:
                self.board.destination(None, None)
            self.board.delivered(job.received_at, job.delivered_at)
            self.board.event(
                "delivered",
                f"{job.label()}: synthetic image sent to {job.delivered_to} "
                f"({job.delivered_at - job.received_at:.1f} s after arrival)",
            )
        self.destination.close()
        if refused:
            self._delivery_failed(f"{refused} image(s) refused by {self.destination.label()}")
            return False
        self.backoff.succeeded()
        return True

    def _delivery_failed(self, message: str) -> None:
        wait = self.backoff.failed()
        now = time.time()
        self.board.destination(self.board.destination_down_since or now, now + wait)
        self.board.event(
            "delivery_retries",
            f"{message}; {len(self.queue.pending(OUTGOING))} waiting, next try in {wait:.0f} s",
            error=True,
        )

    def _delivery_loop(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.queue.pending(OUTGOING):
                    self.queue.wait(IDLE_POLL_S)
                    continue
                if not self.deliver_waiting():
                    retry_at = self.board.next_retry_at or time.time()
                    # sleep out the back-off; a stop request ends it at once
                    self._stop.wait(max(retry_at - time.time(), 0.0))
            except Exception as exc:
                self.destination.close()
                self._worker_error("delivery", exc)


def describe_model(predictor: Predictor, model_path: Path) -> dict[str, str]:
    """The model and settings, for ``status.json``."""
    from cemsynth.inference.run import settings_text

    return {
        "model": str(model_path),
        "model_identity": predictor.identity.label(),
        "settings": settings_text(predictor),
    }
