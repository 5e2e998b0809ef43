"""Running a node: ``cemsynth serve-dicom`` and ``cemsynth watch`` put the parts together.

Both open the durable queue (finishing what a crash left), load the model once, start the
synthesis and delivery workers and their way in (the DICOM server or the folder watcher), and
run until ``stop`` is set (SIGTERM, Ctrl-C). Stopping finishes the image in hand; whatever is
still queued is taken up by the next start.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cemsynth.errors import CemsynthError, ConfigError
from cemsynth.index.keywords import KeywordRules, default_keywords, load_keywords
from cemsynth.inference.config import RuntimeConfig
from cemsynth.node.config import DEFAULT_AE_TITLE, DEFAULT_INTERVAL_S
from cemsynth.node.delivery import (
    Destination,
    DicomDestination,
    FolderDestination,
    client_tls_context,
)
from cemsynth.node.dicom_server import DicomReceiver, check_ae_title, tls_context
from cemsynth.node.intake import Intake
from cemsynth.node.queue import NodeQueue
from cemsynth.node.service import NodeService, describe_model
from cemsynth.node.status import StatusBoard
from cemsynth.node.watch import FolderWatcher

#: Where synthetic images go when no DICOM destination is given.
SYNTHETIC_FOLDER = "synthetic"


def _destination(
    text: str | None,
    calling_ae_title: str,
    folder: Path,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
) -> Destination:
    if not text:
        if tls_ca is not None or tls_cert is not None or tls_key is not None:
            raise ConfigError("--destination-tls-* options need a --destination")
        return FolderDestination(folder)
    if tls_ca is None and (tls_cert is not None or tls_key is not None):
        raise ConfigError("--destination-tls-cert/--destination-tls-key need --destination-tls-ca")
    tls = None if tls_ca is None else client_tls_context(tls_ca, tls_cert, tls_key)
    return DicomDestination.parse(text, calling_ae_title, tls)


def _keywords(path: Path | None) -> KeywordRules:
    return default_keywords() if path is None else load_keywords(path)


def _run_until_stopped(
    queue: NodeQueue,
    model: Path,
    runtime: RuntimeConfig,
    destination: Destination,
    describe: Mapping[str, object],
    echo: Callable[[str], None] | None,
    stop: threading.Event,
    start_way_in: Callable[[StatusBoard], Callable[[], None]],
) -> StatusBoard:
    """Load the model, start the workers and the way in, wait for ``stop``, shut down."""
    from cemsynth.inference.predictor import Predictor

    predictor = Predictor.load(model, runtime)
    board = StatusBoard(
        queue,
        {**describe, **describe_model(predictor, model), "destination": destination.label()},
        echo=echo,
    )
    counts = queue.counts()
    board.event(
        None,
        f"node started (pid {os.getpid()}): model {predictor.identity.label()}; "
        f"{counts.incoming} waiting for synthesis, {counts.outgoing} for delivery",
    )
    service = NodeService(queue, predictor, destination, board)
    stop_way_in: Callable[[], None] | None = None
    try:
        service.start()
        stop_way_in = start_way_in(board)
        while not stop.wait(1.0):
            pass
    finally:
        if stop_way_in is not None:
            stop_way_in()
        service.stop()
        board.event(None, "node stopped")
    return board


def serve_dicom(
    *,
    model: Path,
    state_dir: Path,
    ae_title: str = DEFAULT_AE_TITLE,
    host: str,
    port: int,
    destination: str | None,
    allowed_callers: Sequence[str],
    tls_cert: Path | None,
    tls_key: Path | None,
    tls_ca: Path | None,
    vendor_keywords: Path | None,
    runtime: RuntimeConfig,
    stop: threading.Event,
    destination_tls_ca: Path | None = None,
    destination_tls_cert: Path | None = None,
    destination_tls_key: Path | None = None,
    echo: Callable[[str], None] | None = None,
    on_listening: Callable[[], None] | None = None,
) -> StatusBoard:
    """Run the DICOM node until ``stop`` is set (see :mod:`cemsynth.node.dicom_server`).

    ``tls_*``: TLS on the node's own port; ``destination_tls_*``: TLS towards
    ``destination`` (the CA that signed its certificate; this node's certificate and key
    when the destination asks for one).

    Raises :class:`CemsynthError` (one line) for a bad setting, a state folder in use, a model
    that does not load, or an address it cannot listen on, before anything is received.
    """
    ae_title = check_ae_title(ae_title, "--ae-title")
    callers = [check_ae_title(title, "--allow-callers") for title in allowed_callers]
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    if tls_ca is not None and tls_cert is None:
        raise ConfigError("--tls-ca needs --tls-cert and --tls-key")
    context = (
        None if tls_cert is None or tls_key is None else tls_context(tls_cert, tls_key, tls_ca)
    )
    keywords = _keywords(vendor_keywords)
    target = _destination(
        destination,
        ae_title,
        state_dir / SYNTHETIC_FOLDER,
        destination_tls_ca,
        destination_tls_cert,
        destination_tls_key,
    )
    with NodeQueue(state_dir) as queue:

        def start_listening(board: StatusBoard) -> Callable[[], None]:
            receiver = DicomReceiver(Intake(queue, keywords), board, ae_title, callers)
            server = receiver.start(host, port, context)
            board.event(
                None,
                f"listening as {ae_title} on {host}:{port}"
                + (" (TLS)" if context is not None else "")
                + (f"; callers allowed: {', '.join(callers)}" if callers else ""),
            )
            if on_listening is not None:
                on_listening()
            return server.shutdown

        describe = {
            "listening": f"{ae_title} on {host}:{port}" + (" (TLS)" if context else ""),
        }
        return _run_until_stopped(
            queue, model, runtime, target, describe, echo, stop, start_listening
        )


def watch_folder(
    *,
    folder: Path,
    model: Path,
    out: Path,
    destination: str | None,
    ae_title: str = DEFAULT_AE_TITLE,
    interval_s: float = DEFAULT_INTERVAL_S,
    vendor_keywords: Path | None,
    runtime: RuntimeConfig,
    stop: threading.Event,
    destination_tls_ca: Path | None = None,
    destination_tls_cert: Path | None = None,
    destination_tls_key: Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> StatusBoard:
    """Run the node over a folder until ``stop`` is set (see :mod:`cemsynth.node.watch`).

    ``out`` is the state folder; synthetic images go to ``out/synthetic/`` or, given
    ``destination``, to a DICOM node. Refuses (one line) a folder that does not exist, and
    ``out`` inside ``folder`` or the reverse (the node would take its own files).
    """
    if not folder.is_dir():
        raise CemsynthError(f"{folder}: not a folder")
    if not interval_s > 0:
        raise ConfigError(f"--interval must be a positive number of seconds, got {interval_s}")
    watched, state = Path(os.path.realpath(folder)), Path(os.path.realpath(out))
    if watched == state or watched in state.parents or state in watched.parents:
        raise CemsynthError(
            f"{out}: the output folder and the watched folder {folder} must not contain each "
            "other (the node would take its own files)"
        )
    ae_title = check_ae_title(ae_title, "--ae-title")
    keywords = _keywords(vendor_keywords)
    target = _destination(
        destination,
        ae_title,
        out / SYNTHETIC_FOLDER,
        destination_tls_ca,
        destination_tls_cert,
        destination_tls_key,
    )
    with NodeQueue(out) as queue:

        def start_watching(board: StatusBoard) -> Callable[[], None]:
            watcher = FolderWatcher(folder, Intake(queue, keywords), board, interval_s, interval_s)
            watcher.start()
            board.event(None, f"watching {folder} every {interval_s:g} s")
            return watcher.stop

        return _run_until_stopped(
            queue,
            model,
            runtime,
            target,
            {"watching": str(folder)},
            echo,
            stop,
            start_watching,
        )
