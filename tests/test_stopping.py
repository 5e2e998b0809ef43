"""The graceful stop: a first SIGTERM/SIGINT asks, a second one insists; handlers restored."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from cemsynth.stopping import StopRequest


def test_first_signal_asks_second_insists_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = StopRequest()
    with stop.installed():
        assert not stop.requested
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested and stop.event.is_set()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_off_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []
    stop = StopRequest()

    def run() -> None:
        with stop.installed():
            seen.append(signal.getsignal(signal.SIGTERM))

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    assert seen == [before]
    stop.set()  # the caller's way to stop it there
    assert stop.requested
