"""``cemsynth serve-dicom``'s network side: a DICOM node (pynetdicom) that answers C-ECHO and
C-STORE and puts each received LE image into the durable queue before it answers success.

- Every storage SOP class is accepted (a modality or PACS routes whole exams: the RC and HE
  images of a CEM exam arrive beside the LE images); the intake decides what is queued
  (:mod:`cemsynth.node.intake`). C-STORE answers: success (0000) for a queued, duplicate or
  ignored image; "cannot understand" (C210) for data that is not a usable image, which is
  kept in ``quarantine/`` with its reason; "out of resources" (A700) when the file cannot be
  stored; "processing failure" (0110) for a bug met on one dataset (kept in quarantine too).
- Transfer syntaxes: those whose pixels this installation decodes (uncompressed, deflate,
  RLE, JPEG, JPEG-LS, JPEG 2000). A dataset in another syntax is refused in the association
  negotiation, as the standard has it: the sender learns before sending.
- Only the loopback interface unless told otherwise; ``allowed_callers`` restricts the calling
  AE titles (others are rejected at association); TLS with a certificate and key.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cemsynth.errors import ConfigError
from cemsynth.io.messages import internal_error
from cemsynth.node.config import DEFAULT_AE_TITLE
from cemsynth.node.intake import Intake
from cemsynth.node.status import StatusBoard

STATUS_SUCCESS = 0x0000
STATUS_CANNOT_UNDERSTAND = 0xC210
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_PROCESSING_FAILURE = 0x0110
#: Associations served at once; more callers are rejected (transient) until one ends.
MAX_ASSOCIATIONS = 8


def decodable_transfer_syntaxes() -> list[str]:
    """Transfer syntaxes whose pixel data pydicom decodes here (with the pylibjpeg plugins)."""
    from pydicom import uid

    return [
        uid.ExplicitVRLittleEndian,
        uid.ImplicitVRLittleEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.RLELossless,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
    ]


def check_ae_title(title: str, what: str) -> str:
    """An AE title (1-16 printable characters, no backslash); ConfigError otherwise."""
    stripped = title.strip()
    if not 0 < len(stripped) <= 16 or "\\" in stripped or not stripped.isprintable():
        raise ConfigError(f"{what} {title!r}: an AE title is 1 to 16 characters, no backslash")
    return stripped


def tls_context(cert: Path, key: Path, ca: Path | None) -> ssl.SSLContext:
    """A server-side TLS context; with ``ca``, callers must show a certificate it signed."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile=cert, keyfile=key)
        if ca is not None:
            context.load_verify_locations(cafile=ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS: cannot load {cert}, {key}: {exc}") from None
    return context


@dataclass
class DicomReceiver:
    """The C-STORE/C-ECHO side of the node over an :class:`Intake`."""

    intake: Intake
    board: StatusBoard
    ae_title: str = DEFAULT_AE_TITLE
    allowed_callers: Sequence[str] = ()

    def application_entity(self) -> Any:
        """The configured pynetdicom AE (not yet listening)."""
        from pynetdicom import AE, AllStoragePresentationContexts
        from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

        ae = AE(ae_title=self.ae_title)
        syntaxes = decodable_transfer_syntaxes()
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, syntaxes)
        ae.add_supported_context(Verification)
        if self.allowed_callers:
            ae.require_calling_aet = list(self.allowed_callers)
        ae.maximum_associations = MAX_ASSOCIATIONS
        return ae

    def handlers(self) -> list[tuple[Any, Any]]:
        from pynetdicom import evt

        return [(evt.EVT_C_STORE, self.on_store), (evt.EVT_REJECTED, self.on_rejected)]

    def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> Any:
        """Listen on ``host:port`` in background threads; returns the server (``shutdown()``)."""
        ae = self.application_entity()
        try:
            return ae.start_server(
                (host, port), block=False, evt_handlers=self.handlers(), ssl_context=ssl_context
            )
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    def on_rejected(self, event: Any) -> None:
        requestor = event.assoc.requestor
        title = str(requestor.ae_title).strip()
        if self.allowed_callers and title not in self.allowed_callers:
            why = "calling AE title not in --allow-callers"
        else:
            why = f"busy: {MAX_ASSOCIATIONS} associations already open, or a bad request"
        self.board.event(
            None, f"association from {title} at {requestor.address} rejected ({why})", error=True
        )

    def on_store(self, event: Any) -> int:
        """Keep the dataset durably, sort it, then answer (the status is what the sender sees)."""
        requestor = event.assoc.requestor
        origin = f"{requestor.ae_title}@{requestor.address}"
        name = f"C-STORE from {requestor.ae_title}"
        queue = self.intake.queue
        received = queue.receiving_path()
        try:
            data = event.encoded_dataset(include_meta=True)
            with open(received, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            received.unlink(missing_ok=True)
            self.board.event(None, f"{name}: cannot store: {exc.strerror or exc}", error=True)
            return STATUS_OUT_OF_RESOURCES
        except Exception as exc:  # a dataset pynetdicom cannot re-encode is not usable data
            queue.quarantine(received, f"{name}: unreadable dataset ({exc})")
            self.board.event("quarantined", f"{name}: unreadable dataset ({exc})", error=True)
            return STATUS_CANNOT_UNDERSTAND
        try:
            result = self.intake.take(received, origin, name)
        except Exception as exc:  # a bug met on one dataset: keep it, tell, go on
            reason = f"{name}: {internal_error(exc)}"
            with contextlib.suppress(OSError):
                queue.quarantine(received, reason)
            self.board.event("quarantined", reason, error=True)
            return STATUS_PROCESSING_FAILURE
        self.board.event(result.counter, result.message, error=result.outcome == "quarantined")
        if result.outcome == "quarantined":
            return STATUS_CANNOT_UNDERSTAND
        return STATUS_SUCCESS
