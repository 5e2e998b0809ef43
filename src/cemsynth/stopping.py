"""A graceful stop on Ctrl-C or SIGTERM: the first signal asks, a second one insists.

Long-running commands (training, the DICOM node) finish the unit of work in hand (a step, an
image) and save what they have when asked; a second signal raises :class:`KeyboardInterrupt`
at once. SIGTERM is what batch schedulers and service managers send before a kill.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any


class StopRequest:
    """Set by the first SIGINT/SIGTERM (or :meth:`set`); a second signal raises
    KeyboardInterrupt.

    Signal handlers can only be installed from the main thread: elsewhere (and under DDP,
    where every rank would have to agree on the step to stop at, so torchrun's own handling
    applies) :meth:`installed` does nothing and only :meth:`set` stops.
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.event.is_set()

    def set(self) -> None:
        self.event.set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt
        self.event.set()

    @contextlib.contextmanager
    def installed(self, enabled: bool = True) -> Iterator[None]:
        """Handle SIGINT and SIGTERM inside the block (when ``enabled`` and on the main thread)."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        for catch in (signal.SIGINT, signal.SIGTERM):
            self._previous[catch] = signal.signal(catch, self._handle)
        try:
            yield
        finally:
            for restore, handler in self._previous.items():
                signal.signal(restore, handler)
