"""Where the node's synthetic images go: a DICOM destination (C-STORE) or a folder.

A delivery either succeeds for an image or raises :class:`DeliveryError`; the node keeps the
image queued and tries again later (:class:`Backoff`), so nothing is dropped while a PACS is
down.
"""

from __future__ import annotations

import re
import shutil
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cemsynth.errors import ConfigError
from cemsynth.inference.outputs import safe_name
from cemsynth.io.atomic import write_atomic
from cemsynth.node.queue import Job

#: C-STORE statuses that mean "stored" (success; warnings: coerced, elements discarded,
#: data set does not match the SOP class): the instance is on the destination.
STORED_STATUSES = frozenset({0x0000, 0xB000, 0xB006, 0xB007})
#: A-ASSOCIATE/DIMSE time limits towards the destination, in seconds.
NETWORK_TIMEOUT_S = 30.0

_DESTINATION = re.compile(r"^(?P<aet>[^@]{1,16})@(?P<host>[^:@]+):(?P<port>\d{1,5})$")


class DeliveryError(Exception):
    """An image could not be delivered now (the message is one line).

    ``connection``: the destination could not be reached or the connection broke, so every
    waiting image would fail alike; False: the destination answered this image with a
    failure status, and the others may still go.
    """

    def __init__(self, message: str, connection: bool = True) -> None:
        super().__init__(message)
        self.connection = connection


class Destination(Protocol):
    """Something that takes the node's synthetic images."""

    def label(self) -> str: ...

    def deliver(self, path: Path, job: Job) -> None:
        """Deliver the synthetic image at ``path``; raises :class:`DeliveryError`."""
        ...

    def close(self) -> None:
        """Release any connection (called when the queue is empty or on errors)."""
        ...


@dataclass
class DicomDestination:
    """A DICOM node that accepts C-STORE (a PACS such as Orthanc).

    One association is kept open while images are waiting and released when the queue is
    empty or the destination fails.
    """

    ae_title: str
    host: str
    port: int
    calling_ae_title: str
    tls: ssl.SSLContext | None = None
    _association: object | None = field(default=None, init=False, repr=False)

    @classmethod
    def parse(
        cls, text: str, calling_ae_title: str, tls: ssl.SSLContext | None = None
    ) -> DicomDestination:
        """``AET@HOST:PORT`` -> a destination; ConfigError (one line) when malformed."""
        found = _DESTINATION.match(text.strip())
        if found is None or not 0 < int(found["port"]) < 65536:
            raise ConfigError(
                f"--destination {text!r}: expected AET@HOST:PORT, e.g. ORTHANC@127.0.0.1:4242"
            )
        return cls(found["aet"].strip(), found["host"], int(found["port"]), calling_ae_title, tls)

    def label(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}" + (" (TLS)" if self.tls else "")

    def _associate(self) -> object:
        from pydicom.uid import ExplicitVRLittleEndian
        from pynetdicom import AE

        from cemsynth.io.dicom_build import MG_FOR_PRESENTATION

        ae = AE(ae_title=self.calling_ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = NETWORK_TIMEOUT_S
        ae.add_requested_context(MG_FOR_PRESENTATION, ExplicitVRLittleEndian)
        tls_args = None if self.tls is None else (self.tls, self.host)
        association = ae.associate(self.host, self.port, ae_title=self.ae_title, tls_args=tls_args)
        if not association.is_established:
            why = "rejected the association" if association.is_rejected else "did not answer"
            raise DeliveryError(f"destination {self.label()} {why}")
        return association

    def deliver(self, path: Path, job: Job) -> None:
        if self._association is None or not self._association.is_established:  # type: ignore[attr-defined]
            self._association = self._associate()
        association = self._association
        try:
            status = association.send_c_store(path)  # type: ignore[attr-defined]
        except Exception as exc:  # socket errors and pynetdicom's assorted ones alike
            self.close()
            raise DeliveryError(f"destination {self.label()}: C-STORE failed: {exc}") from None
        code = getattr(status, "Status", None)
        if code is None:
            self.close()
            raise DeliveryError(f"destination {self.label()}: connection lost during C-STORE")
        if int(code) not in STORED_STATUSES:
            raise DeliveryError(
                f"destination {self.label()}: C-STORE status 0x{int(code):04X} for {job.label()}",
                connection=False,
            )

    def close(self) -> None:
        association, self._association = self._association, None
        if association is not None and association.is_established:  # type: ignore[attr-defined]
            association.release()  # type: ignore[attr-defined]


def client_tls_context(ca: Path, cert: Path | None, key: Path | None) -> ssl.SSLContext:
    """TLS towards the destination: its certificate must be signed by ``ca`` and name its
    host; ``cert``/``key``: this node's own certificate, for a destination that asks for one."""
    if (cert is None) != (key is None):
        raise ConfigError("--destination-tls-cert and --destination-tls-key go together")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_verify_locations(cafile=ca)
        if cert is not None and key is not None:
            context.load_cert_chain(certfile=cert, keyfile=key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"destination TLS: cannot load {ca}: {exc}") from None
    return context


@dataclass
class FolderDestination:
    """A folder: each synthetic image is copied in atomically, named after its LE image."""

    folder: Path

    def label(self) -> str:
        return str(self.folder)

    def file_name(self, job: Job) -> str:
        parts = [job.patient_id, job.laterality, job.view, job.key]
        return safe_name("_".join(part for part in parts if part)) + ".dcm"

    def deliver(self, path: Path, job: Job) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(path, "rb") as source:
                write_atomic(
                    self.folder / self.file_name(job), lambda out: shutil.copyfileobj(source, out)
                )
        except OSError as exc:
            raise DeliveryError(f"{self.folder}: cannot write: {exc.strerror or exc}") from None

    def close(self) -> None:
        return None


@dataclass
class Backoff:
    """Waits between delivery attempts: ``first_s``, doubling, at most ``max_s``."""

    first_s: float = 1.0
    max_s: float = 60.0
    _next: float = field(default=0.0, init=False)

    def failed(self) -> float:
        """Register a failure; returns the seconds to wait before the next attempt."""
        self._next = self.first_s if self._next == 0.0 else min(self._next * 2, self.max_s)
        return self._next

    def succeeded(self) -> None:
        self._next = 0.0
