"""Shared fixtures for the node tests: a phantom CEM exam, a tiny model, a node in a thread."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cemsynth.inference.config import RuntimeConfig
from cemsynth.node.run import serve_dicom
from cemsynth.node.status import StatusBoard
from cemsynth.phantom.cohort import write_cohort
from cemsynth.phantom.config import PhantomConfig
from cemsynth.testing.checkpoints import TINY_MODEL, random_checkpoint
from cemsynth.vocabulary import PATCH_SIZE


@pytest.fixture(autouse=True)
def _every_test_one_torch_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def cem_exam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One phantom patient's CEM exam as DICOM: 4 LE and 4 RC images under ``P0001/``."""
    out = tmp_path_factory.mktemp("exam")
    write_cohort(
        out, n_patients=1, seed=3, pixel_mm=0.1, size="small", config=PhantomConfig(), workers=1
    )
    return out / "P0001"


@pytest.fixture(scope="session")
def node_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder with a tiny random generator (the node's cost and labels, not its quality)."""
    run = tmp_path_factory.mktemp("node-model")
    random_checkpoint(run / "best.pt", TINY_MODEL, None, 100, 0, PATCH_SIZE)
    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningNode:
    """A ``serve_dicom`` node running in a thread of the test process."""

    state_dir: Path
    port: int
    thread: threading.Thread
    stop_event: threading.Event
    lines: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)

    def stop(self) -> StatusBoard:
        self.stop_event.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if "error" in self.result:
            raise self.result["error"]
        board: StatusBoard = self.result["board"]
        return board


StartNode = Callable[..., RunningNode]


@pytest.fixture
def start_node(node_model: Path, tmp_path: Path) -> Iterator[StartNode]:
    """Start a DICOM node in a thread (keyword arguments override serve_dicom's); stopped after."""
    nodes: list[RunningNode] = []

    def start(**overrides: Any) -> RunningNode:
        port = overrides.pop("port", None) or free_port()
        ready = threading.Event()
        stop = threading.Event()
        settings: dict[str, Any] = dict(
            model=node_model,
            state_dir=tmp_path / "state",
            host="127.0.0.1",
            port=port,
            destination=None,
            allowed_callers=[],
            tls_cert=None,
            tls_key=None,
            tls_ca=None,
            vendor_keywords=None,
            runtime=RuntimeConfig(backend="torch", threads=1),
            stop=stop,
            on_listening=ready.set,
        )
        settings.update(overrides)
        node = RunningNode(settings["state_dir"], port, threading.Thread(), stop)
        settings["echo"] = node.lines.append

        def run() -> None:
            try:
                node.result["board"] = serve_dicom(**settings)
            except BaseException as exc:  # reported by stop() in the test's thread
                node.result["error"] = exc
                ready.set()

        node.thread = threading.Thread(target=run, daemon=True)
        node.thread.start()
        assert ready.wait(60), "the node did not start listening"
        if "error" in node.result:
            raise node.result["error"]
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.stop_event.set()
        node.thread.join(60)
